"""Invoke a function with a sample event, in-process against moto (no Docker, no AWS).

.venv/bin/python scripts/invoke_local.py events/settings.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from devtools.local_invoke import invoke  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    answer = invoke(Path(argv[1]))
    print(json.dumps(answer, indent=2))
    if "response" in answer:  # the events function: a partial batch response
        return 0
    return 0 if answer.get("statusCode", 500) < 500 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

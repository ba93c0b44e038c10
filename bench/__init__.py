"""`make bench`: cold start, artifact size, event-batch latency and round trips, OAuth server time.

Everything is measured side by side in one run and printed as ratios (this machine's speed cancels
out); bench/RESULTS.md keeps the latest table. Nothing here is deployed or used by the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SRC = PROJECT_ROOT / "src"

if str(SRC) not in sys.path:  # the functions' code, as in Lambda (bwpctl and the demo do the same)
    sys.path.insert(0, str(SRC))

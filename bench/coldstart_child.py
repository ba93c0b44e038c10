"""Run by bench/coldstart.py in a fresh `python3.13 -I -S -B` (no site-packages, no bytecode
written, as on Lambda's read-only disk): times one import, then what the first request imports.

argv: TASK_DIR (the artifact, "" for none) RUNTIME_DIR (boto3 & co.) MODULE [FIRST_REQUEST_KIND]
Prints one JSON line.
"""

import importlib
import importlib.util
import json
import os
import sys
import time

task, runtime, module = sys.argv[1:4]
first_request = sys.argv[4] if len(sys.argv) > 4 else ""
sys.path[:0] = [task] if task else []  # the function's folder first, as Lambda does
sys.path.append(runtime)  # then the runtime's own packages (boto3)

wall, cpu = time.perf_counter(), time.process_time()
__import__(module)
result = {"import_s": time.perf_counter() - wall, "import_cpu_s": time.process_time() - cpu}

# What the first real request adds (routes import lazily); boto3 is the runtime's, not counted.
FIRST_REQUEST = {
    "oauth": ("oauth.routes", "oauth.verification", "oauth.pages", "shared.store.oauth_states"),
    "events": ("events.pipeline", "shared.store.event_records"),
}
SHARED_FIRST_REQUEST = (
    "requests.adapters",
    "shared.settings",
    "shared.buy_with_prime",
    "shared.credentials",
    "shared.tokens",
    "shared.store.installations",
)
if first_request:
    wall = time.perf_counter()
    for name in (*FIRST_REQUEST[first_request], *SHARED_FIRST_REQUEST):
        importlib.import_module(name)
    if first_request == "oauth":  # the verifier loads its key on the first verified request
        settings = importlib.import_module("shared.settings")
        importlib.import_module("oauth.verification").RequestVerifier(settings.PUBLISHED_VERIFICATION_KEY)
    result["first_request_s"] = time.perf_counter() - wall

if task:
    from_task = {
        name: str(m.__file__)
        for name, m in list(sys.modules.items())
        if (getattr(m, "__file__", None) or "").startswith(task)
    }
    report: dict[str, object] = {
        "loaded": len(from_task),
        "without_pyc": sorted(
            name
            for name, path in from_task.items()
            if path.endswith(".py") and not os.path.exists(importlib.util.cache_from_source(path))
        ),
    }
    result_and_report = {**result, **report}
else:
    result_and_report = dict(result)
print(json.dumps(result_and_report))

"""The template's Lambda functions run in-process: their properties (Globals merged), their event
sources, and `LocalFunction`, which imports the handler named in the template and invokes it one
event at a time, like a Lambda with one warm container (reserved concurrency 1)."""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from devtools.apigw import LambdaContext
from devtools.template import PROJECT_ROOT

log = logging.getLogger("devtools.local_stack")

SERVERLESS_FUNCTION = "AWS::Serverless::Function"


def function_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """The function's Properties with Globals.Function merged in (Environment variables merged)."""
    resource = template["Resources"][logical_id]
    if resource.get("Type") != SERVERLESS_FUNCTION:
        raise ValueError(f"{logical_id} is not an {SERVERLESS_FUNCTION}")
    globals_ = dict(template.get("Globals", {}).get("Function", {}))
    own = dict(resource.get("Properties", {}))
    merged = {**globals_, **own}
    merged["Environment"] = {"Variables": function_environment(template, logical_id)}
    return merged


def function_environment(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """devtools.template.function_environment for any template (values may be intrinsics)."""
    variables: dict[str, Any] = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    own = template["Resources"][logical_id].get("Properties", {}).get("Environment", {}).get("Variables", {})
    variables.update(own)
    return variables


def function_events(template: Mapping[str, Any], logical_id: str, event_type: str) -> dict[str, dict[str, Any]]:
    """The function's event sources of one SAM type ("HttpApi", "SQS"), by name, raw Properties."""
    events = template["Resources"][logical_id].get("Properties", {}).get("Events", {}) or {}
    return {name: dict(e.get("Properties", {})) for name, e in events.items() if e.get("Type") == event_type}


def add_code_root(properties: Mapping[str, Any], template_dir: Path = PROJECT_ROOT) -> None:
    """Put the function's local CodeUri first on sys.path, as Lambda does with its folder."""
    code_uri = properties.get("CodeUri")
    if isinstance(code_uri, str) and "://" not in code_uri:
        code_root = str((template_dir / code_uri).resolve())
        if code_root not in sys.path:
            sys.path.insert(0, code_root)


def functions(template: Mapping[str, Any]) -> list[str]:
    return [i for i, r in template.get("Resources", {}).items() if r.get("Type") == SERVERLESS_FUNCTION]


class LocalLambdaContext(LambdaContext):
    """A Lambda context for one invocation of one function (fresh request ID, real deadline)."""

    def __init__(self, function_name: str, region: str, account_id: str, memory: int, timeout: float) -> None:
        super().__init__(function_name)
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    """One template function, imported from its `Handler`, fed its environment.

    The environment reaches the handler the way Lambda gives it: through the process environment
    (the stack sets it) and, when the handler module offers the `reset_dependencies(Dependencies(
    environ))` hook (the OAuth function does), through a fresh container of collaborators built
    from exactly that mapping. Invocations of one function never overlap: module state such as
    Powertools' logger keys and the warm token cache belongs to one container.
    """

    logical_id: str
    handler_path: str
    environment: Mapping[str, str]
    region: str
    account_id: str
    timeout: float = 3.0
    memory: int = 128

    def __post_init__(self) -> None:
        module_name, _, attribute = self.handler_path.rpartition(".")
        self.module: ModuleType = importlib.import_module(module_name)
        self.handler = getattr(self.module, attribute)
        self._lock = threading.Lock()
        self.invocations = 0
        self._reset_dependencies(dict(self.environment))

    @classmethod
    def from_template(
        cls,
        template: Mapping[str, Any],
        logical_id: str,
        environment: Mapping[str, str],
        region: str,
        account_id: str,
        *,
        template_dir: Path = PROJECT_ROOT,
    ) -> LocalFunction:
        """Import the Handler from the function's CodeUri (see `add_code_root`)."""
        properties = function_properties(template, logical_id)
        add_code_root(properties, template_dir)
        return cls(
            logical_id,
            str(properties["Handler"]),
            environment,
            region,
            account_id,
            timeout=float(properties.get("Timeout", 3)),
            memory=int(properties.get("MemorySize", 128)),
        )

    def _reset_dependencies(self, environ: dict[str, str] | None) -> None:
        reset = getattr(self.module, "reset_dependencies", None)
        if reset is None:
            return
        if environ is None:
            reset()
            return
        package = self.module.__name__.rpartition(".")[0]
        try:
            dependencies = importlib.import_module(f"{package}.dependencies").Dependencies
        except (ImportError, AttributeError):
            reset()  # the handler reads the process environment itself
            return
        reset(dependencies(environ))

    def context(self) -> LocalLambdaContext:
        return LocalLambdaContext(self.logical_id, self.region, self.account_id, self.memory, self.timeout)

    def __call__(self, event: dict[str, Any], context: Any = None) -> Any:
        with self._lock:
            self.invocations += 1
            started = time.monotonic()
            try:
                return self.handler(event, context or self.context())
            finally:
                elapsed = time.monotonic() - started
                if elapsed > self.timeout:
                    log.warning(
                        "%s ran %.1f s, over its %s s Timeout (Lambda would have stopped it)",
                        self.logical_id,
                        elapsed,
                        self.timeout,
                    )

    def close(self) -> None:
        """Drop the collaborators (clients bound to this stack's endpoints)."""
        with self._lock:
            self._reset_dependencies(None)

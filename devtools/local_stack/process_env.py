"""The process environment the local functions run in (one process plays every Lambda): set
variables, remember what was there before, put it all back on restore()."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger("devtools.local_stack")


class ProcessEnvironment:
    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}
        self._owners: dict[str, str] = {}

    def set(self, values: Mapping[str, str], owner: str) -> None:
        """Set `values`; a variable another owner already set keeps its first value (warned)."""
        for name, value in values.items():
            if name in self._owners and os.environ.get(name) != value:
                log.warning(
                    "%s and %s both run in this process but differ on %s: the process keeps %s's value "
                    "(each handler's own Dependencies still get their own)",
                    self._owners[name],
                    owner,
                    name,
                    self._owners[name],
                )
                continue
            self._save(name)
            os.environ[name] = value
            self._owners.setdefault(name, owner)

    def unset(self, *names: str) -> None:
        for name in names:
            self._save(name)
            os.environ.pop(name, None)

    def _save(self, name: str) -> None:
        if name not in self._saved:
            self._saved[name] = os.environ.get(name)

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()
        self._owners.clear()

"""The sweep's collaborators: the events function's (the shared ones, and for re-hydrating open
orders its own store and pipeline: sweep/rehydrate.py) and the tenant purge."""

from __future__ import annotations

from functools import cached_property

from events.dependencies import Dependencies as EventsDependencies
from shared.store.purge import TenantPurge


class Dependencies(EventsDependencies):
    @cached_property
    def purge(self) -> TenantPurge:
        return TenantPurge(self.dynamodb, self.settings.table_name)

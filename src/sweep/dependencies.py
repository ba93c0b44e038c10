"""The sweep's collaborators: the shared ones (the installation store and the token service) and
the tenant purge."""

from __future__ import annotations

from functools import cached_property

from shared.store.purge import TenantPurge
from shared.wiring import SharedDependencies


class Dependencies(SharedDependencies):
    @cached_property
    def purge(self) -> TenantPurge:
        return TenantPurge(self.dynamodb, self.settings.table_name)

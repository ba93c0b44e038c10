"""The sweep's collaborators: the shared ones (the installation store, the token service, the Buy
with Prime client), the tenant purge, and for re-hydrating open orders the events function's own
store and pipeline (sweep/rehydrate.py)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from shared.store.purge import TenantPurge
from shared.wiring import SharedDependencies

if TYPE_CHECKING:
    from events.pipeline import EventPipeline
    from shared.store.event_records import EventStore


class Dependencies(SharedDependencies):
    @cached_property
    def purge(self) -> TenantPurge:
        return TenantPurge(self.dynamodb, self.settings.table_name)

    @cached_property
    def event_store(self) -> EventStore:
        from shared.store.event_records import EventStore

        return EventStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def pipeline(self) -> EventPipeline:
        from events.pipeline import EventPipeline

        settings = self.settings
        return EventPipeline(
            self.event_store,
            self.tokens,
            self.buy_with_prime,
            api_version=settings.bwp_api_version,
            retention_days=settings.event_record_retention_days,
            budget=self.budget,
            track_open_orders=True,  # only used while RehydrateOpenOrdersHours is on
        )

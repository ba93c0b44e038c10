"""The events function's collaborators: the shared ones plus the event store and the pipeline."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.wiring import SharedDependencies

if TYPE_CHECKING:
    from events.pipeline import EventPipeline
    from shared.store.event_records import EventStore


class Dependencies(SharedDependencies):
    @cached_property
    def sqs(self) -> Any:
        import boto3

        from shared.wiring import aws_client_config

        return boto3.client("sqs", config=aws_client_config())

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
            max_workers=settings.hydration_max_workers,
            budget=self.budget,
            track_open_orders=settings.rehydrate_open_orders_hours > 0,
        )

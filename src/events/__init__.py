"""The event pipeline: Buy with Prime partner events (EventBridge -> SQS) to hydrated records."""

"""What both Lambda functions share: settings, the one-table store, the Buy with Prime client,
the token service and observability. Never imports a handler."""

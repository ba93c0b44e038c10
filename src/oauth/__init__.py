"""The OAuth app-install flow behind API Gateway: Launch, Install, Settings, Uninstall, Health."""

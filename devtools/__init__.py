"""Developer-side tools (never packaged into a Lambda): API Gateway event building, template
loading, local invocation. Used by tests, scripts and the local stack."""

"""Errors shared by both functions; each names what an operator or a caller can do about it."""


class ConfigurationError(RuntimeError):
    """The function's configuration is invalid; the message names the variable to fix."""


class InstallationNotFoundError(LookupError):
    """No live installation is stored under this installation ID."""


class ReauthorizationRequiredError(RuntimeError):
    """The installation's refresh token was rejected: the merchant must launch the app again."""


class TokenRefreshBusyError(RuntimeError):
    """Another invocation holds the refresh lease and did not finish in time (transient)."""

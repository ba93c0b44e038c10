"""Handled failures by class, so an alarm sees what the code answers or retries instead of raising.

A failure the functions handle (a 500 page, a batch item sent back to SQS) never reaches Lambda's
Errors metric. Each such failure is counted here as `HandledFailures` with a `class` dimension;
template.yaml has one alarm per class (docs/operations.md has their runbooks):

- configuration: the deployment is wrong (a variable, the client secret, Buy with Prime refusing
  the client, a table or secret that does not exist);
- permissions: an AWS call was denied (a role, a key policy);
- aws_unavailable: DynamoDB, Secrets Manager or SQS throttled, erred or could not be reached;
- unexpected: anything else (a bug).

Buy with Prime's own failures are not classed here: the token and GraphQL clients count them
(RefreshFailed, RefreshRejected, GraphQLThrottled, CircuitOpened).
"""

from __future__ import annotations

from shared.errors import ConfigurationError
from shared.observability import count_with_class

CONFIGURATION = "configuration"
PERMISSIONS = "permissions"
AWS_UNAVAILABLE = "aws_unavailable"
UNEXPECTED = "unexpected"
CLASSES = (CONFIGURATION, PERMISSIONS, AWS_UNAVAILABLE, UNEXPECTED)

_PERMISSION_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
    }
)
_MISSING_CODES = frozenset(
    {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "InternalServiceError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
    }
)
# botocore's connection failures, by class name (importing botocore's exceptions here would cost
# the OAuth function's cold start for nothing: boto3 raises them, we only name them).
_UNAVAILABLE_ERRORS = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}
)


def failure_class(error: BaseException) -> str | None:
    """The class of a handled failure, or None for Buy with Prime's (counted by its clients)."""
    names = {k.__name__ for k in type(error).__mro__}
    if isinstance(error, ConfigurationError):
        return CONFIGURATION
    if "BuyWithPrimeError" in names:  # shared/buy_with_prime.py (not imported: it loads requests)
        return None
    response = getattr(error, "response", None)
    code = str(((response or {}).get("Error") or {}).get("Code") or "") if isinstance(response, dict) else ""
    if code in _PERMISSION_CODES:
        return PERMISSIONS
    if code in _MISSING_CODES:
        return CONFIGURATION
    if code in _UNAVAILABLE_CODES or names & _UNAVAILABLE_ERRORS:
        return AWS_UNAVAILABLE
    return UNEXPECTED


def report_failure(error: BaseException) -> str | None:
    """Count a handled failure by its class (see above); returns the class."""
    found = failure_class(error)
    if found is not None:
        count_with_class("HandledFailures", found)
    return found

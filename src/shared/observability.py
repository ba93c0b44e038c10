"""One Logger and one Metrics object for the whole process, plus a one-line counter helper.

Structured JSON logs (Powertools) carry `installation_id` as the correlation key once a request
has been verified. Nothing that holds a token, a code verifier or the client secret is ever
passed to the logger.
"""

from __future__ import annotations

import logging
import os
import warnings

from aws_lambda_powertools.logging.logger import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric

# A request that only refuses or only checks health publishes no application metric: that is fine.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# Lambda sets the ROOT logger to the function's ApplicationLogLevel: at DEBUG, botocore and urllib3
# would log request parameters and bodies (client secret, tokens). Never below INFO for them.
for _chatty in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_chatty).setLevel(logging.INFO)

# Service and namespace default to the template's values when the environment does not set them.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "buy-with-prime-integration")
logger = Logger(service=SERVICE, log_uncaught_exceptions=False)
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BuyWithPrimeIntegration"))


def count(name: str, value: int = 1) -> None:
    """Add to a counter flushed with the invocation's metrics."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_with_reason(name: str, reason: str) -> None:
    """Emit a counter with a `reason` dimension (the reasons form a small fixed set)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="reason", value=reason)


def count_with_class(name: str, failure_class: str) -> None:
    """Emit a counter with the service and a `class` dimension (shared/failures.py: four classes)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        metric.add_dimension(name="class", value=failure_class)

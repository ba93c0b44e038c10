"""The whole system on one machine, no Docker, no AWS account: moto (server mode) provisioned from
template.yaml, the Buy with Prime sandbox, an HTTP front that speaks API Gateway's payload 2.0 to
the unchanged handlers, and SQS pollers that feed SQS-triggered functions like Lambda's event
source mapping. `python -m devtools.local_stack` starts it for a person (`make dev`)."""

from devtools.local_stack.aws import LocalAws, start_local_aws
from devtools.local_stack.front import LocalFront
from devtools.local_stack.functions import LocalFunction
from devtools.local_stack.poller import PollStats, SqsPoller, SqsSource
from devtools.local_stack.stack import LocalStack

__all__ = [
    "LocalAws",
    "LocalFront",
    "LocalFunction",
    "LocalStack",
    "PollStats",
    "SqsPoller",
    "SqsSource",
    "start_local_aws",
]

"""LocalStack plugins that let its community edition deploy template.yaml with no Docker and no
download (tests/e2e/test_cloudformation_deploy.py):

- DynamoDB and DynamoDB Streams served by LocalStack's bundled moto. Its own providers proxy to
  DynamoDB Local, which needs a JDK and a download.
- A Lambda runtime executor that never starts a runtime. Docker's executor pulls a python3.13
  image and downloads the runtime init binary when a function is created; with this one a
  function becomes Active at once, and an invocation fails (the functions are tested in-process
  and with `sam local invoke` elsewhere, never here).
"""

from __future__ import annotations

from typing import Any

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.aws.api.dynamodbstreams import DynamodbstreamsApi
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from localstack.services.moto import MotoFallbackDispatcher
from localstack.services.plugins import Service, aws_provider


class _MotoDynamoDB(DynamodbApi):
    """Every operation raises NotImplementedError, which MotoFallbackDispatcher sends to moto."""


class _MotoDynamoDBStreams(DynamodbstreamsApi):
    pass


@aws_provider(api="dynamodb", name="moto")
def dynamodb() -> Service:
    return Service.for_provider(_MotoDynamoDB(), dispatch_table_factory=MotoFallbackDispatcher)


@aws_provider(api="dynamodbstreams", name="moto")
def dynamodbstreams() -> Service:
    return Service.for_provider(_MotoDynamoDBStreams(), dispatch_table_factory=MotoFallbackDispatcher)


class OfflineRuntimeExecutor(RuntimeExecutor):
    """Functions are created, versioned and wired (event source mappings, permissions); never run."""

    @classmethod
    def prepare_version(cls, function_version: Any) -> None:
        return None

    @classmethod
    def cleanup_version(cls, function_version: Any) -> None:
        return None

    @classmethod
    def validate_environment(cls) -> bool:
        return True

    def start(self, env_vars: dict[str, str]) -> None:
        raise LambdaRuntimeException("this LocalStack runs no Lambda runtime (offline executor)")

    def stop(self) -> None:
        return None

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return "http://127.0.0.1:0"

    def invoke(self, payload: dict[str, str]) -> Any:
        raise LambdaRuntimeException("this LocalStack runs no Lambda runtime (offline executor)")

    def get_logs(self) -> str:
        return ""


class OfflineRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "offline"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return OfflineRuntimeExecutor

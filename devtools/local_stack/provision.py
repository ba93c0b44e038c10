"""Create a template's AWS resources in moto, generically by resource type, from each resource's
own (resolved) Properties. Types the local stack does not need (functions, APIs, log groups,
queue policies) are not created; a reference to one resolves to a placeholder name and ARN."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any

from devtools.local_stack.intrinsics import LocalResource, Resolver
from devtools.template import dynamodb_table_spec

DEFAULT_BUS_NAME = "bwp-local-partner-bus"

# AWS::SQS::Queue property -> SQS attribute (same name); SSE/KMS and tags have no local meaning.
_QUEUE_ATTRIBUTES = frozenset(
    {
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
    }
)
_QUEUE_IGNORED = frozenset(
    {"QueueName", "SqsManagedSseEnabled", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "Tags"}
)
_TARGET_FIELDS = ("Id", "Arn", "Input", "InputPath", "InputTransformer", "SqsParameters", "RoleArn")
_TARGET_DELIVERY_FIELDS = ("DeadLetterConfig", "RetryPolicy")


class Provisioner:
    """Provisions resources on first lookup (so dependencies come first) and remembers them."""

    def __init__(
        self,
        template: Mapping[str, Any],
        client: Callable[[str], Any],
        *,
        region: str,
        account_id: str,
        stack_name: str,
        bus_name: str = DEFAULT_BUS_NAME,
        secret_values: Mapping[str, str] | None = None,
        default_secret_value: str | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        function_urls: Mapping[str, str] | None = None,
    ) -> None:
        """`function_urls`: the local URL of each function URL SAM generates (`<Function>Url`)."""
        self.template = template
        self._function_urls = dict(function_urls or {})
        self._client = client
        self.region, self.account_id, self.stack_name = region, account_id, stack_name
        self._bus_name = bus_name
        self._secret_values = dict(secret_values or {})
        self._default_secret_value = default_secret_value
        self.resources: dict[str, LocalResource] = {}
        self.bus_names: dict[str, str] = {}  # the bus's name in the template -> its local name
        self.skipped: dict[str, str] = {}  # logical ID -> why it was not created
        self.notes: list[str] = []  # where the local copy differs from the template, and why
        self._in_progress: set[str] = set()
        buses = {
            logical_id: resource
            for logical_id, resource in template.get("Resources", {}).items()
            if resource.get("Type") == "AWS::Events::EventBus"
        }
        forced = frozenset(str(r["Condition"]) for r in buses.values() if "Condition" in r)
        self.resolver = Resolver(
            template,
            self.lookup,
            pseudo={
                "AWS::Region": region,
                "AWS::AccountId": account_id,
                "AWS::StackName": stack_name,
                "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
            parameter_overrides=parameter_overrides,
            forced_conditions=forced,
        )
        for name in sorted(forced):
            if not self.resolver.unforced(name):
                self.notes.append(f"condition {name} is false but treated as true: the local stack creates the bus")
        self._creators: dict[str, Callable[[str, dict[str, Any]], LocalResource]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::SQS::Queue": self._queue,
            "AWS::Events::EventBus": self._bus,
            "AWS::Events::Rule": self._rule,
            "AWS::Events::Archive": self._archive,
        }

    # --- driving -----------------------------------------------------------------------------
    def provision_all(self) -> None:
        for logical_id, resource in self.template.get("Resources", {}).items():
            condition = resource.get("Condition")
            if resource.get("Type") not in self._creators:
                self.skipped[logical_id] = f"{resource.get('Type')} is not needed locally"
            elif condition is not None and not self.resolver.condition(str(condition)):
                self.skipped[logical_id] = f"condition {condition} is false"
            else:
                self.lookup(logical_id)

    def lookup(self, logical_id: str) -> LocalResource:
        if logical_id in self.resources:
            return self.resources[logical_id]
        if logical_id in self._function_urls and logical_id not in self.template["Resources"]:
            return self._function_url(logical_id)
        resource = self.template["Resources"][logical_id]
        kind = str(resource.get("Type"))
        creator = self._creators.get(kind)
        if creator is None:
            return self._placeholder(logical_id, kind)
        if "Condition" in resource and not self.resolver.condition(str(resource["Condition"])):
            raise ValueError(f"{logical_id} is referenced but its condition {resource['Condition']} is false")
        if logical_id in self._in_progress:
            raise ValueError(f"circular reference through {logical_id}")
        self._in_progress.add(logical_id)
        try:
            properties = self.resolver.resolve(resource.get("Properties", {}))
            created = creator(logical_id, properties)
        finally:
            self._in_progress.discard(logical_id)
        self.resources[logical_id] = created
        return created

    def _placeholder(self, logical_id: str, kind: str) -> LocalResource:
        service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "local"
        arn = f"arn:aws:{service}:{self.region}:{self.account_id}:{self.stack_name}-{logical_id}"
        return LocalResource(logical_id, kind, logical_id, {"Arn": arn})

    def _function_url(self, logical_id: str) -> LocalResource:
        """SAM's AWS::Lambda::Url of a function's FunctionUrlConfig, served on loopback."""
        url = self._function_urls[logical_id]
        function = self._placeholder(logical_id.removesuffix("Url"), "AWS::Lambda::Function")
        created = LocalResource(
            logical_id, "AWS::Lambda::Url", url, {"FunctionUrl": url, "FunctionArn": function.attributes["Arn"]}
        )
        self.resources[logical_id] = created
        return created

    def _local_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"

    # --- one creator per type ----------------------------------------------------------------
    def _table(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        spec = dynamodb_table_spec({"Resources": {logical_id: {"Properties": properties}}}, logical_id)
        name = str(properties.get("TableName") or self._local_name(logical_id))
        dynamodb = self._client("dynamodb")
        arguments = {"TableName": name, **{k: v for k, v in spec.items() if k[0].isupper()}}
        if properties.get("StreamSpecification"):
            arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        description = dynamodb.create_table(**arguments)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification") or {}
        if _true(ttl.get("Enabled")):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
            self.notes.append(f"{logical_id}: TTL on {ttl['AttributeName']} is enabled, but moto never expires items")
        attributes = {"Arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            attributes["StreamArn"] = description["LatestStreamArn"]
        return LocalResource(logical_id, "AWS::DynamoDB::Table", name, attributes)

    def _secret(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = str(properties.get("Name") or self._local_name(logical_id))
        value = self._secret_values.get(logical_id, self._default_secret_value)
        if value is None:
            value = properties.get("SecretString") or _generated_secret(properties.get("GenerateSecretString") or {})
        arn = self._client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        return LocalResource(logical_id, "AWS::SecretsManager::Secret", arn, {"Id": arn})

    def _queue(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        unknown = set(properties) - _QUEUE_ATTRIBUTES - _QUEUE_IGNORED
        if unknown:
            raise ValueError(f"{logical_id}: AWS::SQS::Queue properties not handled locally: {sorted(unknown)}")
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else _attribute_text(value)
            for key, value in properties.items()
            if key in _QUEUE_ATTRIBUTES
        }
        name = str(properties.get("QueueName") or self._local_name(logical_id))
        if _true(properties.get("FifoQueue")) and not name.endswith(".fifo"):
            name += ".fifo"
        sqs = self._client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return LocalResource(logical_id, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _bus(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        # moto breaks on bus names containing "/" (aws.partner/...): a plain local name, mapped.
        partner = bool(properties.get("EventSourceName"))  # the app event bus is a plain custom bus
        name = self._bus_name if partner else self._local_name(logical_id)
        template_name = str(properties.get("Name") or logical_id)
        self.bus_names[template_name] = name
        arn = self._client("events").create_event_bus(Name=name)["EventBusArn"]
        if properties.get("EventSourceName"):
            self.notes.append(f"{logical_id}: EventSourceName not associated locally (publish to {name} directly)")
        return LocalResource(logical_id, "AWS::Events::EventBus", name, {"Arn": arn, "Name": name})

    def local_bus_name(self, name_or_arn: str | None) -> str:
        """The local bus for a name, a local name or an ARN found in the template."""
        if not name_or_arn or name_or_arn == "default":
            return "default"
        name = name_or_arn.split(":event-bus/", 1)[1] if ":event-bus/" in name_or_arn else name_or_arn
        if name in self.bus_names.values():
            return name
        if name in self.bus_names:
            return self.bus_names[name]
        raise ValueError(f"event bus {name_or_arn!r} is not a bus of this template")

    def _rule(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        events = self._client("events")
        bus = self.local_bus_name(properties.get("EventBusName"))
        name = str(properties.get("Name") or self._local_name(logical_id))
        arguments: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": properties.get("State", "ENABLED")}
        pattern = properties.get("EventPattern")
        if pattern is not None:
            arguments["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        for optional in ("ScheduleExpression", "Description"):
            if optional in properties:
                arguments[optional] = properties[optional]
        arn = events.put_rule(**arguments)["RuleArn"]
        targets = [
            {k: v for k, v in target.items() if k in _TARGET_FIELDS + _TARGET_DELIVERY_FIELDS}
            for target in properties.get("Targets", [])
        ]
        if targets:
            self._put_targets(events, logical_id, name, bus, targets)
        return LocalResource(logical_id, "AWS::Events::Rule", name, {"Arn": arn})

    def _archive(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = str(properties.get("ArchiveName") or self._local_name(logical_id))[:48]  # EventBridge's limit
        source = str(properties["SourceArn"])
        bus = self.local_bus_name(source)
        arguments: dict[str, Any] = {
            "ArchiveName": name,
            "EventSourceArn": self._client("events").describe_event_bus(Name=bus)["Arn"],
            "RetentionDays": int(properties.get("RetentionDays", 0)),
        }
        pattern = properties.get("EventPattern")
        if pattern is not None:
            arguments["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        arn = self._client("events").create_archive(**arguments)["ArchiveArn"]
        return LocalResource(logical_id, "AWS::Events::Archive", name, {"Arn": arn, "ArchiveName": name})

    def _put_targets(self, events: Any, logical_id: str, rule: str, bus: str, targets: list[dict[str, Any]]) -> None:
        try:
            answer = events.put_targets(Rule=rule, EventBusName=bus, Targets=targets)
        except Exception as error:
            plain = [{k: v for k, v in t.items() if k not in _TARGET_DELIVERY_FIELDS} for t in targets]
            if plain == targets:
                raise
            self.notes.append(f"{logical_id}: moto refused DeadLetterConfig/RetryPolicy ({error}); targets set without")
            answer = events.put_targets(Rule=rule, EventBusName=bus, Targets=plain)
        if answer.get("FailedEntryCount"):
            raise ValueError(f"{logical_id}: put_targets failed: {answer['FailedEntries']}")


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _attribute_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _generated_secret(spec: Mapping[str, Any]) -> str:
    """What GenerateSecretString produces: the template JSON with a random value under the key."""
    alphabet = string.ascii_letters + string.digits
    value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" in spec and "GenerateStringKey" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = value
        return json.dumps(document)
    return value

"""docs/operations.md has a runbook entry for every alarm the template creates, and each alarm on
the integration's own metrics watches a metric the code really emits, in the namespace and with
the service dimension the functions publish under (Globals' Powertools variables)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devtools.template import PROJECT_ROOT, load_template, resources_of_type

DOC = (PROJECT_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def emitted_metrics() -> set[str]:
    names: set[str] = set()
    for path in (PROJECT_ROOT / "src").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for arguments in re.findall(r"\bcount(?:_with_reason|_with_class)?\(([^()]*)\)", text):
            names |= set(re.findall(r"\"([A-Z][A-Za-z]+)\"", arguments))
        names |= set(re.findall(r"add_metric\(\s*name=\"([A-Za-z]+)\"", text))
        names |= set(re.findall(r"\(\s*\"([A-Za-z]+)\",\s*report\.", text))  # the sweep's gauges
        names |= set(re.findall(r"Verdict\.[A-Z_]+: \"([A-Za-z]+)\"", text))  # the events' verdicts
    return names


def test_every_alarm_has_a_runbook_entry() -> None:
    anchors = set(re.findall(r"^### ([a-z0-9]+)$", DOC, re.M))
    missing = [
        name for name in resources_of_type(load_template(), "AWS::CloudWatch::Alarm") if name.lower() not in anchors
    ]
    assert not missing, f"docs/operations.md has no entry for {missing}"


def _metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches: its own, or those of its metric-math expression."""
    if "MetricName" in alarm:
        return [alarm]
    return [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]


def test_alarms_on_our_metrics_watch_what_the_code_emits() -> None:
    template = load_template()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    emitted = emitted_metrics()
    service = {"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}
    ours = {
        (name, metric["MetricName"]): metric
        for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        for metric in _metrics_of(alarm["Properties"])
        if not str(metric.get("Namespace", "")).startswith("AWS/")
    }
    assert ours  # the handled-failure alarms exist
    for (name, metric_name), metric in ours.items():
        assert metric["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"], name
        assert metric["Dimensions"][0] == service, name
        assert metric_name in emitted, f"{name}: no code emits {metric_name}"


def test_duration_alarms_fire_at_80_percent_of_their_functions_timeout() -> None:
    template = load_template()
    default_timeout = template["Globals"]["Function"]["Timeout"]
    durations = {
        name: alarm["Properties"]
        for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("MetricName") == "Duration"
    }
    assert durations
    for name, properties in durations.items():
        (dimension,) = properties["Dimensions"]
        function = template["Resources"][dimension["Value"]["Ref"]]["Properties"]
        assert properties["Threshold"] == pytest.approx(0.8 * function.get("Timeout", default_timeout) * 1000), name


def test_the_dashboard_is_valid_json_on_metrics_that_exist() -> None:
    template = load_template()
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body, variables = (body, {}) if isinstance(body, str) else body  # !Sub [text, {variable: value}]
    references = set(re.findall(r"\$\{([^}]+)\}", body))
    for reference in references - {"AWS::Region"} - set(variables):
        assert reference.split(".")[0] in template["Resources"], f"the dashboard names no resource {reference}"
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    ours = {m[1] for w in widgets for m in w["properties"]["metrics"] if m[0] == namespace}
    assert ours and not ours - emitted_metrics(), f"no code emits {sorted(ours - emitted_metrics())}"

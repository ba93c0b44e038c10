"""No input body can crash the events handler or fail the whole batch (property-based)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.apigw import LambdaContext
from devtools.sqs import sqs_record
from events import handler
from tests.events_driver import EventsDriver

BP = "amzn1.bp.product.fuzz"
INSTALLATION = "amzn1.bwp.installation.fuzz"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=40) | st.integers(),
        "detail-type": st.sampled_from(["ORDER_CONFIRMED", "ITEM_DELIVERED", "", "X"]) | st.text(max_size=20),
        "source": st.sampled_from(["aws.partner/buywithprime/x", "other"]) | st.text(max_size=20),
        "resources": st.lists(st.sampled_from([f"businessProduct/{BP}/order/o-1", "junk/path"]) | st.text(max_size=30)),
        "detail": json_values,
        "account": json_values,
    },
)
bodies = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    envelope_like.map(json.dumps),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.lists(bodies, min_size=1, max_size=5))
def test_any_bodies_next_to_a_valid_event(events: EventsDriver, noise: list[str]) -> None:
    if not events.items_with_pk_prefix(f"INSTALLATION#{INSTALLATION}"):
        events.install(INSTALLATION, BP)
    valid = events.order_event(BP, "o-fuzz")
    records = [sqs_record(body) for body in [*noise, json.dumps(valid)]]
    answer: dict[str, Any] = handler.handle({"Records": records}, LambdaContext(), events.lambda_deps)
    # nothing is sent back to the queue: garbage is recorded, the valid event processed (or a duplicate)
    assert answer == {"batchItemFailures": []}
    record = events.event_record(valid["detail"]["eventId"])
    assert record is not None and record["outcome"] == "processed"


def test_a_batch_with_odd_records_still_answers(events: EventsDriver) -> None:
    answer = handler.handle({"Records": [{"messageId": "m-1"}, "not a record"]}, LambdaContext(), events.lambda_deps)
    assert answer == {"batchItemFailures": []}
    assert events.event_record("sqs:m-1") is not None


def test_the_table_being_unreachable_sends_every_record_back(events: EventsDriver) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise ConnectionError("table unreachable")

    deps = events.new_lambda()
    deps.dynamodb = Broken()
    records = [sqs_record(json.dumps(events.order_event(BP, f"o-{i}"))) for i in range(3)]
    answer = handler.handle({"Records": records}, LambdaContext(), deps)
    assert sorted(i["itemIdentifier"] for i in answer["batchItemFailures"]) == sorted(r["messageId"] for r in records)

"""The `publish` task kind in the spec: YAML (with line-numbered errors), the Python
`publish(...)` helper, and template checks on its destination, headers and body."""

from __future__ import annotations

import pytest

from orchestrion import publish, task, workflow
from orchestrion.errors import SpecError
from orchestrion.spec.model import PublishAction
from orchestrion.spec.yaml.loader import load_yaml_text

GOOD = """\
name: ingest
params:
  order_id: {type: string}
tasks:
  notify:
    publish: {kind: nats, connection: events, subject: "orders.{{ params.order_id }}",
              body: {id: "{{ params.order_id }}"}, headers: {source: ingest}}
"""


def test_yaml_publish_becomes_a_publish_action() -> None:
    spec = load_yaml_text(GOOD)
    action = spec.task("notify").action
    assert isinstance(action, PublishAction)
    assert (action.broker, action.connection, action.destination) == (
        "nats", "events", "orders.{{ params.order_id }}",
    )  # fmt: skip
    assert action.body == {"id": "{{ params.order_id }}"}
    assert action.headers == {"source": "ingest"} and action.jetstream is True


def _task(publish_text: str) -> str:
    return f"name: w\ntasks:\n  t:\n    publish: {publish_text}\n"


# fmt: off
BAD = [
    ("{connection: c, stream: s}", "a publish needs 'kind'", 4),
    ("{kind: kafka, connection: c, topic: t}", "one of redis, rabbitmq, nats, mqtt", 4),
    ("{kind: redis, connection: c, topic: t}", "a redis publish takes 'stream', not 'topic'", 4),
    ("{kind: mqtt, connection: c}", "a mqtt publish needs 'topic'", 4),
    ("{kind: nats, connection: c, subject: s, exchange: e}", "'exchange' is for rabbitmq", 4),
    ("{kind: redis, connection: 'a/b', stream: s}", "connection", 4),
    ("{kind: redis, connection: c, stream: s, color: red}", "color", 4),
    ("{kind: redis, connection: c, stream: '{{ nope.x }}'}", "nope", 4),
    ("{kind: redis, connection: c, stream: s, body: '{{ params.missing }}'}", "missing", 4),
]
# fmt: on


@pytest.mark.parametrize(("text", "message", "line"), BAD)
def test_bad_publish_is_refused_with_its_line(text: str, message: str, line: int) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text(_task(text), source="p.yaml")
    assert message in str(info.value)
    assert info.value.line == line, str(info.value)


def test_python_publish_templates_refs_and_depends_on_them() -> None:
    @task
    def make_id() -> str:
        return "x"

    @workflow
    def flow(order_id: str) -> None:
        ident = make_id()
        publish(
            "notify",
            kind="rabbitmq",
            connection="orders-mq",
            routing_key=f"orders.{order_id}",
            body={"id": ident, "order": order_id},
            headers={"source": "flow"},
            retries=2,
        )

    spec = flow.spec
    t = spec.task("notify")
    assert isinstance(t.action, PublishAction)
    assert t.action.queue == "orders.{{ params.order_id }}"
    assert t.action.body == {"id": "{{ tasks.make_id }}", "order": "{{ params.order_id }}"}
    assert t.depends_on == ("make_id",)
    assert t.retry.retries == 2


def test_python_publish_names_a_wrong_destination() -> None:
    @workflow
    def bad() -> None:
        publish("p", kind="redis", connection="c", topic="t")

    with pytest.raises(SpecError, match="a redis publish takes 'stream', not 'topic'"):
        _ = bad.spec


TRIGGERED = """\
name: ingest_order
params:
  order_id: {type: string}
triggers:
  - broker: {kind: rabbitmq, connection: orders-mq, queue: orders.created}
    params: {order_id: "{{ message.json.id }}"}
    filter: "message.json.total > 100"
tasks:
  notify:
    publish: {kind: nats, connection: events, subject: "orders.{{ params.order_id }}",
              body: {id: "{{ params.order_id }}"}}
"""


def test_the_issue_example_loads_with_a_broker_trigger() -> None:
    spec = load_yaml_text(TRIGGERED)
    (trigger,) = spec.triggers
    assert trigger.broker is not None
    assert (trigger.broker.kind, trigger.broker.destination) == ("rabbitmq", "orders.created")
    assert trigger.key("ingest_order") == "ingest_order/rabbitmq:orders-mq:orders.created"


def _trigger(broker: str, extra: str = "") -> str:
    return (
        "name: w\nparams:\n  x: {type: string, default: a}\ntriggers:\n"
        f"  - broker: {broker}\n{extra}tasks:\n  t: {{shell: ['true']}}\n"
    )


# fmt: off
BAD_TRIGGERS = [
    (_trigger("{kind: redis, connection: c, queue: q}"), "reads a 'stream', not a 'queue'"),
    (_trigger("{kind: nats, connection: c}"), "a nats trigger needs 'subject'"),
    (_trigger("{kind: mqtt, connection: c, topic: t, color: red}"), "color"),
    (_trigger("{kind: mqtt, connection: c, topic: t, key: 'event.id'}"), "event"),
    (_trigger("{kind: mqtt, connection: c, topic: t}", "    filter: 'event.x > 1'\n"), "event"),
    (_trigger("{kind: redis, connection: c, stream: s}", "    event: x\n"), "exactly one of"),
]
# fmt: on


@pytest.mark.parametrize(("text", "message"), BAD_TRIGGERS)
def test_bad_broker_triggers_are_refused(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_yaml_text(text, source="t.yaml")


def test_python_broker_trigger() -> None:
    from orchestrion import broker

    @workflow(triggers=[broker("redis", "bus", stream="orders", params={"x": "{{ message.id }}"})])
    def consumer(x: str = "") -> None:
        publish("p", kind="redis", connection="bus", stream="out", body=x)

    (trigger,) = consumer.spec.triggers
    assert trigger.broker is not None and trigger.broker.stream == "orders"
    with pytest.raises(SpecError, match="a redis trigger reads a 'stream', not a 'topic'"):
        broker("redis", "bus", topic="t")

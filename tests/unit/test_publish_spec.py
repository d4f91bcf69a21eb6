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

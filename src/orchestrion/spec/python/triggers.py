"""``broker(...)`` and ``assets_updated(...)``: triggers for ``@workflow(triggers=[...])``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from orchestrion.errors import SpecError
from orchestrion.spec.model import TriggerSpec
from orchestrion.spec.python.options import validation_message
from orchestrion.spec.structs import Invalid

__all__ = ["assets_updated", "broker"]


def broker(
    kind: str,
    connection: str,
    *,
    stream: str | None = None,
    queue: str | None = None,
    subject: str | None = None,
    topic: str | None = None,
    group: str | None = None,
    key: str | None = None,
    max_in_flight: int | None = None,
    params: Mapping[str, Any] | None = None,
    filter: str | None = None,  # the trigger's own word, as in YAML
) -> TriggerSpec:
    """Start a run for each message from a broker, as YAML's ``broker:`` trigger does.

    ``params`` are templates over ``message`` (``{{ message.json.id }}``), ``filter`` an
    expression over it. ``kind`` is ``redis`` (``stream``), ``rabbitmq`` (``queue``),
    ``nats`` (``subject``) or ``mqtt`` (``topic``); ``key`` an expression identifying a
    message instead of the broker's id; ``max_in_flight`` the most unfinished runs of the
    trigger at once (the consumer stops pulling at the limit).
    """
    source = {
        "kind": kind,
        "connection": connection,
        "stream": stream,
        "queue": queue,
        "subject": subject,
        "topic": topic,
        "group": group,
        "key": key,
        "max_in_flight": max_in_flight,
    }
    try:
        return TriggerSpec.model_validate(
            {
                "broker": {k: v for k, v in source.items() if v is not None},
                "params": dict(params or {}),
                "filter": filter,
            }
        )
    except Invalid as exc:
        raise SpecError(f"broker trigger: {validation_message(exc)}") from None


def assets_updated(
    keys: Sequence[str],
    *,
    when: Literal["all_updated", "any_updated"] = "all_updated",
    params: Mapping[str, Any] | None = None,
    filter: str | None = None,  # the trigger's own word, as in YAML
) -> TriggerSpec:
    """Start a run once every asset of `keys` (``all_updated``) or any (``any_updated``)
    has a new event, per partition, as YAML's ``assets:`` trigger does. ``params`` are
    templates over ``partition`` and ``assets`` (``{{ partition }}``)."""
    try:
        return TriggerSpec.model_validate(
            {
                "assets": list(keys),
                "when": when,
                "params": dict(params or {}),
                "filter": filter,
            }
        )
    except Invalid as exc:
        raise SpecError(f"asset trigger: {validation_message(exc)}") from None

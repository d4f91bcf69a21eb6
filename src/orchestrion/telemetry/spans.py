"""A finished span as Orchestrion describes it, before any tracing library sees it."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

__all__ = ["Attribute", "SpanRecord"]

#: A span attribute's value.
Attribute = str | int | float | bool


class SpanRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A finished span, with the ids it was derived to have (times in epoch seconds)."""

    name: str
    trace_id: int
    span_id: int
    #: None for a trace's root span.
    parent_span_id: int | None
    start: float
    end: float
    attributes: Mapping[str, Attribute] = msgspec.field(default_factory=dict)
    #: Set for a failed span (its status is then ERROR, with this description).
    error: str | None = None

"""What starts a workflow's runs besides a person: schedules and triggers (part of the spec).

A `ScheduleSpec` is a cron expression or a fixed interval in a time zone, with a catch-up
policy (what to do about fires missed while no scheduler ran), an overlap policy (what to do
when the previous scheduled run is still going), a deterministic jitter and an optional
start/end window. Fire times are computed by `orchestrion.triggers.cron`.

A `TriggerSpec` starts a run when an event arrives (``event: orders.created``), when a
run of another workflow finishes (``after: {workflow: A, outcome: succeeded}``) or when a
message arrives from a broker (``broker: {kind, connection, queue|subject|stream|topic}``),
if its ``filter`` expression is true; its ``params`` are templates over the event.

Expression scopes: schedule params may use ``fire`` (``time``, ``local``, ``date``,
``timestamp``, ``schedule``); event triggers ``event`` (``type``, ``id``, ``payload``); run
triggers also ``run`` (``id``, ``workflow``, ``state``, ``result``, ``params``); broker
triggers ``message`` (``id``, ``body``, ``json``, ``headers``, ``destination``, ``broker``).
"""

import datetime as dt
import hashlib
import json
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from msgspec import Meta

from orchestrion.spec.structs import (
    Duration,
    FieldProblem,
    Int,
    Line,
    Name,
    Pattern,
    Range,
    SpecModel,
    Str,
    Text,
)

__all__ = [
    "ASSET_SCOPE",
    "EVENT_SCOPE",
    "FIRE_SCOPE",
    "MESSAGE_SCOPE",
    "RUN_SCOPE",
    "AfterSpec",
    "BrokerSource",
    "ScheduleSpec",
    "TriggerSpec",
    "check_expressions",
    "check_triggers",
    "parse_instant",
]

#: Event types: dotted words; ``*`` matches any run of characters (``orders.*``).
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_*][A-Za-z0-9_.:*\-]{0,199}$"

FIRE_SCOPE = frozenset({"fire"})
EVENT_SCOPE = frozenset({"event"})
RUN_SCOPE = frozenset({"event", "run"})
MESSAGE_SCOPE = frozenset({"message"})
#: An asset trigger's scope: the partition its events share (None if unpartitioned) and,
#: by asset key, the newest event that fired it (`orchestrion.triggers.assets`).
ASSET_SCOPE = frozenset({"partition", "assets"})

#: Where each broker's consumer reads: the one source field a broker trigger names.
SOURCES = {"redis": "stream", "rabbitmq": "queue", "nats": "subject", "mqtt": "topic"}


class ScheduleSpec(SpecModel, frozen=True, kw_only=True):
    """One schedule: exactly one of ``cron`` or ``every``."""

    #: A stable name; by default the schedule is named by a hash of what it fires.
    name: Name | None = None
    cron: Annotated[Line, Meta(min_length=1, max_length=200)] | None = None
    #: A fixed interval, anchored at ``start`` (or the Unix epoch).
    every: Annotated[Duration, Range(ge=1)] | None = None
    timezone: Line = "UTC"
    #: Run parameters; string values may be templates over ``fire``.
    params: dict[str, Any] = {}
    #: ISO datetimes bounding the nominal fire times (naive ones are in ``timezone``).
    start: Line | None = None
    end: Line | None = None
    #: After downtime: fire nothing missed, only the latest missed, or all (up to the cap).
    catchup: Literal["none", "latest", "all"] = "latest"
    max_catchup: Annotated[Int, Meta(ge=1, le=10_000)] = 100
    #: When the previous run of this schedule is unfinished.
    overlap: Literal["skip", "queue", "cancel_previous", "allow"] = "allow"
    #: Delay each fire by a deterministic amount in [0, jitter).
    jitter: Annotated[Duration, Range(ge=0, le=86_400)] = 0.0
    #: Asset keys (the workflow's namespace) that must each have an event since the
    #: previous fire was made: a due fire waits until they do, then fires with its
    #: nominal time (`orchestrion.triggers.scheduler`).
    require_fresh: Annotated[tuple[Str, ...], Meta(max_length=100)] = ()

    def check(self) -> None:
        """The cron expression and time zone, one of cron and every, the window, the params."""
        from orchestrion.spec.cron import check_cron, check_timezone

        for field, value, checker in (
            ("cron", self.cron, check_cron),
            ("timezone", self.timezone, check_timezone),
        ):
            try:
                if value is not None:
                    checker(value)
            except ValueError as exc:
                raise FieldProblem(field, str(exc)) from None
        if (self.cron is None) == (self.every is None):
            raise ValueError("a schedule needs exactly one of 'cron' or 'every'")
        start = None if self.start is None else parse_instant(self.start, self.timezone)
        end = None if self.end is None else parse_instant(self.end, self.timezone)
        if start is not None and end is not None and end < start:
            raise ValueError(f"the schedule's end {self.end!r} is before its start {self.start!r}")
        for key, value in self.params.items():
            check_expressions(value, FIRE_SCOPE, f"params.{key}", whole=False)
        if self.require_fresh:
            _check_asset_keys(self.require_fresh)

    @property
    def ident(self) -> str:
        """Stable within a workflow: the name, or a hash of what and when it fires (so
        reordering schedules or changing their policies keeps their fire history)."""
        if self.name is not None:
            return self.name
        what = {"cron": self.cron, "every": self.every, "tz": self.timezone, "p": self.params}
        text = json.dumps(what, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def key(self, workflow: str) -> str:
        """The schedule's key in the store: fires are unique per (key, nominal time)."""
        return f"{workflow}/{self.ident}"

    @property
    def start_ts(self) -> float | None:
        """`start` as a timestamp (a naive time read in the schedule's time zone), or None."""
        return None if self.start is None else parse_instant(self.start, self.timezone)

    @property
    def end_ts(self) -> float | None:
        """`end` as a timestamp (a naive time read in the schedule's time zone), or None."""
        return None if self.end is None else parse_instant(self.end, self.timezone)

    @property
    def describe(self) -> str:
        """``cron '0 3 * * *' in Europe/Paris`` or ``every 300s``."""
        if self.cron is not None:
            return f"cron {self.cron!r} in {self.timezone}"
        return f"every {self.every:g}s"


class AfterSpec(SpecModel, frozen=True, kw_only=True):
    """A run trigger: start when a run of `workflow` finishes with `outcome`."""

    workflow: Name
    outcome: Literal["succeeded", "failed", "any"] = "succeeded"


class BrokerSource(SpecModel, frozen=True, kw_only=True):
    """A broker trigger's source: a Redis stream (read by a consumer group), a RabbitMQ
    queue, a NATS JetStream subject (a durable pull consumer) or an MQTT topic filter
    (QoS 1, a persistent session), through a named connection of the workflow's namespace."""

    kind: Literal["redis", "rabbitmq", "nats", "mqtt"]
    connection: Annotated[Str, Pattern(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")]
    stream: Annotated[Str, Meta(min_length=1, max_length=500)] | None = None
    queue: Annotated[Str, Meta(min_length=1, max_length=500)] | None = None
    subject: Annotated[Str, Meta(min_length=1, max_length=500)] | None = None
    topic: Annotated[Str, Meta(min_length=1, max_length=500)] | None = None
    #: Redis: the consumer group (default: one per trigger). NATS: the durable's name.
    group: Annotated[Str, Pattern(r"^[A-Za-z0-9_\-]{1,100}$")] | None = None
    #: An expression over ``message`` whose value identifies a message for deduplication,
    #: instead of the broker's id (MQTT has none; RabbitMQ's is the optional message_id).
    key: Str | None = None
    #: At most this many unfinished runs started by this trigger: the consumer stops
    #: pulling at the limit and the broker holds the messages (back-pressure).
    max_in_flight: Annotated[Int, Meta(ge=1, le=100_000)] | None = None

    @property
    def destination(self) -> str:
        """The stream, queue, subject or topic read."""
        return str(getattr(self, SOURCES[self.kind]))

    def check(self) -> None:
        """The one source field the broker reads, and a deduplication key that compiles."""
        wanted = SOURCES[self.kind]
        for name in SOURCES.values():
            if name != wanted and getattr(self, name) is not None:
                raise ValueError(f"a {self.kind} trigger reads a {wanted!r}, not a {name!r}")
        if getattr(self, wanted) is None:
            raise ValueError(f"a {self.kind} trigger needs {wanted!r}")
        if self.key is not None:
            check_expressions(self.key, MESSAGE_SCOPE, "key", whole=True)


class TriggerSpec(SpecModel, frozen=True, kw_only=True):
    """Start a run on an event (``event``), when another workflow's run ends (``after``)
    or on a broker's message (``broker``)."""

    event: Annotated[Str, Pattern(EVENT_TYPE_PATTERN)] | None = None
    after: AfterSpec | None = None
    broker: BrokerSource | None = None
    #: Asset keys (in the workflow's namespace): start a run when they have new events.
    assets: Annotated[tuple[Str, ...], Meta(min_length=1, max_length=100)] | None = None
    #: An asset trigger fires when every listed asset was updated, or any of them.
    when: Literal["all_updated", "any_updated"] | None = None
    #: An expression that must be true for the trigger to fire.
    filter: Text | None = None
    #: Run parameters; string values may be templates over the trigger's scope.
    params: dict[str, Any] = {}

    def check(self) -> None:
        """Exactly one source, and filters and params that read only the trigger's scope."""
        given = [self.event, self.after, self.broker, self.assets]
        if sum(x is not None for x in given) != 1:
            raise ValueError(
                "a trigger needs exactly one of 'event', 'after', 'broker' or 'assets'"
            )
        if self.when is not None and self.assets is None:
            raise ValueError("'when' (all_updated, any_updated) applies to asset triggers only")
        if self.assets is not None:
            _check_asset_keys(self.assets)
        if self.filter is not None:
            check_expressions(self.filter, self.scope, "filter", whole=True)
        for key, value in self.params.items():
            check_expressions(value, self.scope, f"params.{key}", whole=False)

    @property
    def scope(self) -> frozenset[str]:
        """The names the trigger's filter and params may read: ``event``, and ``run`` for an
        ``after`` trigger; ``message`` for a broker trigger."""
        if self.broker is not None:
            return MESSAGE_SCOPE
        if self.assets is not None:
            return ASSET_SCOPE
        return EVENT_SCOPE if self.event is not None else RUN_SCOPE

    def key(self, workflow: str) -> str:
        """A broker trigger's stable name: its consumer's lease and its messages' inbox
        source (a new version keeping the trigger keeps its consumer and its history).
        An asset trigger's: what it has consumed is kept under it."""
        if self.assets is not None:
            return f"{workflow}/assets:{self.when or 'all_updated'}:{','.join(sorted(self.assets))}"
        b = self.broker
        if b is None:
            raise ValueError("only a broker trigger has a key")
        return f"{workflow}/{b.kind}:{b.connection}:{b.destination}"


def _check_asset_keys(keys: Sequence[str]) -> None:
    import re

    from orchestrion.spec.assets import ASSET_KEY_PATTERN

    for key in keys:
        if not re.fullmatch(ASSET_KEY_PATTERN, key):
            raise ValueError(f"bad asset key {key!r}: letters, digits and _ . : / @ + = -")
    if len(set(keys)) != len(keys):
        raise ValueError("an asset trigger lists an asset twice")


def check_triggers(
    workflow: str,
    params: Mapping[str, Any],
    schedules: Sequence[ScheduleSpec],
    triggers: Sequence[TriggerSpec],
) -> None:
    """The workflow-level rules: schedule names are unique, every parameter a schedule or
    trigger sets is declared, a trigger sets every required one, and no workflow triggers
    itself.

    `params` maps parameter names to `ParamSpec`s (anything with ``required``/``default``).
    """
    seen: dict[str, int] = {}
    for i, schedule in enumerate(schedules):
        if schedule.ident in seen:
            raise ValueError(
                f"schedules[{i}] repeats schedules[{seen[schedule.ident]}]; give one of them"
                " different params or a 'name'"
            )
        seen[schedule.ident] = i
        # Required parameters a schedule misses fail its fires (recorded), not the spec:
        # specs registered before this check existed must stay loadable.
        _check_param_names(params, schedule.params, f"schedules[{i}]", required=False)
    for i, trigger in enumerate(triggers):
        _check_param_names(params, trigger.params, f"triggers[{i}]", required=True)
        if trigger.after is not None and trigger.after.workflow == workflow:
            raise ValueError(f"triggers[{i}]: a workflow cannot be triggered by its own runs")


def _check_param_names(
    declared: Mapping[str, Any], given: Mapping[str, Any], where: str, *, required: bool
) -> None:
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ValueError(f"{where}: unknown parameter {name!r} (declared: {known})")
    for name, param in declared.items():
        if required and param.required and param.default is None and name not in given:
            raise ValueError(f"{where}: required parameter {name!r} is not set")


def check_expressions(value: Any, scope: frozenset[str], field: str, *, whole: bool) -> None:
    """Raise ValueError unless every expression in `value` compiles and reads only `scope`.

    With `whole`, `value` is one expression (bare or one ``{{ }}``); otherwise string leaves
    of `value` may hold templates."""
    from orchestrion.errors import ExpressionError
    from orchestrion.spec.expressions import TEMPLATE_RE, compile_expression, whole_template

    texts: list[str] = []
    if whole:
        texts.append(whole_template(value) or value)
    else:
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                texts.extend(m.group(1) for m in TEMPLATE_RE.finditer(item))
                if "{{" in TEMPLATE_RE.sub("", item):
                    raise ValueError(f"{field}: '{{{{' without a closing '}}}}'")
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list | tuple):
                stack.extend(item)
    names = ", ".join(sorted(scope))
    for text in texts:
        try:
            expr = compile_expression(text)
        except ExpressionError as exc:
            raise ValueError(f"{field}: bad expression: {exc}") from None
        unknown = sorted(expr.names - scope)
        if unknown:
            raise ValueError(f"{field}: unknown name {unknown[0]!r} (use {names})")


def parse_instant(text: str, timezone: str) -> float:
    """Seconds since the epoch of an ISO date or datetime; naive ones are in `timezone`.
    Raises ValueError naming the text."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad datetime {text!r}: use ISO 8601 like 2026-11-01T00:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return when.timestamp()

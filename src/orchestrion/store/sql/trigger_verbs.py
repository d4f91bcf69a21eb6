"""Trigger verbs shared by every dialect: schedule fires, received events, backfill pacing
(the scheduler's cursors and duty leases are `duties.py`'s). Each function runs inside the
caller's one write transaction (`Advance`), so a fire row, its overlap decision and the run
it starts commit together or not at all.

Exactly-once rests on unique keys, not on who calls: a fire inserts
``(schedule_key, nominal)`` and an event ``(source, event_id)`` first; when that insert
finds the key taken, nothing else happens. Leases only keep two schedulers from doing the
same work twice; correctness never depends on them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from orchestrion.auth.redaction import redact
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import EventReceipt, FireRecord, Replay, RunRequest
from orchestrion.store.sql import lifecycle
from orchestrion.store.sql.advance import Advance, dumps, loads
from orchestrion.store.sql.queries import Q

__all__ = [
    "advance_schedule",
    "cancel_backfill",
    "create_backfill",
    "fire_schedule",
    "pace_backfill",
    "record_event",
    "schedule_trigger",
    "start_queued_fire",
]

NewId = Callable[[float], str]


def schedule_trigger(key: str, nominal: float) -> str:
    """A fire's run trigger and idempotency key: ``schedule:<key>@<UTC time>``, or
    ``backfill:<id>@<UTC time>`` for a backfill's (whose key is ``backfill:<id>``)."""
    prefix = key if key.startswith("backfill:") else f"schedule:{key}"
    return f"{prefix}@{_iso(nominal)}"


def _iso(when: float) -> str:
    value = dt.datetime.fromtimestamp(when, dt.UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


# --------------------------------------------------------------------------- schedules


def fire_schedule(
    adv: Advance,
    spec: WorkflowSpec,
    *,
    key: str,
    nominal: float,
    params: dict[str, Any],
    priority: int,
    overlap: str,
    error: str | None,
    new_id: NewId,
    missed: Sequence[float] = (),
) -> FireRecord | None:
    """Insert the fire and decide it; None when (key, nominal) was fired before. `missed`
    rides on the fire's unique key: recorded with the fire, or not at all."""
    fire_id = _insert_fire(adv, spec.name, key, nominal, params)
    if fire_id is None:
        return None
    advance_schedule(adv, key, spec.name, nominal, fired=True, missed=missed)

    def record(state: str, run_id: str | None = None) -> FireRecord:
        _set_fire(adv, fire_id, state, run_id, error)
        return FireRecord(
            id=fire_id,
            schedule_key=key,
            workflow=spec.name,
            nominal=nominal,
            state=state,
            run_id=run_id,
            params=params,
            error=error,
            created_at=adv.now,
        )

    if error is not None:
        adv.event(None, None, "schedule.failed", data=_data(key, nominal, error=error))
        return record("failed")
    # `allow` decides nothing on the schedule's unfinished runs: spare the read, which grows
    # with them.
    active = [] if overlap == "allow" else _unfinished(adv, spec.name, f"schedule:{key}@")
    queued = overlap == "queue" and _has_queued(adv, key, before=nominal)
    if active and overlap == "skip":
        adv.event(None, None, "schedule.skipped", data=_data(key, nominal, running=active[0]))
        return record("skipped")
    if (active or queued) and overlap == "queue":
        adv.event(None, None, "schedule.queued", data=_data(key, nominal, behind=active[:1]))
        return record("queued")
    if active and overlap == "cancel_previous":
        for run_id in active:
            reason = f"superseded by the schedule's fire at {_iso(nominal)}"
            lifecycle.cancel_run(adv, run_id, reason)
    return record("started", _start(adv, spec, key, nominal, params, priority, new_id))


def advance_schedule(
    adv: Advance,
    key: str,
    workflow: str,
    cursor: float,
    *,
    fired: bool = False,
    missed: Sequence[float] = (),
) -> None:
    """Move the schedule's cursor to `cursor` unless it is already past it; `missed` are
    the nominal times the catch-up policy skipped on the way (a ``schedule.missed`` event,
    which notifications read)."""
    adv.tx.execute(Q.advance_schedule, (key, workflow, cursor, cursor if fired else None, adv.now))
    if missed:
        data = _data(key, max(missed), count=len(missed), first=_iso(min(missed)))
        adv.event(None, None, "schedule.missed", data=data)


def start_queued_fire(
    adv: Advance, spec: WorkflowSpec, key: str, *, priority: int, new_id: NewId
) -> str | None:
    """Start the oldest queued fire of `key` if none of the schedule's runs is unfinished."""
    row = adv.tx.execute(Q.queued_fire + adv.for_update(), (key,)).fetchone()
    if row is None or _unfinished(adv, spec.name, f"schedule:{key}@"):
        return None
    run_id = _start(adv, spec, key, row["nominal"], loads(row["params"]), priority, new_id)
    _set_fire(adv, row["id"], "started", run_id, None)
    return run_id


def _start(
    adv: Advance,
    spec: WorkflowSpec,
    key: str,
    nominal: float,
    params: dict[str, Any],
    priority: int,
    new_id: NewId,
) -> str:
    trigger = schedule_trigger(key, nominal)
    run_id = lifecycle.create_run(
        adv,
        spec,
        params,
        run_id=new_id(adv.now),
        trigger=trigger,
        priority=priority,
        idempotency_key=trigger,
        parent_task_run_id=None,
    )
    adv.event(run_id, None, "schedule.fired", data=_data(key, nominal, run=run_id))
    audit_started(adv, spec, run_id, trigger, params)
    return run_id


def audit_started(
    adv: Advance, spec: WorkflowSpec, run_id: str, trigger: str, params: dict[str, Any]
) -> None:
    """The scheduler's audit record for a run it started (a schedule fire, a backfill step
    or a run trigger), in the transaction that starts it: exactly one per run, even with
    two schedulers racing for the same fire."""
    adv.tx.execute(
        Q.audit_run_started,
        (
            adv.now,
            f"run {spec.namespace}/{run_id}",
            spec.namespace,
            dumps(redact({"workflow": spec.name, "params": params})),
            trigger,
        ),
    )


def _insert_fire(
    adv: Advance, workflow: str, key: str, nominal: float, params: dict[str, Any]
) -> int | None:
    row = adv.tx.execute(Q.insert_fire, (key, workflow, nominal, dumps(params), adv.now)).fetchone()
    return None if row is None else int(row["id"])


def _set_fire(
    adv: Advance, fire_id: int, state: str, run_id: str | None, error: str | None
) -> None:
    adv.tx.execute(Q.set_fire, (state, run_id, error, fire_id))


def _unfinished(adv: Advance, workflow: str, prefix: str) -> list[str]:
    """Unfinished runs of `workflow` whose trigger starts with `prefix`, oldest first."""
    rows = adv.tx.execute(Q.unfinished_runs_of, (workflow, len(prefix), prefix)).fetchall()
    return [str(r["id"]) for r in rows]


def _has_queued(adv: Advance, key: str, *, before: float) -> bool:
    row = adv.tx.execute(Q.queued_fire_before, (key, before)).fetchone()
    return row is not None


def _data(key: str, nominal: float, **extra: Any) -> dict[str, Any]:
    return {"schedule": key, "nominal": _iso(nominal), **extra}


# --------------------------------------------------------------------------- events


def record_event(
    adv: Advance,
    *,
    source: str,
    event_id: str,
    event_type: str,
    payload: Any,
    runs: Sequence[RunRequest],
    errors: Sequence[str],
    new_id: NewId,
    replay: Replay | None = None,
) -> EventReceipt:
    """A new event's runs are created here; a repeated one (by event id, or by `replay`
    key) returns what its first delivery recorded, marked duplicate."""
    if replay is not None:
        adv.tx.execute(Q.prune_webhook_seen, (adv.now,))
        fresh = adv.tx.execute(
            Q.insert_webhook_seen, (replay.key, source, event_id, replay.until)
        ).fetchone()
        if fresh is None:
            seen = adv.tx.execute(Q.webhook_seen_entry, (replay.key,)).fetchone()
            return _duplicate(adv, seen["source"], seen["event_id"])
    errors_text = dumps(list(errors)) if errors else None
    row = adv.tx.execute(
        Q.insert_inbox,
        (source, event_id, event_type, dumps(payload), errors_text, adv.now),
    ).fetchone()
    if row is None:
        return _duplicate(adv, source, event_id)
    run_ids = [
        lifecycle.create_run(
            adv,
            req.spec,
            req.params,
            run_id=new_id(adv.now),
            trigger=req.trigger,
            priority=req.priority,
            idempotency_key=req.idempotency_key,
            parent_task_run_id=None,
        )
        for req in runs
    ]
    if source == "run":  # started by a run trigger: the scheduler acted (events are audited
        for req, run_id in zip(runs, run_ids, strict=True):  # by the request that sent them)
            audit_started(adv, req.spec, run_id, req.trigger, req.params)
    adv.tx.execute(Q.set_inbox_runs, (dumps(run_ids), row["id"]))
    data: dict[str, Any] = {"source": source, "id": event_id, "type": event_type}
    adv.event(None, None, "trigger.event", data={**data, "runs": run_ids, "errors": list(errors)})
    return EventReceipt(
        source=source,
        event_id=event_id,
        duplicate=False,
        run_ids=tuple(run_ids),
        errors=tuple(errors),
    )


def _duplicate(adv: Advance, source: str, event_id: str) -> EventReceipt:
    """The receipt of a redelivery: what the first delivery started (nothing, if its inbox
    entry is gone)."""
    first = adv.tx.execute(Q.inbox_entry, (source, event_id)).fetchone()
    return EventReceipt(
        source=source,
        event_id=event_id,
        duplicate=True,
        run_ids=tuple(loads(first["run_ids"])) if first else (),
        errors=tuple(loads(first["errors"]) or ()) if first else (),
    )


# --------------------------------------------------------------------------- backfills


def create_backfill(
    adv: Advance,
    spec: WorkflowSpec,
    *,
    backfill_id: str,
    key: str,
    start: float,
    end: float,
    total: int,
    max_active: int,
    priority: int,
) -> None:
    """Record a new backfill, running; `pace_backfill` creates its runs."""
    adv.tx.execute(
        Q.insert_backfill,
        (backfill_id, spec.name, spec.version, key, start, end, max_active, priority, total,
         adv.now),
    )  # fmt: skip
    adv.event(
        None,
        None,
        "backfill.created",
        data={"backfill": backfill_id, "workflow": spec.name, "schedule": key, "total": total},
    )


def pace_backfill(
    adv: Advance,
    spec: WorkflowSpec,
    backfill_id: str,
    fires: Sequence[tuple[float, dict[str, Any]]],
    *,
    exhausted: bool,
    new_id: NewId,
) -> list[str]:
    """Start runs for `fires` (in order) while the backfill is under its max active runs;
    complete it when `exhausted` (no nominal time left) and none of its runs is going."""
    row = adv.tx.execute(Q.backfill_for_pacing + adv.for_update(), (backfill_id,)).fetchone()
    if row is None or row["state"] != "running":
        return []
    key = f"backfill:{backfill_id}"
    active = len(_unfinished(adv, spec.name, f"{key}@"))
    started: list[str] = []
    for nominal, params in fires[: max(0, row["max_active"] - active)]:
        fire_id = _insert_fire(adv, spec.name, key, nominal, params)
        if fire_id is None:
            continue
        run_id = _start(adv, spec, key, nominal, params, row["priority"], new_id)
        _set_fire(adv, fire_id, "started", run_id, None)
        started.append(run_id)
        adv.tx.execute(Q.backfill_created_run, (nominal, nominal, backfill_id))
    if exhausted and not started and active == 0:
        adv.tx.execute(Q.complete_backfill, (adv.now, backfill_id))
        adv.event(None, None, "backfill.completed", data={"backfill": backfill_id})
    return started


def cancel_backfill(adv: Advance, backfill_id: str, workflow: str) -> bool:
    """Stop creating runs and cancel the backfill's unfinished ones; False if it ended."""
    cur = adv.tx.execute(Q.cancel_backfill, (adv.now, backfill_id))
    if cur.rowcount != 1:
        return False
    for run_id in _unfinished(adv, workflow, f"backfill:{backfill_id}@"):
        lifecycle.cancel_run(adv, run_id, f"backfill {backfill_id} canceled")
    adv.event(None, None, "backfill.canceled", data={"backfill": backfill_id})
    return True

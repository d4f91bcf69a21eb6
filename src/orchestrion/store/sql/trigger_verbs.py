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
from orchestrion.store.records import EventReceipt, FireRecord, RunRequest
from orchestrion.store.sql import lifecycle
from orchestrion.store.sql.advance import Advance, dumps, loads

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
) -> FireRecord | None:
    """Insert the fire and decide it; None when (key, nominal) was fired before."""
    fire_id = _insert_fire(adv, spec.name, key, nominal, params)
    if fire_id is None:
        return None
    advance_schedule(adv, key, spec.name, nominal, fired=True)

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
    active = _unfinished(adv, spec.name, f"schedule:{key}@")
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
    adv: Advance, key: str, workflow: str, cursor: float, *, fired: bool = False
) -> None:
    """Move the schedule's cursor to `cursor` unless it is already past it."""
    adv.tx.execute(
        "INSERT INTO schedule_state (schedule_key, workflow, cursor, last_fire, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (schedule_key) DO UPDATE SET"
        # (CASE rather than two-argument max(): portable to PostgreSQL)
        " cursor = CASE WHEN excluded.cursor > schedule_state.cursor THEN excluded.cursor"
        " ELSE schedule_state.cursor END,"
        " last_fire = CASE WHEN excluded.last_fire IS NULL THEN schedule_state.last_fire"
        " WHEN schedule_state.last_fire IS NULL OR excluded.last_fire > schedule_state.last_fire"
        " THEN excluded.last_fire ELSE schedule_state.last_fire END,"
        " updated_at = excluded.updated_at",
        (key, workflow, cursor, cursor if fired else None, adv.now),
    )


def start_queued_fire(
    adv: Advance, spec: WorkflowSpec, key: str, *, priority: int, new_id: NewId
) -> str | None:
    """Start the oldest queued fire of `key` if none of the schedule's runs is unfinished."""
    row = adv.tx.execute(
        "SELECT id, nominal, params FROM fires WHERE schedule_key = ? AND state = 'queued'"
        " ORDER BY nominal LIMIT 1" + adv.for_update(),
        (key,),
    ).fetchone()
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
        "INSERT INTO audit_log (at, actor, actor_kind, action, object, namespace, params,"
        " outcome, detail, request_id, source) VALUES (?, 'scheduler', 'system', 'run.trigger',"
        " ?, ?, ?, 'ok', ?, NULL, 'scheduler')",
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
    row = adv.tx.execute(
        "INSERT INTO fires (schedule_key, workflow, nominal, state, params, created_at)"
        " VALUES (?, ?, ?, 'new', ?, ?) ON CONFLICT (schedule_key, nominal) DO NOTHING"
        " RETURNING id",
        (key, workflow, nominal, dumps(params), adv.now),
    ).fetchone()
    return None if row is None else int(row["id"])


def _set_fire(
    adv: Advance, fire_id: int, state: str, run_id: str | None, error: str | None
) -> None:
    adv.tx.execute(
        "UPDATE fires SET state = ?, run_id = ?, error = ? WHERE id = ?",
        (state, run_id, error, fire_id),
    )


def _unfinished(adv: Advance, workflow: str, prefix: str) -> list[str]:
    """Unfinished runs of `workflow` whose trigger starts with `prefix`, oldest first."""
    rows = adv.tx.execute(
        "SELECT id FROM runs WHERE workflow = ? AND state IN ('queued', 'running',"
        " 'compensating') AND substr(trigger, 1, ?) = ? ORDER BY id",
        (workflow, len(prefix), prefix),
    ).fetchall()
    return [str(r["id"]) for r in rows]


def _has_queued(adv: Advance, key: str, *, before: float) -> bool:
    row = adv.tx.execute(
        "SELECT 1 FROM fires WHERE schedule_key = ? AND state = 'queued' AND nominal < ? LIMIT 1",
        (key, before),
    ).fetchone()
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
) -> EventReceipt:
    """A new event's runs are created here; a repeated one returns what its first delivery
    recorded, marked duplicate."""
    row = adv.tx.execute(
        "INSERT INTO inbox (source, event_id, type, payload, run_ids, errors, received_at)"
        " VALUES (?, ?, ?, ?, '[]', ?, ?) ON CONFLICT (source, event_id) DO NOTHING"
        " RETURNING id",
        (source, event_id, event_type, dumps(payload), dumps(list(errors)) if errors else None,
         adv.now),
    ).fetchone()  # fmt: skip
    if row is None:
        first = adv.tx.execute(
            "SELECT run_ids, errors FROM inbox WHERE source = ? AND event_id = ?",
            (source, event_id),
        ).fetchone()
        return EventReceipt(
            source=source,
            event_id=event_id,
            duplicate=True,
            run_ids=tuple(loads(first["run_ids"])),
            errors=tuple(loads(first["errors"]) or ()),
        )
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
    adv.tx.execute("UPDATE inbox SET run_ids = ? WHERE id = ?", (dumps(run_ids), row["id"]))
    data: dict[str, Any] = {"source": source, "id": event_id, "type": event_type}
    adv.event(None, None, "trigger.event", data={**data, "runs": run_ids, "errors": list(errors)})
    return EventReceipt(
        source=source,
        event_id=event_id,
        duplicate=False,
        run_ids=tuple(run_ids),
        errors=tuple(errors),
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
    adv.tx.execute(
        "INSERT INTO backfills (id, workflow, version, schedule_key, range_start, range_end,"
        " max_active, priority, state, total, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
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
    row = adv.tx.execute(
        "SELECT state, max_active, priority FROM backfills WHERE id = ?" + adv.for_update(),
        (backfill_id,),
    ).fetchone()
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
        adv.tx.execute(
            "UPDATE backfills SET created = created + 1, cursor = CASE WHEN cursor IS NULL"
            " OR cursor < ? THEN ? ELSE cursor END WHERE id = ?",
            (nominal, nominal, backfill_id),
        )
    if exhausted and not started and active == 0:
        adv.tx.execute(
            "UPDATE backfills SET state = 'completed', finished_at = ? WHERE id = ?",
            (adv.now, backfill_id),
        )
        adv.event(None, None, "backfill.completed", data={"backfill": backfill_id})
    return started


def cancel_backfill(adv: Advance, backfill_id: str, workflow: str) -> bool:
    """Stop creating runs and cancel the backfill's unfinished ones; False if it ended."""
    cur = adv.tx.execute(
        "UPDATE backfills SET state = 'canceled', finished_at = ? WHERE id = ?"
        " AND state = 'running'",
        (adv.now, backfill_id),
    )
    if cur.rowcount != 1:
        return False
    for run_id in _unfinished(adv, workflow, f"backfill:{backfill_id}@"):
        lifecycle.cancel_run(adv, run_id, f"backfill {backfill_id} canceled")
    adv.event(None, None, "backfill.canceled", data={"backfill": backfill_id})
    return True

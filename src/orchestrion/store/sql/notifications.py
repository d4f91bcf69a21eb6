"""`SqlNotifications`: the `NotificationStore` of both dialects, over a `Database`.

Channel and rule changes are one transaction each with their event (namespace and name
only: never a channel's config, which names where messages go). A delivery's attempt is a
compare-and-set on the attempts counted, with its audit record in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from orchestrion.store.notification_records import (
    ChannelRecord,
    DeliveryRecord,
    NotableEvent,
    RuleRecord,
)
from orchestrion.store.notifications import DeliveryDraft
from orchestrion.store.records import RunRecord
from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.jsontext import dumps, loads
from orchestrion.store.sql.named import marks, where
from orchestrion.store.sql.queries import Q

__all__ = ["SqlNotifications"]

CHANNEL: Final = rows.row_reader(ChannelRecord)
RULE: Final = rows.row_reader(RuleRecord)
DELIVERY: Final = rows.row_reader(DeliveryRecord)
#: History kinds -> the notification event they are.
_KINDS: Final = {
    "run.fail": "run.failed",
    "run.succeed": "run.succeeded",
    "task.fail": "task.retries_exhausted",
    "schedule.skipped": "schedule.missed",
    "schedule.failed": "schedule.missed",
    "schedule.missed": "schedule.missed",
    "wait.approval_pending": "approval.pending",
    "asset.stale": "asset.stale",
}


class SqlNotifications:
    """See `orchestrion.store.notifications.NotificationStore` for every method's contract.

    `lock_events` is the dialect's statement that makes every event id up to the newest
    final before the history is read (PostgreSQL draws ids at insert, not at commit);
    SQLite writes one transaction at a time and needs none.
    """

    def __init__(self, db: Database, *, lock_events: str | None = None) -> None:
        self._db = db
        self._lock_events = lock_events

    # ------------------------------------------------------------------ channels, rules

    def put_channel(self, channel: ChannelRecord, *, now: float) -> bool:
        c = channel
        values = (
            c.namespace, c.name, c.kind, json.dumps(dict(c.config), sort_keys=True), c.secret,
            now, now,
        )  # fmt: skip
        return self._put("channel", Q.notify_channel_exists, Q.notify_put_channel, values, now)

    def list_channels(self, namespace: str | None = None) -> list[ChannelRecord]:
        found = (
            self._db.read(Q.notify_channels)
            if namespace is None
            else self._db.read(Q.notify_channels_of, (namespace,))
        )
        return [CHANNEL(r) for r in found]

    def get_channel(self, namespace: str, name: str) -> ChannelRecord | None:
        found = self._db.read(Q.notify_channel, (namespace, name))
        return CHANNEL(found[0]) if found else None

    def delete_channel(self, namespace: str, name: str, *, now: float) -> bool:
        return self._delete("channel", Q.notify_delete_channel, namespace, name, now)

    def put_rule(self, rule: RuleRecord, *, now: float) -> bool:
        r = rule
        values = (
            r.namespace, r.name, r.channel, r.workflows, dumps(list(r.tags)),
            dumps(list(r.events)), r.template, now, now,
        )  # fmt: skip
        return self._put("rule", Q.notify_rule_exists, Q.notify_put_rule, values, now,
                         also=(Q.notify_start_cursor, (now,)))  # fmt: skip

    def list_rules(self, namespace: str | None = None) -> list[RuleRecord]:
        found = (
            self._db.read(Q.notify_rules)
            if namespace is None
            else self._db.read(Q.notify_rules_of, (namespace,))
        )
        return [RULE(r) for r in found]

    def delete_rule(self, namespace: str, name: str, *, now: float) -> bool:
        return self._delete("rule", Q.notify_delete_rule, namespace, name, now)

    def _put(
        self,
        what: str,
        exists: str,
        put: str,
        values: tuple[Any, ...],
        now: float,
        also: tuple[str, tuple[Any, ...]] | None = None,
    ) -> bool:
        def fn(adv: Advance) -> bool:
            existed = adv.tx.execute(exists + adv.for_update(), values[:2]).fetchone()
            adv.tx.execute(put, values)
            if also is not None:
                adv.tx.execute(*also)
            kind = f"notification.{what}_{'updated' if existed else 'created'}"
            adv.event(None, None, kind, data={"namespace": values[0], "name": values[1]})
            return existed is None

        return self._db.transact(now, fn)

    def _delete(self, what: str, sql: str, namespace: str, name: str, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            if adv.tx.execute(sql, (namespace, name)).fetchone() is None:
                return False
            kind = f"notification.{what}_deleted"
            adv.event(None, None, kind, data={"namespace": namespace, "name": name})
            return True

        return self._db.transact(now, fn)

    # ------------------------------------------------------------------ history

    def notable_events(self, after: int, *, limit: int = 500) -> tuple[list[NotableEvent], int]:
        if self._lock_events is not None and after >= 0:
            # Nothing committed past the cursor: spare the writers the lock. (A row of a
            # transaction still open is read by a later pass, after the lock.)
            newest = self._db.read(Q.last_event_id)[0]["m"]
            if newest is None or int(newest) <= after:
                return [], after

        def fn(adv: Advance) -> tuple[list[NotableEvent], int]:
            if self._lock_events is not None:
                adv.tx.execute(self._lock_events)
            top = int(adv.tx.execute(Q.last_event_id).fetchone()["m"] or 0)
            if after < 0:
                return [], top
            found = [
                _notable(r)
                for r in adv.tx.execute(Q.notable_events, (after, top, limit)).fetchall()
            ]
            position = found[-1].id if len(found) >= limit else max(top, after)
            return found, position

        return self._db.transact(0.0, fn)

    def late_candidates(self, workflows: Sequence[str], *, limit: int = 1000) -> list[RunRecord]:
        if not workflows:
            return []
        sql = Q.late_candidates.fill(names=marks(len(workflows)))
        return [rows.RUN(r) for r in self._db.read(sql, (*workflows, limit))]

    # ------------------------------------------------------------------ outbox

    def enqueue(self, drafts: Sequence[DeliveryDraft], *, now: float) -> int:
        if not drafts:
            return 0

        def fn(adv: Advance) -> int:
            added = 0
            for d in drafts:
                if adv.tx.execute(Q.enqueue_delivery, (*d, now, now)).fetchone() is not None:
                    added += 1
            return added

        return self._db.transact(now, fn)

    def due_deliveries(self, now: float, *, limit: int = 50) -> list[DeliveryRecord]:
        return [DELIVERY(r) for r in self._db.read(Q.due_deliveries, (now, limit))]

    def finish_attempt(
        self,
        delivery: DeliveryRecord,
        *,
        error: str | None,
        retry_at: float | None,
        now: float,
    ) -> bool:
        d = delivery
        if error is None:
            state, next_at, sent_at = "sent", d.next_attempt_at, now
        elif retry_at is not None:
            state, next_at, sent_at = "pending", retry_at, None
        else:
            state, next_at, sent_at = "failed", d.next_attempt_at, None
        detail = None if error is None else error[:2000]

        def fn(adv: Advance) -> bool:
            row = adv.tx.execute(
                Q.finish_delivery_attempt, (state, next_at, detail, sent_at, d.id, d.attempts)
            ).fetchone()
            if row is None:
                return False
            facts = {"rule": d.rule, "channel": d.channel, "event": d.event, "run_id": d.run_id}
            params = dumps({**facts, "attempt": d.attempts + 1, "state": state})
            outcome = "ok" if error is None else "failed"
            adv.tx.execute(
                Q.audit_delivery,
                (now, f"notification {d.namespace}/{d.id}", d.namespace, params, outcome, detail),
            )
            return True

        return self._db.transact(now, fn)

    def list_deliveries(
        self, namespace: str | None = None, *, state: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        conditions: list[str] = []
        params: list[Any] = []
        if namespace is not None:
            conditions.append(Q.deliveries_where_namespace)
            params.append(namespace)
        if state is not None:
            conditions.append(Q.deliveries_where_state)
            params.append(state)
        sql = Q.deliveries_page.fill(where=where(*conditions))
        return [DELIVERY(r) for r in self._db.read(sql, (*params, limit))]


def _notable(row: Any) -> NotableEvent:
    data = loads(row["data"]) or {}
    workflow = row["workflow"]
    if workflow is None and isinstance(data.get("schedule"), str):
        workflow = data["schedule"].split("/", 1)[0]  # schedule keys are <workflow>/...
    if workflow is None and isinstance(data.get("workflow"), str):
        workflow = data["workflow"]  # an asset.stale names the asset's producer
    return NotableEvent(
        id=int(row["id"]),
        kind=_KINDS[row["kind"]],
        at=float(row["at"]),
        workflow=workflow,
        run_id=row["run_id"],
        task=row["task_name"],
        error=row["task_error"] or row["run_error"] or data.get("error"),
        data=data if isinstance(data, dict) else {},
        trigger=row["trigger"],
        created_at=row["created_at"],
        started_at=row["started_at"],
    )

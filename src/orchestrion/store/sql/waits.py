"""`SqlWaits`: the `WaitStore` of both dialects (see `orchestrion.store.sql.wait_steps` for
how a step enters its wait and how every resolution is written)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrion.errors import IllegalTransition, NotFound
from orchestrion.states import RunState
from orchestrion.store.sql.jsontext import dumps
from orchestrion.store.sql.named import marks, where
from orchestrion.store.sql.reads import get_run
from orchestrion.store.sql.wait_steps import W, resolve_wait, take_signal
from orchestrion.store.wait_records import SignalReceipt, WaitRecord, WaitResolution
from orchestrion.store.waits import EventMatch

if TYPE_CHECKING:
    from orchestrion.store.sql.advance import Advance
    from orchestrion.store.sql.database import Database

__all__ = ["SqlWaits"]


def _record(row: Any) -> WaitRecord:
    return WaitRecord(
        task_run_id=int(row["task_run_id"]),
        run_id=row["run_id"],
        workflow=row["workflow"],
        version=row["version"],
        task=row["task_name"],
        kind=row["kind"],
        name=row["name"],
        deadline=row["deadline"],
        check_at=row["check_at"],
        checks=int(row["checks"]),
        created_at=row["created_at"],
    )


class SqlWaits:
    """See `orchestrion.store.waits.WaitStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_wait(self, run_id: str, task: str) -> WaitRecord:
        run = get_run(self._db.read, run_id)
        rows = self._db.read(
            W.list_waits.fill(where=where(W.waits_of_run, W.waits_in_state)), (run.id, 1000)
        )
        for row in rows:
            if row["task_name"] == task:
                return _record(row)
        found = self._db.read(W.task_run_by_name, (run.id, task))
        if not found:
            raise NotFound(f"run {run.id} has no task {task!r}")
        # A conflict, not a missing thing: decided (or timed out) already, or not yet waiting.
        raise IllegalTransition(
            f"task {task!r} of run {run.id} is {found[0]['state']}: it waits on no approval,"
            " signal, event or sensor now"
        )

    def list_waits(self, *, run_id: str | None = None, limit: int = 500) -> list[WaitRecord]:
        params: tuple[Any, ...]
        if run_id is None:
            sql, params = W.list_waits.fill(where=where(W.waits_in_state)), (limit,)
        else:
            full = get_run(self._db.read, run_id).id
            sql = W.list_waits.fill(where=where(W.waits_of_run, W.waits_in_state))
            params = (full, limit)
        return [_record(r) for r in self._db.read(sql, params)]

    def resolve(self, task_run_id: int, resolution: WaitResolution, *, now: float) -> bool:
        return self._db.transact(now, lambda adv: resolve_wait(adv, task_run_id, resolution))

    def send_signal(
        self, run_id: str, name: str, data: Any, *, sent_by: str | None, now: float
    ) -> SignalReceipt:
        run = get_run(self._db.read, run_id)
        if run.state.finished:
            raise IllegalTransition(f"run {run.id} is {run.state.value}: it takes no signals")

        def fn(adv: Advance) -> SignalReceipt:
            row = adv.run_row(run.id)
            if row is None or RunState(row["state"]).finished:
                raise IllegalTransition(f"run {run.id} finished: it takes no signals")
            text = dumps(data)
            signal_id = int(
                adv.tx.execute(W.insert_signal, (run.id, name, text, sent_by, now)).fetchone()["id"]
            )
            adv.event(run.id, None, "run.signal", data={"signal": name, "id": signal_id})
            waiter = adv.tx.execute(W.signal_waiter, (run.id, name)).fetchone()
            task = None
            if waiter is not None and take_signal(
                adv, int(waiter["task_run_id"]), signal_id, name, text
            ):
                task = adv.task_row(int(waiter["task_run_id"]))["task_name"]
            return SignalReceipt(id=signal_id, run_id=run.id, name=name, delivered_to=task)

        return self._db.transact(now, fn)

    def deliver_event(self, event_type: str, match: EventMatch, *, now: float) -> list[int]:
        waiters = self._db.read(W.event_waiters, (event_type, 1000))
        done: list[int] = []
        for waiter in waiters:
            task_run_id = int(waiter["task_run_id"])
            resolution = match(task_run_id, waiter["run_id"])
            if resolution is not None and self.resolve(task_run_id, resolution, now=now):
                done.append(task_run_id)
        return done

    def due_deadlines(self, *, now: float, limit: int = 100) -> list[WaitRecord]:
        due = [int(r["task_run_id"]) for r in self._db.read(W.due_deadlines, (now, limit))]
        return self._waiting(due, now)

    def claim_checks(self, *, now: float, lease: float, limit: int = 50) -> list[WaitRecord]:
        due = [int(r["task_run_id"]) for r in self._db.read(W.due_checks, (now, limit))]
        if not due:
            return []

        def fn(adv: Advance) -> list[int]:
            return [
                task_run_id
                for task_run_id in due
                if adv.tx.execute(W.claim_check, (now + lease, task_run_id, now)).rowcount == 1
            ]

        return self._waiting(self._db.transact(now, fn), now)

    def _waiting(self, ids: list[int], now: float) -> list[WaitRecord]:
        """The waits of `ids` whose task runs still wait; the rows of the others (their
        runs were canceled meanwhile) are dropped."""
        if not ids:
            return []
        among = f"w.task_run_id IN ({marks(len(ids))})"
        sql = W.list_waits.fill(where=where(W.waits_in_state, among))
        found = [_record(r) for r in self._db.read(sql, (*ids, len(ids)))]
        gone = sorted(set(ids) - {w.task_run_id for w in found})
        if gone:
            self._db.transact(now, lambda adv: [adv.tx.execute(W.delete_wait, (i,)) for i in gone])
        return found

    def check_again(self, task_run_id: int, at: float, *, error: str | None = None) -> None:
        def fn(adv: Advance) -> None:
            if adv.tx.execute(W.next_check, (at, task_run_id)).rowcount == 1 and error:
                run_id = adv.task_row(task_run_id)["run_id"]
                data = {"error": error, "next_check": at}
                adv.event(run_id, task_run_id, "wait.check_failed", data=data)

        self._db.transact(at, fn)

    def count_waiting(self) -> int:
        return int(self._db.read(W.count_waiting)[0]["n"])

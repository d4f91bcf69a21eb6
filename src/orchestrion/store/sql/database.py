"""The seam between the SQL roles and a dialect: one `Database` per open store.

Every role object of one database (`SqlWorkflows`, `SqlRuns`, ...) holds the same
`Database`, so they share its connections, its transactions, its cache of parsed specs and
its in-process change counters (`Signals`). The roles are written once over two plumbing
hooks, `transact` (one write transaction, handed an `Advance`) and `read` (one statement,
``?`` placeholders), plus the few hooks where the SQL truly differs between dialects
(`claim`, `latest_rows`, `upsert_workflow`, `insert_logs`, `queue_filter`, `write_one`),
and `q`: the dialect's named queries, for the few statements the roles send that each
dialect words its own way (``self._db.q.workflow_versions``; every such name is in both
dialects' ``queries.sql``). `sqlite.database.SqliteDatabase` and
`postgres.database.PostgresDatabase` implement them.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from orchestrion.errors import NotFound
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import LogLine
from orchestrion.store.sql.advance import Advance, Tx
from orchestrion.store.sql.claim import Claimed
from orchestrion.store.sql.named import NamedQueries
from orchestrion.store.sql.queries import Q

__all__ = ["Database", "Signals"]

T = TypeVar("T")


class Signals:
    """The in-process change counters: `work` (a task run may have become ready) and
    `history` (event rows were written), each a counter under a condition variable that
    waiting threads block on."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._change_seq = 0  # moved by every local wake-up
        self._claimed_at = threading.local()  # `_change_seq` when this thread last claimed
        self._history = threading.Condition(threading.Lock())
        self._history_seq = 0

    def claiming(self) -> None:
        """The calling thread begins a claim: a wake-up from now on ends its next wait."""
        self._claimed_at.seq = self._change_seq

    def work(self) -> None:
        """Wake the threads waiting for work."""
        with self._changed:
            self._change_seq += 1
            self._changed.notify_all()

    def history(self) -> None:
        """Wake the threads waiting for event rows."""
        with self._history:
            self._history_seq += 1
            self._history.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        """See `Notifier.wait_for_change`."""
        # A wake-up that came after this thread's last claim began, before this wait,
        # would be lost (the worker then slept a whole poll interval): return at once.
        seen = getattr(self._claimed_at, "seq", None)
        self._claimed_at.seq = None
        with self._changed:
            if seen is None or self._change_seq == seen:
                self._changed.wait(timeout)

    def wait_for_events(self, seen: int, timeout: float) -> int:
        """See `Notifier.wait_for_events`."""
        with self._history:
            self._history.wait_for(lambda: self._history_seq != seen, timeout)
            return self._history_seq


class Database(abc.ABC):
    """One open database of one dialect: plumbing and dialect hooks for the SQL roles."""

    #: The dialect's own statements (its ``queries.sql``).
    q: ClassVar[NamedQueries]

    def __init__(self, url: str) -> None:
        self.url = url
        self.signals = Signals()
        #: Parsed specs by (name, version): a version's spec never changes.
        self.specs: dict[tuple[str, str], WorkflowSpec] = {}
        self.closed = False

    # ------------------------------------------------------------------ plumbing

    @abc.abstractmethod
    def transact(self, now: float, fn: Callable[[Advance], T]) -> T:
        """Run `fn` in one write transaction, wake local waiters after the commit, and
        return its result."""

    @abc.abstractmethod
    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one statement (``?`` placeholders), outside any write transaction."""

    @abc.abstractmethod
    def write_one(self, now: float, sql: str, params: Sequence[Any]) -> None:
        """Run one idempotent write statement on the ``workers`` table."""

    @abc.abstractmethod
    def listen(self, *, work: bool, history: bool) -> None:
        """Also wake on other processes' commits (see `Notifier.listen`)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and wake every waiter; no role can be used afterwards."""

    def schema_versions(self) -> list[str]:
        """The migrations applied to this database, in order (applied on open)."""
        rows = self.read(Q.schema_versions, ())
        return [str(r["version"]) for r in rows]

    def spec_in(self, tx: Tx, name: str, version: str) -> WorkflowSpec:
        """The spec of a workflow version, read within a transaction (cached: immutable)."""
        key = (name, version)
        spec = self.specs.get(key)
        if spec is None:
            row = tx.execute(Q.workflow_spec, key).fetchone()
            if row is None:
                raise NotFound(f"workflow {name!r} version {version!r} is not registered")
            spec = self.specs[key] = WorkflowSpec.from_json(row["spec"])
        return spec

    # ------------------------------------------------------------------ dialect hooks

    @abc.abstractmethod
    def claim(
        self,
        adv: Advance,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        until: float,
        labels: Mapping[str, str] | None,
    ) -> Claimed:
        """Lease up to `limit` ready task runs of `queues` whose requirements `labels`
        satisfy to `worker_id` until `until`; their claims are built after the commit."""

    @abc.abstractmethod
    def latest_rows(self, query: str) -> list[Any]:
        """The rows of `query` (``current_workflows`` or ``current_versions``),
        one per workflow, ordered by name (code points)."""

    @abc.abstractmethod
    def upsert_workflow(
        self, adv: Advance, spec: WorkflowSpec, source: str | None, now: float
    ) -> bool:
        """Insert the workflow version (True, with its event) or update its source."""

    @abc.abstractmethod
    def insert_logs(self, adv: Advance, lines: Sequence[LogLine]) -> None:
        """Insert the log rows."""

    @abc.abstractmethod
    def queue_filter(self, queues: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """A condition on ``queue`` (membership in `queues`, the dialect's ``in_queues``)
        and its parameters."""

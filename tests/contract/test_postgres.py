"""What only PostgreSQL has: concurrent writers (claims, limits, admission, unique keys,
cancel racing claims), LISTEN/NOTIFY wake-ups, migrations under a lock, and the engine
end to end through the real `Worker`.

Every store object here has its own connection pool, as separate processes would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState
from orchestrion.store import open_store
from orchestrion.store.postgres import PostgresDatabase
from orchestrion.store.postgres.tx import migrate, pipelined_transaction
from orchestrion.store.records import Claim, RunFilter, RunRequest
from orchestrion.store.stores import Stores
from tests.contract.conftest import MakeStore, pg_db
from tests.contract.test_migrations import describe_pg
from tests.contract.test_store_contract import T0, report, start, take
from tests.helpers import assert_consistent, by_name, py, wf

MakePg = MakeStore


def _claim_until_done(
    store: Stores,
    run_ids: list[str],
    got: list[Claim],
    *,
    limit: int = 8,
    hold: Callable[[list[Claim]], None] = lambda claims: None,
    result: Callable[[Claim], Any] = lambda claim: claim.item,
) -> None:
    """One claimer: claim, (hold), finish, until every run ended."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        claims = take(store, time.time(), limit=limit, worker=f"w{id(store)}")
        got.extend(claims)
        hold(claims)
        for claim in claims:
            report(store, claim, time.time(), result(claim))
        if not claims:
            if all(store.reads.get_run(r).state.finished for r in run_ids):
                return
            store.notifier.wait_for_change(0.01)
    raise AssertionError("claimers did not finish")


def _in_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


# ---------------------------------------------------------------------------- claims


def test_four_claimers_take_each_of_500_tasks_exactly_once(make_pg_store: MakePg) -> None:
    stores = [make_pg_store() for _ in range(4)]
    spec = wf("wide", py("src"), py("item", "src", map_over="tasks.src"))
    run_id = start(stores[0], spec, now=time.time())
    got: list[list[Claim]] = [[] for _ in stores]

    def result(claim: Claim) -> Any:
        return list(range(500)) if claim.task_name == "src" else claim.item

    _in_threads(4, lambda i: _claim_until_done(stores[i], [run_id], got[i], result=result))
    claimed = Counter(c.task_run_id for claims in got for c in claims)
    assert len(claimed) == 501 and set(claimed.values()) == {1}
    assert all(got), "every claimer took some of the work"
    run = stores[0].reads.get_run(run_id)
    assert run.state is RunState.SUCCEEDED
    assert by_name(stores[0].reads.list_task_runs(run_id))["item"].result == list(range(500))
    attempts = stores[0].reads.list_attempts(run_id)
    assert len(attempts) == 501 and {a.number for a in attempts} == {1}
    assert_consistent(stores[0], stores[0].url, run_id)


def test_concurrency_limit_holds_under_concurrent_claimers(make_pg_store: MakePg) -> None:
    stores = [make_pg_store() for _ in range(4)]
    spec = wf("lim", py("src"), py("x", "src", map_over="tasks.src", concurrency=3))
    run_id = start(stores[0], spec, now=time.time())
    held: set[int] = set()
    peak = [0]
    lock = threading.Lock()

    def hold(claims: list[Claim]) -> None:
        mine = {c.task_run_id for c in claims if c.task_name == "x"}
        with lock:
            held.update(mine)
            peak[0] = max(peak[0], len(held))
            assert len(held) <= 3, held
        time.sleep(0.005)
        with lock:
            held.difference_update(mine)  # before finishing: the rows are still running

    got: list[list[Claim]] = [[] for _ in stores]
    _in_threads(
        4,
        lambda i: _claim_until_done(
            stores[i],
            [run_id],
            got[i],
            limit=4,
            hold=hold,
            result=lambda c: list(range(40)) if c.task_name == "src" else c.item,
        ),
    )
    assert peak[0] == 3
    assert stores[0].reads.get_run(run_id).state is RunState.SUCCEEDED


def test_max_active_runs_holds_and_admits_under_concurrency(make_pg_store: MakePg) -> None:
    stores = [make_pg_store() for _ in range(4)]
    spec = WorkflowSpec(name="few", tasks=(py("a"),), max_active_runs=2)
    stores[0].workflows.register_workflow(spec, source=None, now=T0)
    run_ids = [
        r
        for rs in _in_threads(
            4, lambda i: [stores[i].runs.create_run(spec, {}, now=time.time()).id for _ in range(5)]
        )
        for r in rs
    ]
    states = Counter(stores[0].reads.get_run(r).state for r in run_ids)
    assert states == {RunState.RUNNING: 2, RunState.QUEUED: 18}
    running: set[str] = set()
    lock = threading.Lock()

    def hold(claims: list[Claim]) -> None:
        with lock:
            running.update(c.run_id for c in claims)
            assert len(running) <= 2, running
        with lock:
            running.difference_update(c.run_id for c in claims)

    _in_threads(4, lambda i: _claim_until_done(stores[i], run_ids, [], hold=hold))
    assert {stores[0].reads.get_run(r).state for r in run_ids} == {RunState.SUCCEEDED}


def test_unique_keys_hold_under_concurrent_writers(make_pg_store: MakePg) -> None:
    stores = [make_pg_store() for _ in range(4)]
    spec = wf("uniq", py("a"))
    stores[0].workflows.register_workflow(spec, source=None, now=T0)
    barrier = threading.Barrier(4)

    def trigger(i: int) -> str:
        barrier.wait()
        return stores[i].runs.create_run(spec, {}, now=T0, idempotency_key="same").id

    assert len(set(_in_threads(4, trigger))) == 1

    def fire(i: int) -> Any:
        barrier.wait()
        return stores[i].triggers.fire_schedule(
            spec, schedule_key="k", nominal=T0, params={}, now=T0
        )

    assert sum(f is not None for f in _in_threads(4, fire)) == 1

    def event(i: int) -> Any:
        barrier.wait()
        req = RunRequest(spec=spec, params={}, trigger="event:e", idempotency_key="event:e")
        return stores[i].triggers.record_event("src", "e", "t", {}, now=T0, runs=[req])

    receipts = _in_threads(4, event)
    assert sum(not r.duplicate for r in receipts) == 1
    assert len({r.run_ids for r in receipts}) == 1
    assert len(stores[0].reads.list_runs(RunFilter(workflow="uniq"))) == 3


def test_cancel_racing_claims_leaves_nothing_runnable(make_pg_store: MakePg) -> None:
    claimer, canceller = make_pg_store(), make_pg_store()
    spec = wf("race", py("src"), py("x", "src", map_over="tasks.src"))
    run_id = start(claimer, spec, now=time.time())
    [src] = take(claimer, time.time())
    report(claimer, src, time.time(), list(range(300)))
    got: list[Claim] = []
    stop = threading.Event()

    def claim_loop() -> None:
        while not stop.is_set():
            got.extend(take(claimer, time.time(), limit=5))

    thread = threading.Thread(target=claim_loop)
    thread.start()
    while len(got) < 20:
        time.sleep(0.001)
    assert canceller.runs.cancel_run(run_id, now=time.time())
    stop.set()
    thread.join()
    rows = claimer.reads.list_task_runs(run_id)
    assert {t.state.value for t in rows} <= {"succeeded", "canceled"}
    assert not any(report(claimer, c, time.time()) for c in got)  # all superseded
    assert claimer.reads.get_run(run_id).state is RunState.CANCELED
    assert_consistent(claimer, claimer.url, run_id)


def test_cancel_racing_finishes_that_expand_maps(make_pg_store: MakePg) -> None:
    """A finish that expands a mapped task inserts queued items; a cancel at that instant
    must see them (it waits for the finish), or the finish must see the cancel."""
    finisher, canceller = make_pg_store(), make_pg_store()
    spec = wf("expand", py("src"), py("x", "src", map_over="tasks.src"), py("y", "x"))
    runs = [start(finisher, spec, now=time.time()) for _ in range(15)]
    srcs = {c.run_id: c for c in take(finisher, time.time())}
    barrier = threading.Barrier(2)

    def finish_all(_: int) -> None:
        for run_id in runs:
            barrier.wait()
            report(finisher, srcs[run_id], time.time(), list(range(50)))

    def cancel_all(_: int) -> None:
        for run_id in runs:
            barrier.wait()
            canceller.runs.cancel_run(run_id, now=time.time())

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda f: f(0), [finish_all, cancel_all]))
    for run_id in runs:
        assert finisher.reads.get_run(run_id).state is RunState.CANCELED
        left = [t for t in finisher.reads.list_task_runs(run_id) if not t.state.finished]
        assert left == [], left
        assert_consistent(finisher, finisher.url, run_id)
    assert take(finisher, time.time()) == []


# ---------------------------------------------------------------------------- notifications


def test_listen_notify_wakes_another_store_at_once(make_pg_store: MakePg) -> None:
    waiting, writer = make_pg_store(), make_pg_store()
    waiting.notifier.listen(work=True, history=True)
    listener = pg_db(waiting)._listener
    assert listener is not None and listener.ready.wait(5)
    spec = wf("wake", py("a"))
    writer.workflows.register_workflow(spec, source=None, now=T0)
    time.sleep(0.1)  # the registration's own notification has come and gone
    for _ in range(3):
        woke = threading.Event()
        seen = waiting.notifier.wait_for_events(-1, 0)

        def wait(woke: threading.Event = woke) -> None:
            waiting.notifier.wait_for_change(5.0)
            woke.set()

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.02)
        began = time.monotonic()
        writer.runs.create_run(spec, {}, now=T0)  # makes a task ready
        assert woke.wait(5.0)
        elapsed = time.monotonic() - began
        thread.join()
        assert elapsed < 0.1, elapsed
        assert waiting.notifier.wait_for_events(seen, 1.0) != seen


# ---------------------------------------------------------------------------- migrations


_dict = psycopg.rows.dict_row
#: Every migration's version, from the files (each branch adds its own numbers).
_ALL_MIGRATIONS = sorted(
    f.stem
    for f in (Path(__file__).parents[2] / "src/orchestrion/store/migrations/postgres").glob("*.sql")
)


def test_reopening_applies_nothing_and_concurrent_opens_migrate_once(
    pg_url: str, make_pg_store: MakePg
) -> None:
    stores = _in_threads(4, lambda i: make_pg_store())
    with psycopg.connect(pg_url) as conn:
        before = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert len(before) == len(_ALL_MIGRATIONS)
    make_pg_store()
    with psycopg.connect(pg_url, autocommit=True, row_factory=_dict) as conn:
        assert migrate(conn) == []
        after = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert [tuple(r.values()) for r in after] == before
    assert len(stores) == 4


def test_the_dialects_have_the_same_tables_columns_and_indexes(
    tmp_path: Path, make_pg_store: MakePg
) -> None:
    lite = open_store(f"sqlite:///{tmp_path / 'schema.db'}")
    lite.close()
    import sqlite3

    conn = sqlite3.connect(tmp_path / "schema.db")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    lite_columns = {
        (t, r[1]) for t in tables for r in conn.execute(f"PRAGMA table_info({t})").fetchall()
    }
    lite_indexes = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    conn.close()
    described = describe_pg(make_pg_store().url)
    pg_columns = {(r[0], r[1]) for r in described["columns"]}
    pg_indexes = {r[1] for r in described["indexes"] if not r[1].endswith(("_pkey", "_key"))}
    # SQLite keeps insertion order in its implicit rowid; PostgreSQL in workflows.seq.
    assert pg_columns - {("workflows", "seq")} == lite_columns
    # SQLite merged the running set's three indexes into one (migration 0028); PostgreSQL,
    # where thousands of leases can be held at once, keeps them.
    lite_running = {"task_runs_running"}
    pg_running = {"task_runs_lease", "task_runs_owner", "task_runs_running_queue"}
    assert lite_running <= lite_indexes and pg_running <= pg_indexes
    assert pg_indexes - pg_running == lite_indexes - lite_running


# ---------------------------------------------------------------------------- end to end


def test_the_engine_runs_on_postgres_through_the_real_worker(pg_url: str) -> None:
    flaky: Counter[int] = Counter()
    lock = threading.Lock()
    undone: list[str] = []

    def square(x: int) -> int:
        with lock:
            flaky[x] += 1
            first = flaky[x] == 1
        if first and x % 3 == 0:
            raise RuntimeError(f"transient failure for {x}")
        return x * x

    def charge(order: dict[str, int]) -> None:
        raise RuntimeError(f"card declined for {order['seat']}")

    app = App(
        Settings(database_url=pg_url, lease_seconds=5.0, heartbeat_every=0.2, concurrency=4)
    ).open()
    try:
        app.code.add(
            {
                "t:src": lambda: list(range(12)),
                "t:square": square,
                "t:total": lambda xs: sum(xs),
                "t:reserve": lambda total: {"seat": total},
                "t:unreserve": lambda result, **_: undone.append(f"unreserve {result}"),
                "t:charge": charge,
            }
        )
        spec = wf(
            "pg_e2e",
            py("src"),
            py("square", "src", map_over="tasks.src", inputs={"x": "item"}, retries=2),
            py("total", "square", inputs={"xs": "tasks.square"}),
            py("reserve", "total", inputs={"total": "tasks.total"}, undo="unreserve"),
            py("charge", "reserve", inputs={"order": "tasks.reserve"}),
        )
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = app.runtime.run_until_done(app.runs.trigger("pg_e2e").id, every=0.01)
        assert run.state is RunState.FAILED and "card declined for 506" in (run.error or "")
        tasks = by_name(app.runs.task_runs(run.id))
        assert tasks["square"].result == [x * x for x in range(12)]
        assert tasks["total"].result == 506
        assert tasks["reserve"].state.value == "compensated"
        assert undone == ["unreserve {'seat': 506}"]
        items = [t for t in app.runs.task_runs(run.id) if t.kind == "item"]
        assert sorted(t.attempts for t in items) == [1] * 8 + [2] * 4
        assert_consistent(app.store, pg_url, run.id)
    finally:
        app.close()


@pytest.mark.parametrize("n", [1])
def test_open_store_picks_postgres(pg_url: str, n: int) -> None:
    store = open_store(pg_url.replace("postgresql://", "postgres://"))
    try:
        assert isinstance(store.backend, PostgresDatabase)
        assert store.reads.list_runs(RunFilter()) == []
    finally:
        store.close()


def test_a_store_survives_its_connections_being_killed(make_pg_store: MakePg) -> None:
    """What a PostgreSQL restart does to a client: every connection dies at once."""
    store, other = make_pg_store(), make_pg_store()
    store.notifier.listen(work=True)
    spec = wf("killed", py("a"), py("b", "a"))
    run_id = start(store, spec)
    _in_threads(
        4, lambda i: [store.reads.get_run(run_id) for _ in range(20)]
    )  # several in the pool

    def kill_all() -> None:
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    kill_all()
    [a] = take(store, T0 + 1)  # a write transaction on a fresh connection
    kill_all()
    assert store.reads.get_run(run_id).state is RunState.RUNNING  # a read
    kill_all()
    assert (
        store.runs.heartbeat(
            worker_id="w1", leases=[(a.task_run_id, a.epoch)], lease_seconds=30, now=T0 + 2
        )
        == []
    )
    time.sleep(0.5)  # the listener noticed, reconnected and woke everyone once
    listener = pg_db(store)._listener
    assert listener is not None and listener.ready.wait(5)
    woke = threading.Event()

    def wait_then_wake() -> None:
        store.notifier.wait_for_change(5)
        woke.set()

    thread = threading.Thread(target=wait_then_wake)
    thread.start()
    time.sleep(0.05)
    report(other, a, T0 + 3)  # another store makes b ready: the listener is back
    assert woke.wait(2)
    thread.join()
    assert [c.task_name for c in take(store, T0 + 4)] == ["b"]


def test_a_connection_whose_protocol_failed_is_dropped_and_the_transaction_run_again(
    make_pg_store: MakePg,
) -> None:
    """An error without a SQLSTATE came from the client's side of the protocol, not from a
    statement: the connection's state is unknown, so it is closed (never handed out
    again) and the transaction runs again on another, as after a restart."""
    db = pg_db(make_pg_store())
    used: list[psycopg.Connection[Any]] = []

    def fn(adv: Any) -> int:
        used.append(adv.tx.conn)
        if len(used) == 1:  # libpq refuses a plain query in pipeline mode: no SQLSTATE
            adv.tx.conn.pgconn.send_query(b"SELECT 1")
        return int(adv.tx.execute("SELECT 41 + 1 AS n").fetchone()["n"])

    assert db.transact(T0, fn) == 42
    assert len(used) == 2 and used[0] is not used[1]
    assert used[0].closed and not used[1].closed
    assert db.read("SELECT 1 AS n") == [{"n": 1}]  # the pool serves on


def test_a_guard_sent_without_waiting_fails_the_transaction_in_the_server(
    pg_url: str, make_pg_store: MakePg
) -> None:
    """`PgTx.queue_expecting`: a guarded update that moves another number of rows than it
    must fails the transaction, so the COMMIT queued behind it rolls everything back."""
    make_pg_store()  # migrated
    with psycopg.connect(pg_url, autocommit=True, row_factory=_dict) as conn:
        conn.execute("CREATE TABLE guarded (id INT PRIMARY KEY, state TEXT)")
        conn.execute("INSERT INTO guarded VALUES (1, 'queued'), (2, 'queued')")
        with pytest.raises(psycopg.Error) as raised, pipelined_transaction(conn) as tx:
            tx.queue("UPDATE guarded SET state = 'x' WHERE id = 1")
            tx.queue_expecting("UPDATE guarded SET state = 'y' WHERE state = ?", ("gone",), 1, "t")
        assert raised.value.sqlstate == "OR002"
        assert "t: the guarded update moved 0 rows, not 1" in str(raised.value)
        rows = conn.execute("SELECT id, state FROM guarded ORDER BY id").fetchall()
        assert [r["state"] for r in rows] == ["queued", "queued"]  # nothing committed
        with pipelined_transaction(conn) as tx:
            tx.queue_expecting(
                "UPDATE guarded SET state = 'z' WHERE state = ?", ("queued",), 2, "t"
            )
        assert {r["state"] for r in conn.execute("SELECT state FROM guarded")} == {"z"}

"""Retention (issue 16, part 4) on a real database: SQLite files, or PostgreSQL with
``ORCHESTRION_TEST_DATABASE=postgres``.

The big one prunes 50,000 finished runs (``ORCHESTRION_RETENTION_RUNS`` to change it)
while a real worker process runs a workflow: nothing kept, recent, unfinished or in a kept
family is touched, nothing is left behind that referred to a pruned run, and the worker's
runs all finish. On SQLite the file then stays the same size through prune-and-refill
cycles: freed pages are reused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrion.app import App
from orchestrion.store.records import AuditEntry, PruneCounts
from orchestrion.triggers.retention import DAY
from tests.helpers import db_arg, make_app, on_postgres
from tests.retention_fill import Db, fill

RUNS = int(os.environ.get("ORCHESTRION_RETENTION_RUNS", "50000"))

LIVE = """name: live
namespace: team
tasks:
  one:
    shell: [echo, one]
  two:
    shell: [echo, two]
    depends_on: [one]
  three:
    shell: [echo, three]
    depends_on: [two]
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with make_app(tmp_path) as app:
        yield app


@pytest.fixture
def db(app: App) -> Iterator[Db]:
    found = Db(app.settings.database_url)
    yield found
    found.close()


def _deploy(app: App, text: str) -> str:
    """Register a YAML workflow; its version."""
    folder = Path(app.settings.database_url.removeprefix("sqlite:///")).parent
    if on_postgres():
        folder = Path(os.environ.get("TMPDIR", "/tmp"))
    path = folder / f"wf-{os.getpid()}-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    (spec,) = app.workflows.load(path)
    return spec.version


def _version(app: App, name: str, namespace: str = "team") -> str:
    return _deploy(
        app, f'name: {name}\nnamespace: {namespace}\ntasks:\n  a:\n    shell: ["true"]\n'
    )


def _orphans(db: Db) -> dict[str, int]:
    """Rows that still name a run that is gone."""
    return {
        table: int(
            db.one(
                f"SELECT count(*) FROM {table} WHERE run_id IS NOT NULL"
                " AND run_id NOT IN (SELECT id FROM runs)"
            )
        )
        for table in ("task_runs", "attempts", "events", "logs", "fires")
    }


def _present(db: Db, ids: list[str]) -> int:
    found = 0
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        found += int(db.one(f"SELECT count(*) FROM runs WHERE id IN ({marks})", chunk))
    return found


def _worker(app: App, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ORCHESTRION_DATABASE_URL", None)
    args = ["worker", "--db", db_arg(tmp_path / "app.db"), "--concurrency", "2"]
    with (tmp_path / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrion.cli.main", *args],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@dataclass
class Scene:
    """What `_scene` filled: the ids of each group of runs, and how many runs may go."""

    kept: list[str]
    recent: list[str]
    running: list[str]
    newest_few: list[str]
    families: dict[str, list[str]]
    expected: int


def _scene(app: App, db: Db) -> Scene:
    """`RUNS` old finished runs (every 1000th kept) and what must survive a prune of runs
    older than 30 days keeping the last 5: recent runs, old unfinished runs, the 5 newest
    of a small workflow, and families (a kept parent keeps its child, a kept child keeps
    its parent; an old family with nothing kept goes whole)."""
    now = time.time()
    old = now - 40 * DAY
    bulk, few = _version(app, "bulk"), _version(app, "few", "other")
    many = fill(db, workflow="bulk", version=bulk, n=RUNS, start=old, step=1.0, tag="a",
                keep_every=1000)  # fmt: skip
    families: dict[str, list[str]] = {}
    for tag, (parent_kept, child_kept) in zip("egi", [(1, 0), (0, 1), (0, 0)], strict=True):
        parent = fill(db, workflow="bulk", version=bulk, n=1, start=old - 10, step=1, tag=tag,
                      keep_every=parent_kept)  # fmt: skip
        task_run = int(db.one("SELECT id FROM task_runs WHERE run_id = ?", parent))
        child = fill(db, workflow="few", version=few, n=1, start=old - 9, step=1,
                     tag=chr(ord(tag) + 1), keep_every=child_kept,
                     parent_task_run_id=task_run)  # fmt: skip
        families[tag] = parent + child
    return Scene(
        kept=many[::1000],
        recent=fill(db, workflow="bulk", version=bulk, n=20, start=now - 3600, step=1, tag="b"),
        running=fill(
            db, workflow="bulk", version=bulk, n=10, start=old, step=1, tag="c", finished=False
        ),
        newest_few=fill(db, workflow="few", version=few, n=10, start=old, step=60, tag="d")[5:],
        families=families,
        # bulk's unkept old runs, few's 5 oldest, family i
        expected=(RUNS - len(many[::1000])) + 5 + 2,
    )


def _prune_beside_a_worker(app: App, tmp_path: Path) -> tuple[PruneCounts, list[str]]:
    """Prune while a worker process runs the live workflow, started every 50 ms meanwhile;
    what went, and the live runs (all finished)."""
    _deploy(app, LIVE)
    worker = _worker(app, tmp_path)
    started: list[str] = []
    stop = threading.Event()

    def keep_triggering() -> None:
        while not stop.is_set() and len(started) < 200:
            started.append(app.runs.trigger("live").id)
            stop.wait(0.05)

    trigger = threading.Thread(target=keep_triggering)
    trigger.start()
    try:
        t0 = time.monotonic()
        done = app.retention.prune(older_than=30 * DAY, keep_last=5)
        took = time.monotonic() - t0
        print(f"pruned in {took:.1f}s: {done.counts}; {len(started)} live runs started meanwhile")
        stop.set()
        trigger.join()
        deadline = time.monotonic() + 60
        states = {}
        while time.monotonic() < deadline:
            states = {r: app.runs.get_run(r).state.value for r in started}
            if set(states.values()) == {"succeeded"}:
                break
            time.sleep(0.2)
        log = (tmp_path / "worker.log").read_text()[-3000:]
        assert set(states.values()) == {"succeeded"}, log
    finally:
        stop.set()
        trigger.join()
        worker.terminate()
        worker.wait(timeout=30)
    return done.counts, started


def test_prune_many_runs_while_a_worker_runs(app: App, db: Db, tmp_path: Path) -> None:
    t0 = time.monotonic()
    scene = _scene(app, db)
    print(f"filled {db.count('runs')} runs in {time.monotonic() - t0:.1f}s")
    tables = ("runs", "task_runs", "attempts", "events", "logs")
    before = {t: db.count(t) for t in tables}
    t0 = time.monotonic()
    dry = app.retention.prune(older_than=30 * DAY, keep_last=5, dry_run=True)
    print(f"dry run in {time.monotonic() - t0:.1f}s: {dry.counts}")
    assert {t: db.count(t) for t in tables} == before  # a dry run changes nothing
    assert dry.counts.runs == scene.expected
    assert dry.counts.logs == 2 * scene.expected and dry.counts.attempts == scene.expected

    counts, live = _prune_beside_a_worker(app, tmp_path)

    assert counts == dry.counts  # the dry run said exactly what would go
    assert _present(db, scene.kept) == len(scene.kept)
    assert _present(db, scene.recent) == 20 and _present(db, scene.running) == 10
    assert _present(db, scene.newest_few) == 5
    assert _present(db, scene.families["e"]) == 2 and _present(db, scene.families["g"]) == 2
    assert _present(db, scene.families["i"]) == 0
    assert _present(db, live) == len(live)  # the live runs are recent
    assert _orphans(db) == dict.fromkeys(_orphans(db), 0)
    # A kept run keeps every row it owns.
    for table in ("task_runs", "attempts", "logs"):
        assert int(db.one(f"SELECT count(*) FROM {table} WHERE run_id = ?", [scene.kept[1]])) >= 1
    pruned_events = db.rows("SELECT data FROM events WHERE kind = 'retention.pruned'")
    assert sum(json.loads(r[0])["runs"] for r in pruned_events) == scene.expected
    assert len(pruned_events) >= scene.expected // 500  # in batches


def test_pages_are_reused_after_pruning(app: App, db: Db, tmp_path: Path) -> None:
    if on_postgres():
        pytest.skip("SQLite's file; PostgreSQL reuses space through autovacuum")
    n = min(RUNS, 10_000)
    version = _version(app, "bulk")
    path = tmp_path / "app.db"

    def size() -> int:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        return path.stat().st_size

    sizes = []
    for cycle, tag in enumerate("pqrs"):
        fill(db, workflow="bulk", version=version, n=n, start=time.time() - 40 * DAY,
             step=0.01, tag=tag)  # fmt: skip
        sizes.append(size())
        done = app.retention.prune(older_than=30 * DAY)
        assert done.counts.runs == n, (cycle, done.counts)
        if cycle == 0:
            assert int(db.one("PRAGMA freelist_count")) > 0  # freed, kept for reuse
    print("file size after each refill:", sizes)
    # The first fill grew the file; every later one fits in the pages pruning freed.
    assert max(sizes[1:]) <= sizes[0] * 1.02, sizes


def test_logs_rule_keeps_the_runs(app: App, db: Db) -> None:
    version = _version(app, "bulk")
    ten_days = fill(db, workflow="bulk", version=version, n=30, start=time.time() - 10 * DAY,
                    step=1, tag="l", keep_every=10)  # fmt: skip
    app.retention.set_policy("team", logs_days=7)
    counts = app.retention.apply_policies()
    assert counts == PruneCounts(logs=2 * 27)
    assert _present(db, ten_days) == 30
    assert int(db.one("SELECT count(*) FROM logs")) == 2 * 3  # the kept runs'


def test_the_scheduler_duty_prunes_in_steps(app: App, db: Db) -> None:
    version = _version(app, "bulk")
    fill(db, workflow="bulk", version=version, n=2300, start=time.time() - 40 * DAY, step=1,
         tag="s")  # fmt: skip
    app.retention.set_policy("*", runs_days=30)
    scheduler = app.runtime.scheduler()
    first = scheduler.tick()
    assert "retention" in first.duties
    assert first.pruned is not None and first.pruned.runs == 2000  # 4 batches a pass
    second = scheduler.tick()  # a backlog: it carries on at once
    assert second.pruned is not None and second.pruned.runs == 300
    assert scheduler.tick().pruned is None  # then waits its interval
    assert db.count("runs") == 0


def test_audit_records_are_exported_then_deleted(app: App, db: Db, tmp_path: Path) -> None:
    old = time.time() - 100 * DAY
    for i in range(30):
        app.store.accounts.append_audit(
            AuditEntry(at=old + i, actor="ana", actor_kind="user", action="run.trigger",
                       object=f"workflow w{i}", namespace="team" if i % 3 else None,
                       params={"i": i})
        )  # fmt: skip
    for _ in range(5):
        app.store.accounts.append_audit(
            AuditEntry(at=time.time(), actor="bo", actor_kind="user", action="run.cancel",
                       object="run r", namespace="team")
        )  # fmt: skip
    exports = tmp_path / "exports"
    app.retention.set_policy("team", audit_days=90, audit_export_dir=str(exports / "team"))
    app.retention.set_policy("*", audit_days=90, audit_export_dir=str(exports / "rest"))
    counts = app.retention.apply_policies()
    assert counts == PruneCounts(audit=30)

    files = sorted(exports.rglob("*.jsonl"))
    assert [f.parent.name for f in files] == ["rest", "team"]
    exported = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(r["params"]["i"] for r in exported) == list(range(30))
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE((exports / "team").stat().st_mode) == 0o700
    team = [json.loads(line) for line in files[1].read_text().splitlines()]
    assert {r["namespace"] for r in team} == {"team"}

    actions = [r[0] for r in db.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions.count("run.cancel") == 5 and actions.count("run.trigger") == 0
    assert actions.count("audit.pruned") == 2
    # Otherwise the log is as append-only as before: no DELETE or UPDATE gets through.
    for sql in ("DELETE FROM audit_log", "UPDATE audit_log SET actor = 'x'"):
        with pytest.raises(Exception, match="append-only"):
            db.execute(sql)
    assert len(db.rows("SELECT id FROM audit_log")) == 5 + 2


def test_the_gate_lets_only_old_rows_below_its_bound_go(app: App, db: Db) -> None:
    for i in range(3):
        app.store.accounts.append_audit(
            AuditEntry(at=1000.0 + i, actor="a", actor_kind="user", action="x", object="o")
        )
    ids = [r[0] for r in db.rows("SELECT id FROM audit_log ORDER BY id")]
    db.script([("INSERT INTO audit_prune_gate (id, up_to_id, before) VALUES (1, ?, ?)",
                (ids[0], 1001.5)),
               ("DELETE FROM audit_log WHERE id = ?", (ids[0],)),
               ("DELETE FROM audit_prune_gate", ())])  # fmt: skip
    with pytest.raises(Exception, match="append-only"):  # above the gate's id
        db.script([("INSERT INTO audit_prune_gate (id, up_to_id, before) VALUES (1, ?, ?)",
                    (ids[0], 5000.0)),
                   ("DELETE FROM audit_log WHERE id = ?", (ids[1],))])  # fmt: skip
    if on_postgres():
        # A gate left open does not commit: it cannot stay open for later statements.
        with pytest.raises(Exception, match="closed in the transaction"):
            db.script([("INSERT INTO audit_prune_gate (id, up_to_id, before) VALUES (1, ?, ?)",
                        (ids[2], 5000.0))])  # fmt: skip
    assert [r[0] for r in db.rows("SELECT id FROM audit_log ORDER BY id")] == ids[1:]


def test_keep_marks_are_audited_and_refuse_bad_input(app: App, db: Db) -> None:
    from orchestrion.app.core import Actor
    from orchestrion.errors import NotFound, ParameterError

    version = _version(app, "bulk")
    (run_id,) = fill(db, workflow="bulk", version=version, n=1, start=time.time() - 40 * DAY,
                     step=1, tag="k")  # fmt: skip
    app.actor = Actor("ana")
    assert app.retention.keep_run(run_id[:14]) is True  # a prefix, as everywhere
    assert app.retention.keep_run(run_id) is False
    assert app.runs.get_run(run_id).keep is True
    assert app.retention.prune(older_than=DAY).counts.runs == 0
    app.retention.keep_run(run_id, False)
    assert app.retention.prune(older_than=DAY).counts.runs == 1
    actions = [r[0] for r in db.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["run.keep", "run.keep", "runs.prune", "run.unkeep", "runs.prune"]
    with pytest.raises(NotFound):
        app.retention.keep_run("nope")
    for bad in (
        {"runs_days": -1.0},
        {"keep_last": -2},
        {"audit_days": 3.0},
        {"audit_days": 3.0, "audit_export_dir": "relative/path"},
        {},
    ):
        with pytest.raises(ParameterError):
            app.retention.set_policy("team", **bad)
    with pytest.raises(ParameterError):
        app.retention.set_policy("Bad Name", runs_days=1.0)
    with pytest.raises(ParameterError):
        app.retention.prune(older_than=0)


def _family(db: Db, version: str, tags: str, *, kept: int = -1, running: int = -1) -> list[str]:
    """A chain of runs, each the child of the one before (a sub-workflow's), all old;
    the `kept`-th marked kept, the `running`-th still running."""
    ids: list[str] = []
    parent_task_run: int | None = None
    start = time.time() - 40 * DAY
    for depth, tag in enumerate(tags):
        (run_id,) = fill(db, workflow="bulk", version=version, n=1, start=start + depth, step=1,
                         tag=tag, keep_every=1 if depth == kept else 0,
                         finished=depth != running, parent_task_run_id=parent_task_run)  # fmt: skip
        parent_task_run = int(db.one("SELECT id FROM task_runs WHERE run_id = ?", [run_id]))
        ids.append(run_id)
    return ids


def test_families_go_whole_or_stay_whole_at_any_depth(app: App, db: Db) -> None:
    version = _version(app, "bulk")
    gone = _family(db, version, "ABC")
    kept_deep = _family(db, version, "DEF", kept=2)
    running_deep = _family(db, version, "GHI", running=2)
    dry = app.retention.prune(older_than=30 * DAY, dry_run=True)
    done = app.retention.prune(older_than=30 * DAY)
    assert dry.counts == done.counts and done.counts.runs == 3
    assert _present(db, gone) == 0
    assert _present(db, kept_deep) == 3 and _present(db, running_deep) == 3
    assert _orphans(db) == dict.fromkeys(_orphans(db), 0)


def test_families_that_stay_do_not_block_older_than_them(app: App, db: Db) -> None:
    """600 old runs whose child is kept fill more than a batch: the runs behind them are
    still reached (each batch starts where the last stopped)."""
    version = _version(app, "bulk")
    old = time.time() - 50 * DAY
    parents = fill(db, workflow="bulk", version=version, n=600, start=old, step=1, tag="P")
    db.execute(
        "INSERT INTO runs (id, workflow, version, state, params, created_at, started_at,"
        " finished_at, keep, parent_task_run_id) SELECT substr(p.id, 1, 12) || 'Q' ||"
        " substr(p.id, 14), p.workflow, p.version, p.state, '{}', p.created_at, p.started_at,"
        " p.finished_at, 1, t.id FROM runs p JOIN task_runs t ON t.run_id = p.id"
        " WHERE substr(p.id, 13, 1) = 'P'"
    )
    later = fill(db, workflow="bulk", version=version, n=100, start=old + DAY, step=1, tag="R")
    done = app.retention.prune(older_than=30 * DAY)
    assert done.counts.runs == 100
    assert _present(db, later) == 0 and _present(db, parents) == 600
    assert db.count("runs") == 1200


def test_history_of_no_run_ages_under_the_default_policy(app: App, db: Db) -> None:
    old, now = time.time() - 40 * DAY, time.time()
    for at, tag in ((old, "o"), (now, "n")):
        for i in range(3):
            db.execute("INSERT INTO events (at, kind, data) VALUES (?, 'trigger.event', '{}')",
                       (at,))  # fmt: skip
            db.execute(
                "INSERT INTO inbox (source, event_id, type, payload, run_ids, received_at)"
                " VALUES ('api', ?, 't', '{}', '[]', ?)",
                (f"{tag}{i}", at),
            )
            for state in ("skipped", "queued"):
                db.execute(
                    "INSERT INTO fires (schedule_key, workflow, nominal, state, params,"
                    " created_at) VALUES ('w/0', 'w', ?, ?, '{}', ?)",
                    (at + i + (0.5 if state == "queued" else 0), state, at),
                )
    app.retention.set_policy("team", logs_days=1)  # a namespace's policy: not this rule
    assert app.retention.apply_policies() == PruneCounts()
    app.retention.set_policy("*", runs_days=30)
    counts = app.retention.apply_policies()
    assert (counts.events, counts.inbox, counts.fires) == (3, 3, 3)
    assert db.count("inbox") == 3 and db.count("fires") == 9
    assert [r[0] for r in db.rows("SELECT DISTINCT state FROM fires WHERE created_at < ?",
                                   (now - DAY,))] == ["queued"]  # fmt: skip


def test_wait_rows_go_with_a_canceled_run_and_signals_with_a_pruned_one(app: App, db: Db) -> None:
    _deploy(app, "name: gated\nnamespace: team\ntasks:\n  go:\n    wait_for: {signal: go}\n")
    run = app.runs.trigger("gated")
    app.waits.signal(run.id, "other", {"n": 1})  # taken by no step: it stays
    assert (db.count("task_waits"), db.count("run_signals")) == (1, 1)
    app.runs.cancel(run.id)
    assert (db.count("task_waits"), db.count("run_signals")) == (0, 1)
    # A wait row left behind (say, by a crash of an older version) goes with its run too.
    row = (1_000_000, run.id, "signal", "go", time.time())
    db.execute(
        "INSERT INTO task_waits (task_run_id, run_id, kind, name, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        row,
    )
    db.execute(
        "UPDATE runs SET created_at = created_at - ?, finished_at = finished_at - ? WHERE id = ?",
        (10 * DAY, 10 * DAY, run.id),
    )
    report = app.retention.prune(older_than=DAY)
    assert report.counts.runs == 1 and report.counts.waits == 2
    assert (db.count("task_waits"), db.count("run_signals"), db.count("runs")) == (0, 0, 0)

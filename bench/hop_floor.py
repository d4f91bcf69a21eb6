"""The SQLite floor under a W2 chain hop: its statements alone, from a minimal Python loop.

Usage: .venv/bin/python bench/hop_floor.py [--hops 1000] [--runs 5] [--callgrind]
       [--check] [--page-size 4096]

Issue 20 asks for a W2 hop (one task of a chain finishing, the next one starting) of at
most 0.25 ms wall. Some of that time is SQLite's, whatever the engine's Python does: the
statements that the engine's guarantees require. This script measures that floor. It makes
a real database (an `App` creates and migrates it, so the schema, its indexes and its
triggers are the real ones), registers a long chain and triggers a run, closes the App,
then reopens the file with plain `sqlite3`, set up by the store's own
``SQLITE.connection_setup`` (WAL, ``synchronous=NORMAL``, foreign keys, busy timeout,
cache, checkpoint interval), and sends per hop, in one ``BEGIN IMMEDIATE`` ... ``COMMIT``,
what a real hop sends (the engine's lone-success finish, `store/sqlite/finish.py`, then its
claim in the same transaction, `store/sql/claim.py`):

  1. the compare-and-set of the finished row to succeeded (``succeed_one``, RETURNING it);
  2. the attempt's close (``close_attempt``; its trigger writes the metric delta);
  3. the run row read (``run_row``);
  4. the count into the successor (``count_downstream``, RETURNING it);
  5. the successor's move to queued (``move_task_run`` also setting ``ready_at``);
  6. the run's counter (``count_finished``, RETURNING it);
  7. the claim's candidate read (``claim_candidates``) and 8. its move (``claim_chosen``);
  9. the new attempt (``insert_attempts``);
  10-12. three event rows (``insert_events``: task.succeed, task.ready, task.claim).

The statement texts are the store's own (`Q`, `SQLITE`, their holes filled as the engine
fills them), so the floor follows the engine when they change. Left out, as engine cost
rather than SQL: the writer lock (an flock per transaction), ``sqlite3.Row`` rows, every
decision taken in Python, the worker's threads and the task call itself.

``--check`` traces one real engine hop (``set_trace_callback``) and one hop of this loop
and compares the statements' shapes (literals blanked). Verified on this tree: the same 16
traced lines on both sides (BEGIN, the 12 statements, COMMIT, and the attempt's close twice
more: the trace repeats it for the trigger it fires), and the same ``LIMIT 128`` at the
default concurrency of 32 (a claim asks for four times its free slots).

Printed: ms per hop of the floor (median and min of ``--runs``, each in a fresh database in
a temporary folder), the engine's own W2 wall per task measured as ``bench/run_all.py``
does (a chain of 100, `measure`), and their ratio. ``--callgrind`` also counts the floor's
instructions per hop with valgrind: a fresh process running 600 hops minus one running
100, over 500 (start-up, imports and set-up cancel out).

``--page-size N`` rebuilds each floor database with N-byte pages (``VACUUM``, out of WAL
and back) before its hops: the store makes new files with 2 KiB pages, and this compares
the floor with SQLite's default 4 KiB, or any other size (docs/performance.md, session 16).
It applies to the floor's timed runs only: the engine's line and ``--callgrind`` use the
store's own pages.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrion.store.sql.jsontext import dumps
from orchestrion.store.sql.named import also_set, marks
from orchestrion.store.sql.queries import Q
from orchestrion.store.sql.routing import route_filter
from orchestrion.store.sqlite.queries import SQLITE
from orchestrion.worker.sizing import DEFAULT_CONCURRENCY

#: The statements of one hop, in the order the engine sends them.
BEGIN = SQLITE.begin_immediate
SUCCEED = SQLITE.succeed_one
CLOSE = Q.close_attempt
RUN_ROW = Q.run_row  # the engine appends `for_update()`, which is empty on SQLite
COUNT = Q.count_downstream.fill(names=marks(1))
READY = Q.move_task_run.fill(sets=also_set(["ready_at"]))
FINISHED = Q.count_finished
CANDIDATES = Q.claim_candidates.fill(queues=marks(1), routed=route_filter({})[0])
CHOSEN = Q.claim_chosen.fill(ids=marks(1))
ATTEMPT = Q.insert_attempts
EVENTS = Q.insert_events
COMMIT = Q.commit

WORKER = "floor-1-000000"
QUEUE = "default"
LEASE = 30.0
#: A claim asks for four times its free slots (`claim.claim`); after a finish, a worker of
#: the default concurrency has all of them free.
CLAIM_LIMIT = DEFAULT_CONCURRENCY * 4
#: The claim event's data, as the engine writes it.
CLAIM_DATA = dumps({"worker": WORKER, "attempt": 1})
#: How long the chain is for ``--callgrind``'s processes (the most hops either runs, + 1).
CALLGRIND_HOPS = (100, 600)


# ------------------------------------------------------------------------------ the floor


def make_database(folder: Path, hops: int) -> tuple[Path, str]:
    """A database made by a real App, with a triggered run of a chain of `hops` + 1 tasks
    (its first task queued); returns the file and the run's id."""
    # Imported here: a --callgrind child process needs neither (nor their imports).
    from engine_bench import chain
    from run_all import fresh_app

    app = fresh_app(folder, "floor")
    try:
        spec = chain(hops + 1, name="floor")
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run_id = app.runs.trigger(spec.name).id
    finally:
        app.close()
    return folder / "floor.db", run_id


def repage(path: Path, page_size: int) -> None:
    """Rebuild the database at `path` with `page_size`-byte pages (a WAL file's page size
    changes only by a ``VACUUM`` out of WAL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute(f"PRAGMA page_size = {int(page_size)}")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode = WAL")
        got = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    if got != page_size:
        raise SystemExit(f"--page-size {page_size}: SQLite kept {got}-byte pages")


def connect(path: Path) -> sqlite3.Connection:
    """A plain connection, set up as the store sets up its own (`SqliteDatabase`)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SQLITE.connection_setup)
    return conn


def task_run_ids(conn: sqlite3.Connection, run_id: str) -> list[int]:
    """The run's task run ids in chain order (c0, c1, ...: inserted, so numbered, in order)."""
    rows = conn.execute("SELECT id FROM task_runs WHERE run_id = ? ORDER BY id", (run_id,))
    return [int(r[0]) for r in rows]


def claim(conn: sqlite3.Connection, run_id: str, task_run_id: int, now: float) -> None:
    """The claim's statements: candidates, the move to running, the new attempt."""
    conn.execute(CANDIDATES, (QUEUE, now, now, now, CLAIM_LIMIT)).fetchall()
    conn.execute(CHOSEN, (WORKER, now + LEASE, now, task_run_id))
    conn.execute(ATTEMPT, (task_run_id, run_id, 1, 1, WORKER, now))


def hop(conn: sqlite3.Connection, run_id: str, done: int, nxt: int, nxt_name: str) -> None:
    """One hop: task run `done` succeeds, `nxt` (named `nxt_name`) becomes ready and is
    claimed, in one write transaction."""
    now = time.time()
    conn.execute(BEGIN)
    conn.execute(SUCCEED, ("succeeded", "1", now, done, "running", 1)).fetchone()
    conn.execute(CLOSE, (now, "succeeded", None, None, None, done, 1))
    conn.execute(RUN_ROW, (run_id,)).fetchone()
    conn.execute(COUNT, (1, 1, 0, 0, run_id, nxt_name)).fetchall()
    conn.execute(READY, ("queued", now, nxt, "pending"))
    conn.execute(FINISHED, (1, run_id)).fetchone()
    claim(conn, run_id, nxt, now)
    conn.executemany(
        EVENTS,
        [
            (run_id, done, now, "task.succeed", "running", "succeeded", None),
            (run_id, nxt, now, "task.ready", "pending", "queued", None),
            (run_id, nxt, now, "task.claim", "queued", "running", CLAIM_DATA),
        ],
    )
    conn.execute(COMMIT)


def started(conn: sqlite3.Connection, run_id: str) -> list[int]:
    """Claim the chain's first task (committed); the run's task run ids in chain order."""
    ids = task_run_ids(conn, run_id)
    conn.execute(BEGIN)
    claim(conn, run_id, ids[0], time.time())
    conn.execute(COMMIT)
    return ids


def run_hops(path: Path, run_id: str, hops: int) -> float:
    """Claim the chain's first task, then send `hops` hops; seconds the hops took."""
    conn = connect(path)
    try:
        ids = started(conn, run_id)
        start = time.perf_counter()
        for i in range(hops):
            hop(conn, run_id, ids[i], ids[i + 1], f"c{i + 1}")
        elapsed = time.perf_counter() - start
        check_moved(conn, run_id, hops)
        return elapsed
    finally:
        conn.close()


def check_moved(conn: sqlite3.Connection, run_id: str, hops: int) -> None:
    """The hops changed what a real hop changes (else a drifted state name or parameter
    would time statements that match no row, and the floor would read low): `hops` task
    runs succeeded with their attempts closed, the next one running, and one event per
    move."""
    states = dict(
        conn.execute(
            "SELECT state, count(*) FROM task_runs WHERE run_id = ? GROUP BY state", (run_id,)
        ).fetchall()
    )
    closed = conn.execute(
        "SELECT count(*) FROM attempts WHERE run_id = ? AND outcome = 'succeeded'", (run_id,)
    ).fetchone()[0]
    events = conn.execute(
        "SELECT count(*) FROM events WHERE run_id = ? AND kind LIKE 'task.%'", (run_id,)
    ).fetchone()[0]
    if states.get("succeeded") != hops or states.get("running") != 1 or closed != hops:
        raise SystemExit(f"the floor's hops did not move the rows: {states}, {closed} closed")
    if events < 3 * hops:
        raise SystemExit(f"the floor's hops wrote {events} task events, not {3 * hops}")


def floor_ms(hops: int, runs: int, page_size: int | None = None) -> list[float]:
    """Milliseconds per hop of `runs` runs, each in a fresh database (with `page_size`-byte
    pages if given, else the store's own)."""
    out = []
    for _ in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="orchestrion-floor-"))
        try:
            path, run_id = make_database(folder, hops)
            if page_size is not None:
                repage(path, page_size)
            out.append(run_hops(path, run_id, hops) / hops * 1000)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------ the engine


def engine_ms(runs: int) -> list[float]:
    """The engine's W2 wall per task in ms, as `bench/run_all.py` measures it."""
    from engine_bench import chain
    from run_all import measure

    folder = Path(tempfile.mkdtemp(prefix="orchestrion-floor-"))
    try:
        times = measure(folder, "w2", chain(100), runs, DEFAULT_CONCURRENCY)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [t / 100 * 1000 for t in times]


# ------------------------------------------------------------------------------ callgrind


def instructions_per_hop() -> float | None:
    """Instructions per hop: callgrind's count of a process running 600 hops minus one
    running 100, over 500 (None without valgrind)."""
    if shutil.which("valgrind") is None:
        return None
    low, high = CALLGRIND_HOPS
    folder = Path(tempfile.mkdtemp(prefix="orchestrion-floor-"))
    try:
        template, run_id = make_database(folder, high)
        counts = []
        for hops in CALLGRIND_HOPS:
            copy = folder / f"copy{hops}.db"  # each process gets a fresh database
            shutil.copyfile(template, copy)
            out = subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--callgrind-out-file=/dev/null",
                    sys.executable,
                    __file__,
                    "--child",
                    str(copy),
                    run_id,
                    str(hops),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            found = re.search(r"refs:\s+([\d,]+)", out.stderr)
            if found is None:
                raise SystemExit(f"no instruction count from callgrind:\n{out.stderr}")
            counts.append(int(found[1].replace(",", "")))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return (counts[1] - counts[0]) / (high - low)


# ---------------------------------------------------------------------------------- check


def shapes(statements: list[str]) -> list[str]:
    """Traced statements with their literal values blanked (strings and numbers)."""
    out = []
    for s in statements:
        s = re.sub(r"'(?:[^']|'')*'", "?", s)
        out.append(re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", "?", s))
    return out


def engine_hop_trace() -> list[str]:
    """The statements of one real engine hop (the chain's second one), traced."""
    from engine_bench import chain, run_workload
    from run_all import fresh_app

    folder = Path(tempfile.mkdtemp(prefix="orchestrion-floor-"))
    traced: list[str] = []
    try:
        app = fresh_app(folder, "trace")
        try:
            app.store.backend._conn.set_trace_callback(traced.append)  # type: ignore[attr-defined]
            run_workload(app, chain(4), DEFAULT_CONCURRENCY)
        finally:
            app.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    hops = [t for t in transactions(traced) if t[1].startswith("UPDATE task_runs SET state")]
    return hops[1]


def transactions(traced: list[str]) -> list[list[str]]:
    """The traced write transactions, each from its BEGIN to its COMMIT."""
    out: list[list[str]] = []
    current: list[str] | None = None
    for s in traced:
        if s == BEGIN:
            current = [s]
        elif current is not None:
            current.append(s)
            if s == COMMIT:
                out.append(current)
                current = None
    return out


def floor_hop_trace() -> list[str]:
    """The statements of one hop of this script's loop, traced."""
    folder = Path(tempfile.mkdtemp(prefix="orchestrion-floor-"))
    traced: list[str] = []
    try:
        path, run_id = make_database(folder, 2)
        conn = connect(path)
        try:
            ids = started(conn, run_id)
            conn.set_trace_callback(traced.append)
            hop(conn, run_id, ids[0], ids[1], "c1")
        finally:
            conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return traced


def check() -> None:
    """Compare the shapes of one engine hop's statements and one floor hop's."""
    engine, floor = engine_hop_trace(), floor_hop_trace()
    if shapes(engine) == shapes(floor):
        limit = re.search(r"LIMIT (\d+)", " ".join(engine))
        print(
            f"check: a floor hop sends the same {len(floor)} traced statements as an engine"
            f" hop (shapes; the engine's claim LIMIT {limit[1] if limit else '?'},"
            f" the floor's {CLAIM_LIMIT})"
        )
        return
    print("check: the statements differ\n--- engine\n" + "\n".join(engine))
    print("--- floor\n" + "\n".join(floor))
    raise SystemExit(1)


# ----------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hops", type=int, default=1000, help="hops per run")
    parser.add_argument("--runs", type=int, default=5, help="runs (median and min)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions per hop")
    parser.add_argument("--check", action="store_true", help="compare with a traced engine hop")
    parser.add_argument(
        "--page-size", type=int, default=None, help="rebuild the floor's files with these pages"
    )
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # a --callgrind process: only the hops
        path, run_id, hops = args.child
        run_hops(Path(path), run_id, int(hops))
        return
    if args.check:
        check()
    floor = floor_ms(args.hops, args.runs, args.page_size)
    pages = "" if args.page_size is None else f", {args.page_size}-byte pages"
    print(
        f"floor: {args.hops} hops{pages}, {statistics.median(floor):.4f} ms per hop"
        f" (median of {args.runs}; min {min(floor):.4f} ms)"
    )
    engine = engine_ms(args.runs)
    print(
        f"engine: W2 chain of 100, {statistics.median(engine):.4f} ms per task, wall"
        f" (median of {args.runs}; min {min(engine):.4f} ms)"
    )
    print(
        f"engine / floor: {statistics.median(engine) / statistics.median(floor):.2f}x"
        f" (medians); issue 20's target: <= 0.25 ms per hop"
    )
    if args.callgrind:
        count = instructions_per_hop()
        if count is None:
            print("callgrind: valgrind is not installed; instructions per hop not counted")
        else:
            print(f"callgrind: {count:,.0f} instructions per floor hop (600 hops - 100, / 500)")


if __name__ == "__main__":
    main()

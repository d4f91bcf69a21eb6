"""Two ``orchestrion scheduler`` processes; the lease holder is SIGKILLed and restarted.

Real time (a fake clock cannot be shared across processes): N workflows each with an
``every: 1s`` schedule (``catchup: all``), for a while (CI: 50 schedules, 20 s, a kill
every 5 s; ``ORCHESTRION_FAULT_SCALE=full``: 200 schedules, 60 s, every 10 s). The holder
of the ``scheduler.cron`` lease is found in the ``leases`` table and killed; the killed
slot is started again only once the other scheduler has taken the lease over, so each kill
is a failover to the survivor, not a wait for the restart, and must come within a few lease
times, and the new leader must then fire. Afterwards, every (schedule, nominal time) in the
window has its ``fires`` row, none missing. None is there twice, nor is its run: that rests
on unique keys (the fire's, the run's idempotency key), not on the test. How long each
takeover took, the worst lateness and the longest pause between fires are printed, not
asserted: they are figures of the machine's load as much as of the code (beside a process
saturating the disk, one commit has taken seconds). A fire's ``created_at`` is the start of
the scheduler pass that made it, so the lateness is a lower bound and the pause is between
the starts of two passes that fired.
"""

from __future__ import annotations

import collections
import itertools
import math
import signal
import time
from collections.abc import Callable

from tests.fault.conftest import Cluster, query, scale, wait_for

SCHEDULES = scale(50, 200)
DURATION = scale(20.0, 60.0)
KILL_EVERY = scale(5.0, 10.0)
LEASE = 3.0
#: How long the survivor may take to hold the lease after the kill: the lease time, a tick,
#: and the end of a pass it may be in. Loose, as a timeout is: a failover that waited for
#: something other than the lease's expiry (a longer TTL, the killed one's restart) fails.
TAKEOVER = 5 * LEASE

FLOW = """\
name: tick_{i:03d}
schedules:
  - name: s
    every: 1s
    catchup: all
    max_catchup: 1000
tasks:
  noop:
    shell: ["true"]
"""


def _holder_pid(db: str) -> int | None:
    rows = query(db, "SELECT holder, expires_at FROM leases WHERE name = 'scheduler.cron'")
    if not rows or rows[0]["expires_at"] < time.time():
        return None
    return int(str(rows[0]["holder"]).split(":")[1])


def test_killed_scheduler_fails_over(pg_db: str, make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(pg_db, "sched", lease=LEASE)
    for i in range(SCHEDULES):
        (cluster.flows / f"tick_{i:03d}.yaml").write_text(FLOW.format(i=i))
    cluster.deploy()
    slots = [cluster.scheduler("s0"), cluster.scheduler("s1")]

    def holder() -> int | None:
        pid = _holder_pid(pg_db)
        return pid if pid in {p.pid for p in slots} else None

    wait_for("a scheduler to hold the cron lease", holder, 30, cluster.report)
    wait_for(
        "every schedule to fire",
        lambda: (
            query(pg_db, "SELECT count(DISTINCT schedule_key) AS n FROM fires")[0]["n"] >= SCHEDULES
        ),
        30,
        cluster.report,
    )
    window_start = math.ceil(time.time()) + 1
    start = time.monotonic()
    kills = 0
    takeovers: list[float] = []
    while time.monotonic() - start < DURATION:
        time.sleep(KILL_EVERY)
        pid = wait_for("a lease holder", holder, 30, cluster.report)
        [i] = [n for n, p in enumerate(slots) if p.pid == pid]
        for p in slots:
            assert p.alive(), f"{p.name} exited by itself\n{cluster.report()}"
        slots[i].signal(signal.SIGKILL)
        killed = time.monotonic()
        slots[i].kill_group()
        kills += 1
        survivor = slots[1 - i].pid
        wait_for(
            f"the survivor (pid {survivor}) to take the lease over",
            lambda: _holder_pid(pg_db) == survivor,  # noqa: B023 - called within the iteration
            TAKEOVER,
            cluster.report,
        )
        takeovers.append(time.monotonic() - killed)
        # ...and fires: a fire due after the kill is made by the new leader.
        after = time.time()
        wait_for(
            "the new leader to fire",
            lambda: query(pg_db, "SELECT 1 FROM fires WHERE nominal > %s LIMIT 1", (after,)),  # noqa: B023
            60,
            cluster.report,
        )
        slots[i] = cluster.scheduler(f"s{i}")
    window_end = math.floor(time.time()) - 1

    in_window = "FROM fires WHERE nominal >= %s AND nominal <= %s"
    span = (window_start, window_end)
    # Everything due in the window is fired in the end; on a loaded machine the leader's
    # catch-up may still be under way here, so wait for it rather than guess how long.
    expected_rows = SCHEDULES * (window_end - window_start + 1)
    wait_for(
        f"the {expected_rows} fires due in the window",
        lambda: query(pg_db, f"SELECT count(*) AS n {in_window}", span)[0]["n"] >= expected_rows,
        60,
        cluster.report,
    )
    for p in slots:
        assert p.alive(), f"{p.name} exited by itself\n{cluster.report()}"

    rows = query(
        pg_db,
        f"SELECT schedule_key, nominal, created_at, state {in_window} ORDER BY created_at",
        span,
    )
    per_schedule: dict[str, list[float]] = collections.defaultdict(list)
    for r in rows:
        per_schedule[str(r["schedule_key"])].append(float(r["nominal"]))
    expected = [float(t) for t in range(window_start, window_end + 1)]
    assert len(per_schedule) == SCHEDULES
    for key, nominals in per_schedule.items():
        assert sorted(nominals) == expected, (key, sorted(set(expected) - set(nominals)))
    assert {r["state"] for r in rows} == {"started"}
    late = max(float(r["created_at"]) - float(r["nominal"]) for r in rows)
    made = sorted(float(r["created_at"]) for r in rows)
    pause = max(b - a for a, b in itertools.pairwise(made))
    print(
        f"{kills} kills of the leader, {SCHEDULES} schedules, window of"
        f" {window_end - window_start + 1} s: {len(rows)} fires, each made once;"
        f" the survivor held the lease {', '.join(f'{t:.2f}' for t in takeovers)} s after"
        f" each kill (lease {LEASE:g} s); worst lateness {late:.2f} s, longest pause between"
        f" fires {pause:.2f} s"
    )

"""Two ``orchestrion scheduler`` processes; the lease holder is SIGKILLed and restarted.

Real time (a fake clock cannot be shared across processes): N workflows each with an
``every: 1s`` schedule (``catchup: all``), for a while (CI: 50 schedules, 20 s, a kill
every 5 s; ``ORCHESTRION_FAULT_SCALE=full``: 200 schedules, 60 s, every 10 s). The holder
of the ``scheduler.cron`` lease is found in the ``leases`` table and killed. Afterwards,
every (schedule, nominal time) in the window has exactly one ``fires`` row, and no fire is
later than the lease time plus a margin (failover within the lease time). The worst
lateness and the longest pause between fires are printed.
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
#: A scheduler ticks at least every second; a tick and process start-up take some too.
MARGIN = 2.5

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
    while time.monotonic() - start < DURATION:
        time.sleep(KILL_EVERY)
        pid = wait_for("a lease holder", holder, 30, cluster.report)
        [i] = [n for n, p in enumerate(slots) if p.pid == pid]
        for p in slots:
            assert p.alive(), f"{p.name} exited by itself\n{cluster.report()}"
        slots[i].signal(signal.SIGKILL)
        slots[i].kill_group()
        kills += 1
        slots[i] = cluster.scheduler(f"s{i}")
    window_end = math.floor(time.time()) - int(LEASE + MARGIN) - 1
    time.sleep(LEASE + MARGIN + 1)  # fires due in the window are decided by now
    for p in slots:
        assert p.alive(), f"{p.name} exited by itself\n{cluster.report()}"

    rows = query(
        pg_db,
        "SELECT schedule_key, nominal, created_at, state FROM fires"
        " WHERE nominal >= %s AND nominal <= %s ORDER BY created_at",
        (window_start, window_end),
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
        f" {window_end - window_start + 1} s: {len(rows)} fires, each exactly once;"
        f" worst lateness {late:.2f} s, longest pause between fires {pause:.2f} s"
        f" (lease {LEASE:g} s)"
    )
    # Failover: the fires never stop for longer than the lease plus a tick and a start-up.
    assert pause <= LEASE + MARGIN, pause
    # Lateness adds the new leader's catch-up of what fell due meanwhile (with 200
    # schedules a second, hundreds of fires): bounded, but by more than the failover.
    assert late <= 2 * (LEASE + MARGIN), late

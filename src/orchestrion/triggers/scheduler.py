"""The scheduler: fires schedules, paces backfills, starts run-triggered workflows, sweeps.

`Scheduler.tick(now)` does one pass of each duty under that duty's lease; `run_forever`
repeats it, sleeping until the next fire is due (at most `max_sleep`). The decisions are
the pure functions of `orchestrion.triggers.cron` and `.events`; this module loads what
they need and applies their results through store verbs.

Exactly-once does not depend on the leases: every fire inserts (schedule, nominal time)
and every run trigger (``run``, finished run + event id) under a unique key in the
transaction that starts the run, so restarts, two schedulers or a lease that expired in
the middle of a pass cannot start anything twice. The leases only keep schedulers from
doing the same work in parallel, and a killed leader's lease lapses after `lease_ttl`
seconds, when another scheduler takes the duty over.

The scheduler never imports user code: it reads registered specs from the store.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrion.brokers.endpoint import ConnectionResolver
from orchestrion.clock import Clock
from orchestrion.errors import ExpressionError, OrchestrionError, ParameterError
from orchestrion.spec.model import ScheduleSpec, WorkflowSpec
from orchestrion.spec.params import resolve_params
from orchestrion.store.assets import AssetStore
from orchestrion.store.policies import PolicyStore
from orchestrion.store.records import FireRecord, PruneCounts
from orchestrion.store.retention import RetentionStore
from orchestrion.store.runs import RunStore
from orchestrion.store.triggers import TriggerStore
from orchestrion.store.workflows import WorkflowStore
from orchestrion.triggers import cron
from orchestrion.triggers.admission import Admission
from orchestrion.triggers.assets import AssetDuty, uses_assets
from orchestrion.triggers.consumers import BrokerConsumers
from orchestrion.triggers.events import match_run, run_scope
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.maintenance import backoff, sweep
from orchestrion.triggers.notifications import Notifications
from orchestrion.triggers.openlineage import LineageEmitter
from orchestrion.triggers.retention import RetentionDuty
from orchestrion.triggers.traces import RunSpans
from orchestrion.triggers.waits import WaitDuty

__all__ = [
    "BACKFILL_PRIORITY", "DUTIES", "LoopDuty", "Scheduler", "TickReport", "backfill_params",
]  # fmt: skip

log = logging.getLogger("orchestrion.scheduler")

#: Every duty, each under its own lease ``scheduler.<duty>``.
DUTIES = ("cron", "backfill", "run_triggers", "maintenance", "retention", "assets", "lineage")
#: Backfill runs' priority: below fresh runs (priority 0), so they never starve them.
BACKFILL_PRIORITY = -100
#: The event-history reader that the run-trigger duty keeps its position under.
RUN_TRIGGER_CURSOR = "run_triggers"


class LoopDuty(Protocol):
    """A duty built above the scheduler (by `App.runtime`) on its own `PassLoop` thread."""

    def start(self) -> None:
        """Start passing, on a daemon thread."""
        ...

    def stop(self) -> None:
        """Stop after the pass in progress and free the lease."""
        ...


@dataclass
class TickReport:
    """What one `Scheduler.tick` did."""

    duties: list[str] = field(default_factory=list)
    fires: list[FireRecord] = field(default_factory=list)
    #: Runs started from queued fires (overlap ``queue``).
    dequeued: list[str] = field(default_factory=list)
    backfill_runs: list[str] = field(default_factory=list)
    triggered_runs: list[str] = field(default_factory=list)
    #: The broker triggers whose consumers run in this scheduler.
    consumers: list[str] = field(default_factory=list)
    #: Runs started by asset triggers.
    asset_runs: list[str] = field(default_factory=list)
    #: OpenLineage events posted.
    lineage_events: int = 0
    #: What the retention duty pruned (None: it did not run this tick).
    pruned: PruneCounts | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    spec: WorkflowSpec
    version: str
    current_since: float
    #: (schedule, its key) for each of the spec's schedules.
    schedules: tuple[tuple[ScheduleSpec, str], ...]
    #: Whether the assets duty has anything to do for it (asset triggers, max_age).
    assets: bool = False


class Scheduler:
    """One scheduler process's duties; any number may share a database."""

    def __init__(
        self,
        triggers: TriggerStore,
        workflows: WorkflowStore,
        runs: RunStore,
        clock: Clock,
        holder_id: str | None = None,
        *,
        lease_ttl: float = 30.0,
        use_leases: bool = True,
        max_sleep: float = 1.0,
        connections: ConnectionResolver | None = None,
        retention: RetentionStore | None = None,
        assets: AssetStore | None = None,
        policies: PolicyStore | None = None,
    ) -> None:
        """Fires, events and its duties' leases go through `triggers`; specs are read from
        `workflows`; the maintenance duty sweeps `runs`. With `connections` (which opens a
        broker connection) it also runs the consumers of broker triggers; with `retention`,
        the retention duty (docs/operating.md, "Retention"); with `assets`, the assets
        duty (asset triggers and freshness: `orchestrion.triggers.assets`); with
        `policies`, the admission policies decide the runs of cron fires, run triggers and
        broker messages (a denied fire is recorded as failed with the reason)."""
        self.triggers = triggers
        self.workflows = workflows
        self.runs = runs
        self.clock = clock
        self.holder_id = holder_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_ttl = lease_ttl
        self.use_leases = use_leases
        self.max_sleep = max_sleep
        self._leases = {d: DutyLease(triggers, d, self.holder_id, lease_ttl) for d in DUTIES}
        self._specs: dict[tuple[str, str], WorkflowSpec] = {}
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._tick_latest: list[_Entry] | None = None  # read once per tick
        #: (spec version, schedule key) -> (cursor it was computed from, next due time).
        self._due: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        #: The notifications duty, run in its own thread by `run_forever` (sending waits on
        #: receivers: it must not hold back cron fires).
        self.notifications: Notifications | None = None
        #: The traces duty (runs' root spans), when this process traces: its own thread.
        self.traces: RunSpans | None = None
        self.consumers: BrokerConsumers | None = None
        #: The waits duty (timeouts and sensors of waiting steps): its own thread and lease.
        self.waits: WaitDuty | None = None
        #: The Git sync duty (`orchestrion.app.projects.sync`): its own thread and lease.
        self.sync: LoopDuty | None = None
        self.retention: RetentionDuty | None = None
        self.assets = None if assets is None else AssetDuty(assets)
        #: The OpenLineage duty, when ``ORCHESTRION_OPENLINEAGE_URL`` is set.
        self.lineage: LineageEmitter | None = None
        if retention is not None:
            self.retention = RetentionDuty(retention, workflows, clock.now)
        self.admission = None if policies is None else Admission(policies, workflows, clock.now)
        if connections is not None:
            self.consumers = BrokerConsumers(
                triggers, connections, clock, self.holder_id,
                lease_ttl=lease_ttl, use_leases=use_leases,
            )  # fmt: skip
            if self.admission is not None:
                self.consumers.admit = self.admission.matches

    # ------------------------------------------------------------------ loop

    def tick(self, now: float | None = None) -> TickReport:
        """One pass of every duty this scheduler holds (or can take) the lease of."""
        now = self.clock.now() if now is None else now
        report = TickReport()
        self._tick_latest = None
        for duty in DUTIES:
            # The clock's time, not the tick's start: a long cron pass must not leave the
            # duties after it trusting a lease record that lapsed meanwhile (the max keeps a
            # `now` passed ahead of the clock, as tests do, working as before).
            if not self._holds(duty, max(now, self.clock.now())):
                continue
            report.duties.append(duty)
            if duty == "cron":
                self._cron(now, report)
            elif duty == "backfill":
                report.backfill_runs = self._backfills(now)
            elif duty == "run_triggers":
                report.triggered_runs = self._run_triggers(now)
            elif duty in ("assets", "lineage"):
                self._data_duty(duty, now, report)
            elif duty == "retention":
                if self.retention is not None:
                    report.pruned = self.retention.tick(now)
            else:
                sweep(self.runs, now)
        if self.consumers is not None:
            # Not one duty: each broker trigger has a lease of its own (`consumers`).
            specs = [entry.spec for entry in self._latest()]
            report.consumers = self.consumers.reconcile(
                specs, self.workflows.paused_workflows(), max(now, self.clock.now())
            )
        return report

    def next_wake(self, now: float) -> float:
        """When the next known fire is due, but no later than `max_sleep` from `now` (a
        time already past is a fire that failed or is paused: not a reason to spin)."""
        due = [d for _, d in self._due.values() if d is not None and d > now]
        return min([now + self.max_sleep, *due])

    def run_forever(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, then give the leases up for the next scheduler."""
        failures = 0
        if self.notifications is not None:
            self.notifications.start()
        if self.traces is not None:
            self.traces.start()
        if self.waits is not None:
            self.waits.start()
        if self.sync is not None:
            self.sync.start()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    failures = 0
                except Exception:  # a daemon loop: log, back off, keep going
                    # Any error (a full disk, a database restart) is retried, later and later,
                    # so an outage neither ends the thread nor floods the log.
                    failures += 1
                    log.exception("scheduler.tick_failed", extra={"failures": failures})
                    stop.wait(backoff(self.max_sleep, failures - 1, most=10.0))
                    continue
                now = self.clock.now()
                stop.wait(max(0.0, min(self.next_wake(now) - now, self.max_sleep)))
        finally:
            self.release()

    def release(self) -> None:
        """Give up every lease held (a graceful shutdown hands the duties over at once)."""
        if self.consumers is not None:
            self.consumers.stop_all()
        if self.notifications is not None:
            self.notifications.stop()
        if self.traces is not None:
            self.traces.stop()
        if self.waits is not None:
            self.waits.stop()
        if self.sync is not None:
            self.sync.stop()
        for lease in self._leases.values():
            lease.release()

    def _holds(self, duty: str, now: float) -> bool:
        return not self.use_leases or self._leases[duty].holds(now)

    def _still_holds(self, duty: str) -> bool:
        """Whether `duty`'s lease is still held, renewed when past half its life. A pass can
        outlast the lease (a catch-up of many fires, each a commit, on a busy disk): checked
        between fires, the lease lapses only if one step takes over half of it, rather than
        whenever the pass outlasts it, and a pass stops once another scheduler took it."""
        return self._holds(duty, self.clock.now())

    # ------------------------------------------------------------------ specs

    def _latest(self) -> list[_Entry]:
        """The current version of every workflow (read once per tick); parsed, and its
        schedule keys hashed, once per version."""
        if self._tick_latest is not None:
            return self._tick_latest
        out: list[_Entry] = []
        for name, (version, current_since) in sorted(self.workflows.latest_versions().items()):
            entry = self._entries.get((name, version))
            if entry is None:
                spec = self._spec(name, version)
                keyed = tuple((s, s.key(name)) for s in spec.schedules)
                entry = _Entry(spec, version, current_since, keyed, uses_assets(spec))
                self._entries[(name, version)] = entry
            out.append(entry)
        self._tick_latest = out
        return out

    def _spec(self, name: str, version: str) -> WorkflowSpec:
        spec = self._specs.get((name, version))
        if spec is None:
            spec = self.workflows.get_workflow(name, version).spec
            self._specs[(name, version)] = spec
        return spec

    # ------------------------------------------------------------------ cron

    def _cron(self, now: float, report: TickReport) -> None:
        paused = self.workflows.paused_workflows()
        states = self.triggers.schedule_states()
        owners: dict[str, WorkflowSpec] = {}
        live: set[tuple[str, str]] = set()
        for entry in self._latest():
            for schedule, key in entry.schedules:
                owners[key] = entry.spec
                if entry.spec.name in paused:
                    continue  # the cursor waits: unpausing catches up by the policy
                live.add((entry.version, key))
                state = states.get(key)
                cursor = None if state is None else state.cursor
                try:
                    held = self._fire_due(entry, schedule, key, cursor, now, report.fires)
                except OrchestrionError:  # one broken schedule must not stop the others
                    log.exception("schedule.fire_failed", extra={"schedule": key})
                    continue
                if not held:
                    return  # another scheduler took the lease: the rest of the pass is its
        self._due = {k: v for k, v in self._due.items() if k in live}  # drop old versions
        for key in sorted(self.triggers.queued_fire_keys()):
            owner = owners.get(key)
            if owner is not None and owner.name not in paused:
                run_id = self.triggers.start_queued_fire(owner, key, now=now)
                if run_id is not None:
                    report.dequeued.append(run_id)

    def _fire_due(
        self,
        entry: _Entry,
        schedule: ScheduleSpec,
        key: str,
        cursor: float | None,
        now: float,
        fired: list[FireRecord],
    ) -> bool:
        """Make the schedule's fires due at `now` (appended to `fired`) and move its cursor
        past them; False when the cron lease was lost before they were all made. Each fire
        moves the cursor to its own time in its transaction, so the new holder plans from
        the last one made. The times the plan skipped are recorded with its first fire, so
        a kill after it does not lose them (two plans that start at different fires can
        each record theirs: docs/architecture.md, "Exactly once by unique keys")."""
        spec = entry.spec
        cached = self._due.get((entry.version, key))
        if cached is not None and cached[0] == cursor and (cached[1] is None or cached[1] > now):
            return True  # nothing due yet (or the schedule ended) and nobody moved the cursor
        last = cursor
        if last is None and schedule.start_ts is None:
            last = entry.current_since  # a new schedule fires from when its version became current
        plan = cron.plan_fires(schedule, last, now, key=key)
        if plan.fires and schedule.require_fresh and not self._fresh(spec, schedule, key):
            # Hold the cursor: the fire waits for its inputs and keeps its nominal time;
            # look again next tick.
            self._due[(entry.version, key)] = (cursor, now)
            return True
        # A schedule's first decision records no misses: what a `start` in the past skips
        # came before the schedule existed.
        missed = plan.skipped if cursor is not None else ()
        made: float | None = None  # the latest time this pass fired itself
        for i, nominal in enumerate(plan.fires):
            if not self._still_holds("cron"):
                log.info("scheduler.lease_lost", extra={"duty": "cron", "schedule": key})
                return False
            record = self._fire(spec, schedule, key, nominal, now, missed if i == 0 else ())
            if record is not None:
                made = nominal
                fired.append(record)
                log.info(
                    "schedule.fired",
                    extra={"schedule": key, "nominal": cron.iso(nominal), "state": record.state},
                )
        new_cursor = plan.cursor if cursor is None else max(cursor, plan.cursor)
        # The last fire's transaction moved the cursor to the plan's (a plan's last fire is
        # its cursor): another commit only to say so would cost one per schedule a pass.
        at_cursor = made is not None and made == new_cursor
        if not at_cursor and (cursor is None or new_cursor > cursor):
            # Without fires (catch-up `none` past its grace), the skipped times go here.
            skipped = () if plan.fires else missed
            self.triggers.advance_schedule(key, spec.name, new_cursor, now=now, missed=skipped)
        self._due[(entry.version, key)] = (new_cursor, cron.next_due(schedule, new_cursor, key=key))
        return True

    def _fire(
        self,
        spec: WorkflowSpec,
        schedule: ScheduleSpec,
        key: str,
        nominal: float,
        now: float,
        missed: tuple[float, ...],
    ) -> FireRecord | None:
        error: str | None = None
        try:
            params = resolve_params(spec, cron.fire_params(schedule, key, nominal))
        except (ExpressionError, ParameterError) as exc:
            params, error = {}, str(exc)
        if error is None and self.admission is not None:
            spec, error = self.admission.admit(spec, params, trigger="schedule")
        return self.triggers.fire_schedule(
            spec,
            schedule_key=key,
            nominal=nominal,
            params=params,
            now=now,
            overlap=schedule.overlap,
            error=error,
            missed=missed,
        )

    def _fresh(self, spec: WorkflowSpec, schedule: ScheduleSpec, key: str) -> bool:
        """Whether every asset of the schedule's ``require_fresh`` has an event since the
        schedule's previous fire was made (any event, before its first)."""
        if self.assets is None:
            return True
        previous = self.triggers.list_fires(key, limit=1)
        since = previous[0].created_at if previous else None
        known = {s.asset: s.last_at for s in self.assets.assets.list_assets([spec.namespace])}
        return all(
            key in known and (since is None or known[key] > since) for key in schedule.require_fresh
        )

    # ------------------------------------------------------------------ backfills

    def _backfills(self, now: float) -> list[str]:
        started: list[str] = []
        for backfill in self.triggers.list_backfills(state="running"):
            spec = self._spec(backfill.workflow, backfill.version)
            schedule = next(
                (s for s in spec.schedules if s.key(spec.name) == backfill.schedule_key), None
            )
            if schedule is None:  # cannot happen for a pinned version; do not spin on it
                self.triggers.cancel_backfill(backfill.id, now=now)
                continue
            free = max(0, backfill.max_active - backfill.active)
            begin = backfill.start if backfill.cursor is None else backfill.cursor
            upcoming = [
                t
                for t in cron.fires_between(schedule, begin, backfill.end, free + 2)
                if backfill.cursor is None or t > backfill.cursor
            ]
            try:
                fires = [
                    (t, backfill_params(spec, schedule, backfill.schedule_key, t))
                    for t in upcoming[:free]
                ]
            except (ExpressionError, ParameterError):
                log.exception("backfill.bad_params", extra={"backfill": backfill.id})
                self.triggers.cancel_backfill(backfill.id, now=now)
                continue
            if fires and self.admission is not None:
                admitted = self._admit_backfill(spec, fires)
                if admitted is None:
                    self.triggers.cancel_backfill(backfill.id, now=now)
                    continue
                spec = admitted
            if fires or not upcoming:
                started += self.triggers.pace_backfill(
                    backfill.id, spec, fires, exhausted=not upcoming, now=now
                )
        return started

    def _admit_backfill(
        self, spec: WorkflowSpec, fires: list[tuple[float, dict[str, Any]]]
    ) -> WorkflowSpec | None:
        """The admission policies of a backfill's next steps: the spec they start on (the
        gated version when a policy requires an approval), or None when one denies a step
        (the backfill is then canceled, with the reason in the log)."""
        assert self.admission is not None
        chosen = spec
        for nominal, params in fires:
            admitted, why = self.admission.admit(spec, params, trigger="backfill")
            if why is not None:
                log.warning(
                    "backfill.denied",
                    extra={"workflow": spec.name, "nominal": cron.iso(nominal), "reason": why},
                )
                return None
            if admitted.version != spec.version:
                chosen = admitted
        return chosen

    # ------------------------------------------------------------------ assets

    def _data_duty(self, duty: str, now: float, report: TickReport) -> None:
        """The assets duty (asset triggers, freshness) or the lineage duty (OpenLineage)."""
        if duty == "lineage":
            report.lineage_events = 0 if self.lineage is None else self.lineage.tick(now)
        elif self.assets is not None:
            current = [(e.spec, e.current_since) for e in self._latest() if e.assets]
            if not current:  # most deployments: nothing to read
                return
            paused = self.workflows.paused_workflows()
            report.asset_runs = self.assets.tick(current, paused, now)

    # ------------------------------------------------------------------ run triggers

    def _run_triggers(self, now: float) -> list[str]:
        position = self.triggers.get_cursor(RUN_TRIGGER_CURSOR)
        if position is None:  # first start: react to runs that end from now on
            _, top = self.triggers.finished_runs(-1)
            self.triggers.set_cursor(RUN_TRIGGER_CURSOR, top, now=now)
            return []
        specs = [e.spec for e in self._latest() if any(t.after for t in e.spec.triggers)]
        finished, new_position = self.triggers.finished_runs(position)
        started: list[str] = []
        if specs and finished:
            paused = self.workflows.paused_workflows()
            for item in finished:
                matches = match_run(specs, item.run, item.event_id, paused=paused)
                if self.admission is not None:
                    matches = self.admission.matches(matches)
                if not matches.runs and not matches.errors:
                    continue
                if not self._still_holds("run_triggers"):
                    # The position stays: the new holder reads from it, and what this pass
                    # recorded is found recorded (the event's unique key).
                    log.info("scheduler.lease_lost", extra={"duty": "run_triggers"})
                    return started
                receipt = self.triggers.record_event(
                    "run",
                    f"{item.run.id}@{item.event_id}",
                    f"run.{item.run.state.value}",
                    run_scope(item.run),
                    now=now,
                    runs=matches.runs,
                    errors=matches.errors,
                )
                if not receipt.duplicate:
                    started.extend(receipt.run_ids)
        if new_position != position:
            self.triggers.set_cursor(RUN_TRIGGER_CURSOR, new_position, now=now)
        return started


def backfill_params(
    spec: WorkflowSpec, schedule: ScheduleSpec, key: str, nominal: float
) -> dict[str, Any]:
    """A backfill run's params: the schedule's, filled for `nominal` and validated."""
    return resolve_params(spec, cron.fire_params(schedule, key, nominal))

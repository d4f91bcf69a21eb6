"""The ``notifications`` duty: turn what happened into outbox rows, and send them.

Why a scheduler duty reading the history, not rows written by the transactions that
finish runs and tasks: those transactions are the hot path (claims and finishes are tuned
to a few round trips), and a rule lookup in each would add work to every task for the
sake of a few runs that anyone watches. The history already holds every fact a rule
needs, in order, and the duty reads it after a stored cursor (the ``cursors`` table, like
run triggers), so a crash re-reads at most one pass and the dedupe keys drop what was
taken before. On PostgreSQL the read first waits out every writer of event rows, as run
triggers do (ids are drawn at insert, not at commit).

Sending happens in this loop's own thread, outside any transaction, with a timeout per
send: a receiver that is down costs this thread a timeout, never a run or a cron fire.
Each attempt is recorded (sent, retried with exponential back-off, or failed after
`max_attempts`), with an audit record, by a compare-and-set on the attempts counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrion.clock import Clock
from orchestrion.errors import NotifyError, OrchestrionError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.notification_records import ChannelRecord, DeliveryRecord, RuleRecord
from orchestrion.store.notifications import DeliveryDraft, NotificationStore
from orchestrion.store.reads import ReadStore
from orchestrion.store.triggers import TriggerStore
from orchestrion.store.workflows import WorkflowStore
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.maintenance import PassLoop
from orchestrion.triggers.notify_rules import drafts, fact_of_event, late_fact, late_fact_of_end
from orchestrion.triggers.notify_send import Outbound, send
from orchestrion.triggers.notify_system import consumer_facts, worker_facts

__all__ = ["CURSOR", "Notifications", "PassReport", "SecretOpener", "retry_delay"]

log = logging.getLogger("orchestrion.notifications")

#: The history reader's name in ``cursors``.
CURSOR = "notifications"
#: (namespace, secret name) -> the secret's value.
SecretOpener = Callable[[str, str], str]


@dataclass
class PassReport:
    """What one pass did."""

    enqueued: int = 0
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def retry_delay(attempts: int, base: float, most: float) -> float:
    """The wait after the `attempts`-th failed attempt: `base` doubled per earlier one."""
    return float(min(base * (1 << min(attempts - 1, 30)), most))


class Notifications:
    """One process's share of the duty (under the ``notifications`` lease when given one)."""

    def __init__(
        self,
        store: NotificationStore,
        triggers: TriggerStore,
        workflows: WorkflowStore,
        reads: ReadStore,
        clock: Clock,
        open_secret: SecretOpener,
        *,
        outbound: Outbound | None = None,
        lease: DutyLease | None = None,
        every: float = 1.0,
        retry_base: float = 10.0,
        retry_most: float = 3600.0,
        max_attempts: int = 8,
        down_after: float = 60.0,
        system_every: float = 15.0,
    ) -> None:
        self.store = store
        self.triggers = triggers
        self.workflows = workflows
        self.reads = reads
        self.clock = clock
        self.open_secret = open_secret
        self.outbound = outbound or Outbound()
        self.lease = lease
        self.every = every
        self.retry_base = retry_base
        self.retry_most = retry_most
        self.max_attempts = max_attempts
        #: A worker silent this long is down; workers and consumers are looked at every
        #: `system_every` seconds (the workers table keeps every worker ever started).
        self.down_after = down_after
        self.system_every = system_every
        self._system_at = float("-inf")
        self._specs: dict[tuple[str, str], WorkflowSpec] = {}
        #: Late runs, down workers and consumers this process enqueued already (the
        #: outbox's dedupe key is the real guard; this spares rewriting them each pass).
        self._seen: set[str] = set()
        self._marks: set[str] = set()
        self._loop = PassLoop("notifications", self.pass_once, every, lease)

    # ------------------------------------------------------------------ loop

    def start(self) -> None:
        """Pass every `every` seconds, on a daemon thread."""
        self._loop.start()

    def stop(self) -> None:
        """Stop after the pass in progress (waiting at most 15 s) and free the lease."""
        self._loop.stop()

    def pass_once(self, now: float | None = None) -> PassReport | None:
        """Collect and send once, if this process holds the duty; None if it does not."""
        now = self.clock.now() if now is None else now
        if self.lease is not None and not self.lease.holds(now):
            return None
        report = PassReport()
        report.enqueued = self.collect(now)
        self.deliver(now, report)
        return report

    # ------------------------------------------------------------------ collect

    def collect(self, now: float) -> int:
        """Outbox rows for the history since the cursor and for runs now late."""
        rules = self.store.list_rules()
        if not rules:
            return 0  # nothing to match; a rule only hears of what happens after it exists
        out: list[DeliveryDraft] = []
        self._marks = set()  # remembered in `_seen` once the outbox has them
        position = self.triggers.get_cursor(CURSOR)
        events, new_position = self.store.notable_events(-1 if position is None else position)
        for event in events:
            spec = self._latest(event.workflow)
            if spec is None:
                continue
            out += drafts(_since(rules, event.at), fact_of_event(event, spec))
            late = late_fact_of_end(event, spec)
            if late is not None and f"run.late|{late.subject}" not in self._seen:
                self._marks.add(f"run.late|{late.subject}")
                out += drafts(_since(rules, event.at), late)
        out += self._late_drafts(rules, now)
        out += self._system_drafts(rules, now)
        added = self.store.enqueue(out, now=now)
        self._seen |= self._marks
        if len(self._seen) > 100_000:  # a bound; the outbox's dedupe key still holds
            self._seen.clear()
        if new_position != position:
            self.triggers.set_cursor(CURSOR, new_position, now=now)
        return added

    def _late_drafts(self, rules: list[RuleRecord], now: float) -> list[DeliveryDraft]:
        if not any("run.late" in r.events for r in rules):
            return []
        with_sla = []
        for name, (version, _) in self.workflows.latest_versions().items():
            if self._spec(name, version).sla is not None:
                with_sla.append(name)
        out: list[DeliveryDraft] = []
        for run in self.store.late_candidates(sorted(with_sla)):
            if f"run.late|{run.id}" in self._seen:
                continue
            fact = late_fact(run, self._spec(run.workflow, run.version), now)
            if fact is not None:
                self._marks.add(f"run.late|{run.id}")
                out += drafts(rules, fact)
        return out

    def _system_drafts(self, rules: list[RuleRecord], now: float) -> list[DeliveryDraft]:
        wanted = {e for r in rules for e in r.events} & {"worker.down", "consumer.down"}
        if not wanted or now < self._system_at + self.system_every:
            return []
        self._system_at = now
        facts = []
        if "worker.down" in wanted:
            facts += worker_facts(self.reads.list_workers(), now, self.down_after)
        if "consumer.down" in wanted:
            facts += consumer_facts(self.triggers.list_consumers(), self._latest)
        fresh = [f for f in facts if f"{f.event}|{f.subject}" not in self._seen]
        self._marks.update(f"{f.event}|{f.subject}" for f in fresh)
        return [d for fact in fresh for d in drafts(_since(rules, fact.at), fact)]

    def _latest(self, workflow: str | None) -> WorkflowSpec | None:
        if workflow is None:
            return None
        try:
            return self.workflows.get_workflow(workflow).spec
        except OrchestrionError:  # deleted since: nobody to tell
            return None

    def _spec(self, name: str, version: str) -> WorkflowSpec:
        spec = self._specs.get((name, version))
        if spec is None:
            spec = self._specs[(name, version)] = self.workflows.get_workflow(name, version).spec
        return spec

    # ------------------------------------------------------------------ deliver

    def deliver(self, now: float, report: PassReport | None = None) -> PassReport:
        """Send the deliveries that are due, recording each attempt."""
        report = report or PassReport()
        channels: dict[tuple[str, str], ChannelRecord | None] = {}
        for delivery in self.store.due_deliveries(now):
            key = (delivery.namespace, delivery.channel)
            if key not in channels:
                channels[key] = self.store.get_channel(*key)
            channel = channels[key]
            error: str | None = None
            final = False
            if channel is None:
                error, final = f"channel {key[0]}/{key[1]} does not exist", True
            else:
                try:
                    secret = None
                    if channel.secret is not None:
                        secret = self.open_secret(channel.namespace, channel.secret)
                    send(channel, delivery, secret, now=self.clock.now(), outbound=self.outbound)
                except (NotifyError, OrchestrionError) as exc:
                    error = str(exc)
                except Exception as exc:  # one bad row must not stop the outbox
                    # Not its message: it may quote a channel's secret (a Slack URL).
                    error = f"unexpected {type(exc).__name__} while sending"
                    log.error("notification.send_crashed", extra={"delivery": delivery.id})
            self._record(delivery, error, final, now, report)
        return report

    def _record(
        self, delivery: DeliveryRecord, error: str | None, final: bool, now: float, r: PassReport
    ) -> None:
        attempts = delivery.attempts + 1
        retry_at = None
        if error is not None and not final and attempts < self.max_attempts:
            retry_at = now + retry_delay(attempts, self.retry_base, self.retry_most)
        if not self.store.finish_attempt(delivery, error=error, retry_at=retry_at, now=now):
            return
        extra = {"delivery": delivery.id, "channel": delivery.channel, "attempt": attempts}
        if error is None:
            r.sent.append(delivery.id)
            log.info("notification.sent", extra=extra)
        elif retry_at is not None:
            r.retried.append(delivery.id)
            log.warning("notification.retry", extra={**extra, "error": error})
        else:
            r.failed.append(delivery.id)
            log.error("notification.failed", extra={**extra, "error": error})


def _since(rules: list[RuleRecord], at: float) -> list[RuleRecord]:
    """The rules that existed when something happened (a new rule does not page anyone
    about last month)."""
    return [r for r in rules if r.created_at <= at]

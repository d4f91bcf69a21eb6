"""The broker-trigger duty: one consumer per broker trigger across all schedulers.

Each broker trigger of a current, unpaused workflow has a lease ``broker.<trigger key>``;
the scheduler holding it runs the trigger's consumer in a thread of its own, so a slow
broker never delays cron fires, and triggers spread over schedulers (each takes what is
free). A killed holder's lease lapses within the TTL and another scheduler's next tick
starts the consumer; what the dead one had fetched but not acknowledged the broker
delivers again.

**Exactly one run per message** does not rest on the lease. A message's identity (the
broker's id for it, or the trigger's ``key`` expression, or a digest of its content) is
inserted into the event inbox as ``(broker:<trigger key>, identity)`` in the transaction
that creates its run (`TriggerStore.record_event`), and the message is acknowledged only
after that commit. A consumer killed between commit and ack gets the message again, finds
its inbox row, and acknowledges it without a second run; two consumers of one trigger (a
lapsed leader still running) can only waste work.

A message whose params do not fit the workflow is recorded with the reason (the inbox
row, and a ``trigger.event`` event naming it) and handed to the broker's dead-letter
place; a message the filter rejects is acknowledged and forgotten. Pausing a workflow
stops its consumers (the broker keeps the messages).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrion.brokers.consume import Consumer, Message, open_consumer
from orchestrion.brokers.endpoint import ConnectionResolver
from orchestrion.clock import Clock
from orchestrion.errors import ExpressionError, OrchestrionError
from orchestrion.spec.expressions import compile_expression, whole_template
from orchestrion.spec.model import TriggerSpec, WorkflowSpec
from orchestrion.store.records import ConsumerRecord
from orchestrion.store.triggers import TriggerStore
from orchestrion.triggers.events import Matches, match_message

__all__ = ["BrokerConsumers", "ConsumerState"]

log = logging.getLogger("orchestrion.consumers")

#: Messages fetched per round trip, and how long a fetch waits for the first one.
BATCH = 100
POLL_SECONDS = 0.5
#: Largest body kept with a recorded message (the run gets what the params map).
_KEPT_BODY = 64 * 1024


@dataclass
class ConsumerState:
    """What one trigger's consumer did, for logs, tests and the status pages."""

    key: str
    workflow: str
    running: bool = False
    received: int = 0
    started: int = 0
    duplicates: int = 0
    filtered: int = 0
    dead_lettered: int = 0
    #: At its in-flight limit: not pulling.
    held: bool = False
    last_message_at: float | None = None
    error: str | None = None
    #: Set once the consumer is connected and subscribed (messages sent after this are
    #: seen even by a brand-new consumer group).
    ready: threading.Event = field(default_factory=threading.Event)


class _Running:
    """One consumer thread and what it needs."""

    def __init__(
        self,
        owner: BrokerConsumers,
        spec: WorkflowSpec,
        trigger: TriggerSpec,
        key: str,
        epoch: int,
    ) -> None:
        self.owner = owner
        self.spec = spec
        self.trigger = trigger
        self.key = key
        self.epoch = epoch
        self.expires = 0.0
        self.stop = threading.Event()
        self.state = ConsumerState(key=key, workflow=spec.name)
        self._reported = 0.0
        self.thread = threading.Thread(target=self._run, name=f"consumer:{key}", daemon=True)

    def _run(self) -> None:
        backoff = 0.5
        self.state.running = True
        try:
            while not self.stop.is_set():
                try:
                    self._consume()
                    backoff = 0.5
                except Exception as exc:  # a broker down or refusing: say so, retry later
                    self.state.error = f"{type(exc).__name__}: {exc}"
                    log.warning("consumer.failed", extra={"trigger": self.key, "error": str(exc)})
                    self._report("error", None)
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            self.state.running = False
            self._report("stopped", None)

    def _report(self, state: str, consumer: Consumer | None) -> None:
        """Publish this consumer's state for the consumers page (best effort)."""
        broker = self.trigger.broker
        assert broker is not None
        now = self.owner.clock.now()
        lag = None
        try:
            if consumer is not None:
                lag = consumer.lag()
        except Exception:  # the lag is a nicety: never stop consuming for it
            log.debug("consumer.lag_failed", exc_info=True)
        record = ConsumerRecord(
            key=self.key, workflow=self.spec.name, kind=broker.kind,
            connection=broker.connection, destination=broker.destination,
            holder=self.owner.holder_id, epoch=self.epoch, state=state, lag=lag,
            last_message_at=self.state.last_message_at, error=self.state.error,
        )  # fmt: skip
        try:
            self.owner.triggers.put_consumer(record, now=now)
        except OrchestrionError:
            log.exception("consumer.report_failed", extra={"trigger": self.key})
        self._reported = now

    def _consume(self) -> None:
        broker = self.trigger.broker
        assert broker is not None
        endpoint = self.owner.connections(self.spec.namespace, broker.connection)
        if endpoint.kind != broker.kind:
            raise OrchestrionError(
                f"connection {broker.connection!r} is a {endpoint.kind} connection,"
                f" the trigger reads {broker.kind}"
            )
        consumer = open_consumer(
            endpoint,
            broker,
            _consumer_name(self.spec.name, self.key),
            prefetch=min(BATCH, broker.max_in_flight or BATCH),
            resume=self.state.ready.is_set(),  # connected before: this is a reconnect
        )
        try:
            self.state.error = None
            self.state.ready.set()
            self._report("running", consumer)
            while not self.stop.is_set():
                room = self._room()
                held = room <= 0
                if held != self.state.held or self.owner.clock.now() - self._reported >= 1.0:
                    self.state.held = held
                    self._report("held" if held else "running", consumer)
                if held:  # the broker keeps the messages meanwhile
                    self.stop.wait(POLL_SECONDS)
                    continue
                for message in consumer.fetch(min(BATCH, room), POLL_SECONDS):
                    if self.stop.is_set():
                        return  # unacknowledged: delivered again to the next holder
                    self._handle(consumer, message)
        finally:
            consumer.close()

    def _room(self) -> int:
        """How many more runs this trigger may start now (its in-flight limit)."""
        broker = self.trigger.broker
        assert broker is not None
        if broker.max_in_flight is None:
            return BATCH
        busy = self.owner.triggers.count_unfinished(self.spec.name, f"broker:{self.key}#")
        return broker.max_in_flight - busy

    def _handle(self, consumer: Consumer, message: Message) -> None:
        now = self.owner.clock.now()
        self.state.received += 1
        self.state.last_message_at = now
        scope = message.scope()
        try:
            identity = self._identity(message, scope)
        except ExpressionError as exc:
            identity = message.id or message.content_key()
            self._record(consumer, message, identity, scope, [], [f"key: {exc}"], now)
            return
        origin = f"broker:{self.key}#{identity}"
        matches = match_message(self.spec, self.trigger, scope, origin)
        if self.owner.admit is not None:
            matches = self.owner.admit(matches)
        if not matches.runs and not matches.errors:
            self.state.filtered += 1
            consumer.ack(message)
            return
        self._record(consumer, message, identity, scope, matches.runs, matches.errors, now)

    def _record(
        self,
        consumer: Consumer,
        message: Message,
        identity: str,
        scope: dict[str, Any],
        runs: Any,
        errors: Any,
        now: float,
    ) -> None:
        kept = {**scope, "body": scope["body"][:_KEPT_BODY]}
        if len(scope["body"]) > _KEPT_BODY:
            kept["json"] = None
        receipt = self.owner.triggers.record_event(
            f"broker:{self.key}",
            identity,
            "broker.message",
            kept,
            now=now,
            runs=runs,
            errors=errors,
        )
        if receipt.duplicate:
            self.state.duplicates += 1
        else:
            self.state.started += len(receipt.run_ids)
        if receipt.errors:
            self.state.dead_lettered += 1
            consumer.dead_letter(message, "; ".join(receipt.errors))
        else:
            consumer.ack(message)  # only now: the run is committed

    def _identity(self, message: Message, scope: dict[str, Any]) -> str:
        broker = self.trigger.broker
        assert broker is not None
        if broker.key is not None:
            value = compile_expression(whole_template(broker.key) or broker.key).evaluate(
                {"message": scope}
            )
            if value is None or value == "":
                raise ExpressionError(f"the key {broker.key!r} is empty for this message")
            return str(value)[:500]
        return message.id or message.content_key()


def _consumer_name(workflow: str, key: str) -> str:
    """A name brokers accept for a group, durable or client id, stable per trigger."""
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"orchestrion-{workflow}-{digest}"


class BrokerConsumers:
    """The consumers of the broker triggers this scheduler holds the leases of."""

    def __init__(
        self,
        triggers: TriggerStore,
        connections: ConnectionResolver,
        clock: Clock,
        holder_id: str,
        *,
        lease_ttl: float,
        use_leases: bool = True,
    ) -> None:
        """Messages are recorded through `triggers` (which also holds the leases);
        `connections` opens a trigger's connection."""
        self.triggers = triggers
        self.connections = connections
        self.clock = clock
        self.holder_id = holder_id
        self.lease_ttl = lease_ttl
        self.use_leases = use_leases
        #: The admission policies, applied to the runs a message starts (set by the
        #: scheduler that owns these consumers).
        self.admit: Callable[[Matches], Matches] | None = None
        self._running: dict[str, _Running] = {}

    def states(self) -> dict[str, ConsumerState]:
        """The state of each consumer running here, by trigger key."""
        return {key: r.state for key, r in self._running.items()}

    def reconcile(self, specs: list[WorkflowSpec], paused: set[str], now: float) -> list[str]:
        """Start the consumers of the broker triggers whose leases this scheduler holds (or
        can take), stop the others; the keys running afterwards."""
        wanted: dict[str, tuple[WorkflowSpec, TriggerSpec]] = {}
        for spec in specs:
            if spec.name in paused:
                continue
            for trigger in spec.triggers:
                if trigger.broker is not None:
                    wanted.setdefault(trigger.key(spec.name), (spec, trigger))
        for key in [k for k in self._running if k not in wanted]:
            self._stop(key, release=True)
        for key, (spec, trigger) in wanted.items():
            try:
                self._keep(key, spec, trigger, now)
            except OrchestrionError:
                log.exception("consumer.lease_failed", extra={"trigger": key})
        return sorted(self._running)

    def _keep(self, key: str, spec: WorkflowSpec, trigger: TriggerSpec, now: float) -> None:
        running = self._running.get(key)
        current = (
            running is not None
            and running.thread.is_alive()
            and running.spec.version == spec.version
            and running.trigger == trigger
        )
        if current and running is not None and now < running.expires - self.lease_ttl / 2:
            return  # renewed recently enough: spare the write
        epoch = self._lease(key, now)
        if epoch is None:
            if running is not None:
                self._stop(key, release=False)  # someone else holds it now
            return
        if current and running is not None and running.epoch == epoch:
            running.expires = now + self.lease_ttl
            return
        if running is not None:
            self._stop(key, release=False)
        started = _Running(self, spec, trigger, key, epoch)
        started.expires = now + self.lease_ttl
        self._running[key] = started
        started.thread.start()
        log.info("consumer.started", extra={"trigger": key, "epoch": epoch})

    def _lease(self, key: str, now: float) -> int | None:
        if not self.use_leases:
            return 0
        return self.triggers.acquire_lease(
            f"broker.{key}", self.holder_id, ttl=self.lease_ttl, now=now
        )

    def _stop(self, key: str, *, release: bool) -> None:
        running = self._running.pop(key)
        running.stop.set()
        running.thread.join(timeout=10)
        if release and self.use_leases:
            try:
                self.triggers.release_lease(f"broker.{key}", self.holder_id, running.epoch)
            except OrchestrionError:
                log.exception("consumer.release_failed", extra={"trigger": key})

    def stop_all(self) -> None:
        """Stop every consumer and give its lease up (a graceful hand-over)."""
        for key in list(self._running):
            self._stop(key, release=True)

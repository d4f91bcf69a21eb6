"""`GET /metrics`: the Prometheus text exposition (docs/operating.md).

Two sources, on purpose. What runs, attempts, queues, workers and schedules did is read from
the database at scrape time (`App.reads.metrics`): counters come from durable totals that
every server reads alike, so any number of worker processes and servers agree, and a server
that restarts does not reset them. What this server process itself served (API requests and
their latency) is in-process (`RequestMetrics`): it is per server by nature, and Prometheus
tells servers apart by their ``instance`` label.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrion.store.metric_records import DURATION_BUCKETS, EndedCount, MetricsSnapshot

__all__ = ["CONTENT_TYPE", "RequestMetrics", "may_scrape", "render"]

#: The exposition's media type (text format 0.0.4).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Methods counted by name; any other a client sends is counted as ``other``.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Request latency buckets (seconds) of the API's histogram.
_REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """ASGI middleware counting this server's requests by method, route template and
    status, and timing them. The route is the matched template (``/api/v1/runs/{run_id}``),
    never the raw path, and an unknown method is ``other``, so a client cannot grow the
    number of series."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "orchestrion_api_requests",
            "HTTP requests this server answered.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "orchestrion_api_request_duration_seconds",
            "Time this server took to answer an HTTP request (to the end of its body).",
            ["method", "route"],
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and count it once its response has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            method = method if method in _METHODS else "other"
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - started)


def may_scrape(client: str | None, scrapers: Iterable[str]) -> bool:
    """Is `client` (the request's peer address) one of the configured scrapers?"""
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in scrapers)


def render(
    snapshot: MetricsSnapshot,
    namespaces: Mapping[str, str],
    requests: CollectorRegistry,
    scrape_seconds: float,
) -> bytes:
    """The exposition: the database's snapshot (workflows labelled with their
    `namespaces`) and this server's own request metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FromSnapshot(snapshot, namespaces, scrape_seconds))
    registry.register(_Forward(requests))
    return generate_latest(registry)


class _Forward(Collector):
    """Another registry's metrics, as one collector (the per-process request metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class _FromSnapshot(Collector):
    def __init__(
        self, snapshot: MetricsSnapshot, namespaces: Mapping[str, str], scrape_seconds: float
    ) -> None:
        self.snapshot = snapshot
        self.namespaces = namespaces
        self.scrape_seconds = scrape_seconds

    def _ns(self, workflow: str) -> str:
        # A workflow deleted since its runs ended keeps its counts, under no namespace.
        return self.namespaces.get(workflow, "")

    def collect(self) -> Iterator[Metric]:
        yield from self._ended("run", "orchestrion_runs_finished", "orchestrion_run_duration")
        yield from self._ended(
            "attempt", "orchestrion_task_attempts", "orchestrion_task_attempt_duration"
        )
        yield from self._live()
        yield from self._workers()
        yield from self._schedules()
        yield from self._consumers()

    def _ended(self, family: str, counter: str, histogram: str) -> Iterator[Metric]:
        what = "Runs" if family == "run" else "Task attempts"
        total = CounterMetricFamily(
            counter,
            f"{what} ended, by workflow, namespace and outcome (durable: from the database).",
            labels=["workflow", "namespace", "outcome"],
        )
        durations = HistogramMetricFamily(
            f"{histogram}_seconds",
            f"{what} durations, by workflow, namespace and outcome.",
            labels=["workflow", "namespace", "outcome"],
        )
        for (workflow, outcome), counts in _by_key(self.snapshot.ended, family).items():
            labels = [workflow, self._ns(workflow), outcome]
            total.add_metric(labels, sum(c.n for c in counts.values()))
            durations.add_metric(labels, _buckets(counts), sum(c.seconds for c in counts.values()))
        yield total
        yield durations

    def _live(self) -> Iterator[Metric]:
        snap = self.snapshot
        active = GaugeMetricFamily(
            "orchestrion_runs_active",
            "Unfinished runs, by workflow, namespace and state.",
            labels=["workflow", "namespace", "state"],
        )
        for a in snap.active_runs:
            active.add_metric([a.workflow, self._ns(a.workflow), a.state], a.n)
        depth = GaugeMetricFamily(
            "orchestrion_queue_ready_tasks",
            "Task runs ready to be claimed now, by queue.",
            labels=["queue"],
        )
        age = GaugeMetricFamily(
            "orchestrion_queue_oldest_ready_age_seconds",
            "How long the oldest ready task run of a queue has waited to be claimed.",
            labels=["queue"],
        )
        for q in snap.queues:
            depth.add_metric([q.queue], q.ready)
            age.add_metric([q.queue], max(0.0, snap.taken_at - q.oldest_ready_at))
        yield from (active, depth, age)
        yield GaugeMetricFamily(
            "orchestrion_database_roundtrip_seconds",
            "Time of a trivial statement's round trip to the database, at this scrape.",
            value=snap.db_seconds,
        )
        yield GaugeMetricFamily(
            "orchestrion_metrics_read_seconds",
            "Time this scrape took to read its figures from the database.",
            value=self.scrape_seconds,
        )

    def _workers(self) -> Iterator[Metric]:
        snap = self.snapshot
        running = GaugeMetricFamily(
            "orchestrion_worker_running_attempts",
            "Attempts a worker runs now (leases it holds).",
            labels=["worker", "host"],
        )
        free = GaugeMetricFamily(
            "orchestrion_worker_free_slots",
            "Attempts a worker could start now: its slots less what it runs.",
            labels=["worker", "host"],
        )
        for w in snap.workers:
            busy = snap.running.get(w.id, 0)
            running.add_metric([w.id, w.host], busy)
            if w.slots is not None:
                free.add_metric([w.id, w.host], max(0, w.slots - busy))
        yield running
        yield free

    def _schedules(self) -> Iterator[Metric]:
        snap = self.snapshot
        lag = GaugeMetricFamily(
            "orchestrion_scheduler_lag_seconds",
            "Now minus the nominal time of a schedule's latest fire.",
            labels=["schedule", "workflow"],
        )
        delay = GaugeMetricFamily(
            "orchestrion_schedule_fire_delay_seconds",
            "How late a schedule's latest fire was decided after its nominal time.",
            labels=["schedule", "workflow"],
        )
        for s in snap.schedules:
            if s.last_fire is None:
                continue
            lag.add_metric([s.schedule_key, s.workflow], max(0.0, snap.taken_at - s.last_fire))
            if s.fired_at is not None:
                delay.add_metric([s.schedule_key, s.workflow], max(0.0, s.fired_at - s.last_fire))
        yield lag
        yield delay

    def _consumers(self) -> Iterator[Metric]:
        labels = ["workflow", "namespace", "kind", "destination"]
        lag = GaugeMetricFamily(
            "orchestrion_broker_consumer_lag_messages",
            "Messages waiting at the broker for a broker trigger's consumer, where the broker"
            " says (Redis group lag, RabbitMQ ready messages, NATS num_pending; never MQTT).",
            labels=labels,
        )
        dead = GaugeMetricFamily(
            "orchestrion_broker_consumer_dead_lettered_messages",
            "Messages a broker trigger dead-lettered (those its event inbox still holds).",
            labels=labels,
        )
        up = GaugeMetricFamily(
            "orchestrion_broker_consumer_running",
            "1 while a broker trigger's consumer runs (or holds at its in-flight limit),"
            " 0 when it failed or stopped.",
            labels=labels,
        )
        for c in self.snapshot.consumers:
            values = [c.workflow, self._ns(c.workflow), c.kind, c.destination]
            if c.lag is not None:
                lag.add_metric(values, c.lag)
            dead.add_metric(values, c.dead_lettered)
            up.add_metric(values, 1 if c.state in ("running", "held") else 0)
        yield from (lag, dead, up)


def _by_key(
    ended: Iterable[EndedCount], family: str
) -> dict[tuple[str, str], dict[int, EndedCount]]:
    out: dict[tuple[str, str], dict[int, EndedCount]] = {}
    for e in ended:
        if e.family == family:
            out.setdefault((e.workflow, e.outcome), {})[e.bucket] = e
    return dict(sorted(out.items()))


def _buckets(counts: Mapping[int, EndedCount]) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs over `DURATION_BUCKETS` and +Inf."""
    out: list[tuple[str, float]] = []
    seen = 0
    for i, bound in enumerate((*DURATION_BUCKETS, float("inf"))):
        found = counts.get(i)
        seen += found.n if found else 0
        out.append(("+Inf" if bound == float("inf") else repr(bound), seen))
    return out

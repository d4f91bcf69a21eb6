"""Every value the store takes or returns, defined once: rows as frozen records, what
workers report, what triggers ask for, the security tables' rows and the read models.

Pure: stdlib, `orchestrion.spec.model` and `orchestrion.states` only, so that the role
protocols (`store/runs.py`, `store/triggers.py`, ...) and every edge can import a record
without loading an implementation. Role bindings travel as ``{namespace: role label}``
(plain strings): the store knows nothing of what a role may do;
`orchestrion.auth.principals` decides that.

Over 400 lines on purpose: one definition per record, all in one place, is the point
(issue 13, "one definition per record"); split by role, the shapes would scatter again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState, TaskState

__all__ = [
    "DURATION_BUCKETS",
    "ActiveCount",
    "AttemptRecord",
    "AuditEntry",
    "AuditFilter",
    "AuditRecord",
    "BackfillRecord",
    "Claim",
    "ConnectionRecord",
    "ConsumerRecord",
    "EndedCount",
    "EventReceipt",
    "EventRecord",
    "FinishResult",
    "FinishedRun",
    "FireRecord",
    "LogLine",
    "LogRecord",
    "MetricsSnapshot",
    "Outcome",
    "QueueDepth",
    "QueueLimit",
    "Replay",
    "RunFilter",
    "RunMark",
    "RunRecord",
    "RunRequest",
    "ScheduleLag",
    "ScheduleState",
    "SealedRow",
    "SecretMeta",
    "SessionRecord",
    "TaskRunRecord",
    "TokenRecord",
    "TraceLineage",
    "UserRecord",
    "WorkerRecord",
    "WorkflowRecord",
]


# ------------------------------------------------------------ workflows, runs, workers


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRecord:
    """One registered version of a workflow: its spec (a version never changes) and the
    file it was registered from."""

    name: str
    version: str
    spec: WorkflowSpec
    source: str | None
    created_at: float

    @property
    def namespace(self) -> str:
        """The namespace that roles on this workflow are checked against."""
        return self.spec.namespace


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One execution of one workflow version: its state, parameters, what started it (a
    trigger, an idempotency key, a parent task run) and, once finished, its result or error."""

    id: str
    workflow: str
    version: str
    state: RunState
    params: dict[str, Any]
    priority: int
    trigger: str
    idempotency_key: str | None
    parent_task_run_id: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    deadline: float | None
    result: Any
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRunRecord:
    """One task of a run (or one item of a mapped task, or an undo step): its state, queue,
    attempts so far and current lease."""

    id: int
    run_id: str
    task_name: str
    #: -1 for a task that is not an item of a mapped task.
    map_index: int
    #: "task", "group" (a mapped task's parent), "item" (one mapped element) or "undo".
    kind: str
    state: TaskState
    queue: str
    priority: int
    attempts: int
    ready_at: float
    result: Any
    error: str | None
    started_at: float | None
    finished_at: float | None
    lease_owner: str | None
    lease_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One try of a task run by one worker under one lease epoch, and how it ended."""

    id: int
    task_run_id: int
    run_id: str
    number: int
    epoch: int
    worker: str
    started_at: float
    finished_at: float | None
    #: None while running; then succeeded, failed, skipped, waiting, lost, canceled, superseded.
    outcome: str | None
    error: str | None
    error_type: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One row of the history: a state change (from, to), a trigger or a user's action,
    with its data."""

    id: int
    run_id: str | None
    task_run_id: int | None
    at: float
    kind: str
    from_state: str | None
    to_state: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    """A line an attempt wrote to stdout or stderr, as its worker reports it."""

    run_id: str
    task_run_id: int
    attempt: int
    at: float
    stream: str
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """A stored log line, named by its task (``name[3]`` for an item of a mapped task)."""

    id: int
    run_id: str
    task_run_id: int
    task_name: str
    attempt: int
    at: float
    stream: str
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRecord:
    """A worker as it registered: where it runs, the queues it claims from, its labels,
    and its last heartbeat."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    started_at: float
    heartbeat_at: float
    state: str
    #: What it offers for routing (``--label gpu=a100``): tasks' ``requires`` match these.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: How many attempts it runs at once (None: a worker registered before 0015).
    slots: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A task run handed to one worker under a lease; everything needed to execute it."""

    task_run_id: int
    run_id: str
    workflow: str
    version: str
    task_name: str
    kind: str
    map_index: int
    attempt: int
    epoch: int
    params: dict[str, Any]
    #: Results of the task's upstream tasks, by task name (a mapped task's result is a list).
    upstream: dict[str, Any]
    #: The element of the mapped list, for an item of a mapped task.
    item: Any = None
    #: For an undo step: the result of the task it undoes.
    undo_of_result: Any = None

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this task run (``<run id>/<task>[<item>]``): task
        code uses it to make its external effects happen once."""
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.run_id}/{self.task_name}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a worker reports for one attempt."""

    task_run_id: int
    epoch: int
    status: Literal["succeeded", "failed", "skipped", "canceled"]
    result: Any = None
    error: str | None = None
    #: The exception's type and its bases, qualified (``builtins.ValueError``), for `retry_on`.
    error_types: tuple[str, ...] = ()
    traceback: str | None = None
    #: True for a timeout: retried like any failure, but named as such in the history.
    timed_out: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishResult:
    """What reporting a batch of outcomes did, and how much work it made ready."""

    #: Task run ids whose outcome was recorded.
    applied: tuple[int, ...] = ()
    #: Task run ids whose outcome came too late (lease lost or run canceled): kept as superseded.
    superseded: tuple[int, ...] = ()
    #: How many task runs became ready as a consequence (used to wake workers).
    newly_ready: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    """Which runs a listing returns, newest first."""

    workflow: str | None = None
    state: RunState | None = None
    limit: int = 50
    #: Cursor: return runs created strictly before this run id (ids sort by creation).
    before: str | None = None
    #: Only runs of these workflows (a principal's visible ones); None: of any workflow.
    workflows: frozenset[str] | None = None


# ------------------------------------------------------------ triggers


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleState:
    """How far a schedule has been decided (its cursor), and its last fire."""

    schedule_key: str
    workflow: str
    #: Every nominal time at or before this was decided (fired or skipped by policy).
    cursor: float
    last_fire: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FireRecord:
    """One decided (schedule, nominal time): there is exactly one per pair, however many
    schedulers or restarts tried to fire it."""

    id: int
    schedule_key: str
    workflow: str
    nominal: float
    #: started, skipped (overlap), queued (behind the previous run) or failed (bad params).
    state: str
    run_id: str | None
    params: dict[str, Any]
    error: str | None
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A run that a trigger asks for; `idempotency_key` makes asking twice harmless."""

    spec: WorkflowSpec
    params: dict[str, Any]
    trigger: str
    idempotency_key: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Replay:
    """A received webhook delivery's replay key (a digest of what its signature covers),
    remembered until `until`: a second delivery of it is recorded as a duplicate of the
    first, whatever event id it claims."""

    key: str
    until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class EventReceipt:
    """What recording a received event did: the runs it started, or nothing for a
    duplicate (it reports what the first delivery started)."""

    source: str
    event_id: str
    #: True when this (source, event id) had been received before: nothing was started.
    duplicate: bool
    run_ids: tuple[str, ...]
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedRun:
    """A run in the state it ended in, at its position in the history (what run triggers
    follow)."""

    event_id: int
    run: RunRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillRecord:
    """Runs of a schedule's past nominal times within a range, created a few at a time
    (at most `max_active` unfinished at once)."""

    id: str
    workflow: str
    version: str
    schedule_key: str
    start: float
    end: float
    max_active: int
    priority: int
    #: running, completed, canceled (or dry_run for a plan that was not recorded).
    state: str
    total: int
    #: Runs created so far.
    created: int
    cursor: float | None
    #: Run state -> how many of the backfill's runs are in it.
    counts: dict[str, int]
    created_at: float
    finished_at: float | None

    @property
    def active(self) -> int:
        """How many of its runs are unfinished: they count against `max_active`."""
        return sum(n for state, n in self.counts.items() if not RunState(state).finished)


# ------------------------------------------------------------ accounts (security tables)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRecord:
    """A user of the UI and the API: a password hash, role bindings, and the epoch that
    ends every session opened before a change."""

    id: str
    name: str
    password_hash: str
    bindings: Mapping[str, str]
    disabled: bool
    #: Bumped by every password or role change; sessions made under an older epoch are dead.
    auth_epoch: int
    created_at: float
    updated_at: float

    def __repr__(self) -> str:  # the hash stays out of logs and tracebacks
        return f"UserRecord(id={self.id!r}, name={self.name!r}, bindings={dict(self.bindings)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    """An API token: only its hash is kept, with its bindings and when it expires or was
    revoked."""

    id: str
    name: str
    token_hash: str
    bindings: Mapping[str, str]
    created_by: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def __repr__(self) -> str:
        return f"TokenRecord(id={self.id!r}, name={self.name!r}, bindings={dict(self.bindings)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A UI session: the hash of its id, its CSRF token, and the user's auth epoch when it
    was opened (a later password or role change ends it)."""

    id_hash: str
    user_id: str
    csrf: str
    auth_epoch: int
    created_at: float
    expires_at: float
    revoked_at: float | None

    def __repr__(self) -> str:
        return f"SessionRecord(user_id={self.user_id!r}, expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One audit record to append: who did what to which object, and how it ended."""

    at: float
    actor: str
    #: user, token, system (scheduler, webhook), cli (a local command), anonymous.
    actor_kind: str
    action: str
    object: str
    namespace: str | None = None
    #: The request's parameters with secrets masked (the caller masks).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: ok, denied, failed, error.
    outcome: str = "ok"
    detail: str | None = None
    request_id: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord(AuditEntry):
    """An audit entry as stored; its id orders the log."""

    id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """Which audit records a listing returns, newest first."""

    actor: str | None = None
    action: str | None = None
    namespace: str | None = None
    outcome: str | None = None
    since: float | None = None
    #: Only records with an id below this (cursor paging, newest first).
    before: int | None = None
    limit: int = 100


# ------------------------------------------------------------ secrets (sealed values only)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretMeta:
    """What may be shown of a secret: never its value."""

    namespace: str
    name: str
    key_id: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedRow:
    """A secret as stored: which master key sealed it, the nonce, ciphertext plus GCM tag."""

    namespace: str
    name: str
    key_id: str
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:  # the ciphertext is harmless, but keeps logs short
        return f"SealedRow({self.namespace}/{self.name}, key_id={self.key_id!r})"


# ------------------------------------------------------------ broker connections


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionRecord:
    """A named broker connection of a namespace. It holds no credential: `password_secret`
    names a secret of the same namespace, opened only where the connection is made."""

    namespace: str
    name: str
    #: ``redis``, ``rabbitmq``, ``nats`` or ``mqtt``.
    kind: str
    #: Where the broker is, without a password (``amqp://host:5672/vhost``).
    url: str
    username: str | None = None
    #: The secret (same namespace) holding the password or token.
    password_secret: str | None = None
    #: TLS options: ``enabled``, ``ca_file``, ``cert_file``, ``key_file``, ``insecure``.
    tls: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerRecord:
    """A broker trigger's consumer as its scheduler last reported it, with what the inbox
    says of its messages."""

    key: str
    workflow: str
    kind: str
    connection: str
    destination: str
    #: The scheduler running it, and the epoch of its lease.
    holder: str
    epoch: int
    #: ``running``, ``held`` (at its in-flight limit), ``error`` or ``stopped``.
    state: str
    #: Messages waiting at the broker, where the broker says (None: unknown).
    lag: int | None = None
    last_message_at: float | None = None
    error: str | None = None
    updated_at: float = 0.0
    #: Messages recorded (each started a run or was dead-lettered).
    received: int = 0
    dead_lettered: int = 0
    #: Why the latest dead-lettered message was.
    last_dead_letter: str | None = None


# ------------------------------------------------------------ read models


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMark:
    """Just enough of a run to draw it as a coloured mark in a list: no params, no result
    (which may be large), so listing the last runs of 500 workflows stays cheap."""

    id: str
    workflow: str
    state: RunState
    created_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLimit:
    """A queue's limit, and how many of its task runs hold an unexpired lease now."""

    queue: str
    max_running: int
    running: int
    updated_at: float


# ------------------------------------------------------------------ metrics (docs/operating.md)

#: Upper bounds (seconds) of the duration histograms' buckets; bucket ``len(...)`` is +Inf.
#: Durable totals are kept per bucket index: change these and old totals keep their old
#: meaning, so only ever append a bound.
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class EndedCount:
    """How many runs or attempts of a workflow ended with one outcome in one duration
    bucket (an index into `DURATION_BUCKETS`), and their total seconds: ever, from the
    durable totals plus the deltas not yet folded into them."""

    #: ``run`` or ``attempt``.
    family: str
    workflow: str
    outcome: str
    bucket: int
    n: int
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveCount:
    """How many runs of a workflow are in one unfinished state now."""

    workflow: str
    state: str
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueDepth:
    """A queue's task runs ready to be claimed now, and when the oldest became ready."""

    queue: str
    ready: int
    oldest_ready_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleLag:
    """A schedule's latest fire: its nominal time and when it was decided (None: unknown)."""

    schedule_key: str
    workflow: str
    last_fire: float | None
    fired_at: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSnapshot:
    """What a scrape reports from the database, read by a bounded number of indexed
    queries (none scans the run or task run history)."""

    taken_at: float
    ended: tuple[EndedCount, ...]
    active_runs: tuple[ActiveCount, ...]
    queues: tuple[QueueDepth, ...]
    #: Worker id -> attempts it runs now (leases held).
    running: Mapping[str, int]
    #: Workers registered as running, with a recent heartbeat.
    workers: tuple[WorkerRecord, ...]
    schedules: tuple[ScheduleLag, ...]
    #: How long a trivial statement took (the database round trip), in seconds.
    db_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLineage:
    """Where a run sits in its trace (docs/operating.md): the run, the top-level run whose
    id names the trace, and for a child run the parent task run (its run and current
    lease epoch) whose attempt started it."""

    run: RunRecord
    root_run_id: str
    parent_run_id: str | None = None
    parent_task_run_id: int | None = None
    parent_epoch: int | None = None

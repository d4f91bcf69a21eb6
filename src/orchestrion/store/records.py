"""Every value the store takes or returns, defined once: rows as frozen records, what
workers report, what triggers ask for, the security tables' rows and the read models.

Pure: stdlib and `orchestrion.states` only (`orchestrion.spec.model` for type checkers), so
that the role protocols (`store/runs.py`, `store/triggers.py`, ...) and every edge can
import a record without loading an implementation, or pydantic. Role bindings travel as
``{namespace: role label}`` (plain strings): the store knows nothing of what a role may do;
`orchestrion.auth.principals` decides that.

Over 400 lines on purpose: one definition per record, all in one place, is the point
(issue 13, "one definition per record"); split by role, the shapes would scatter again.
Self-contained groups stand beside it: `broker_records` and `retention_records`
(re-exported here) and the metrics read model, `metric_records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from orchestrion.states import RunState, TaskState
from orchestrion.store.artifact_records import ArtifactRecord
from orchestrion.store.broker_records import ConnectionRecord, ConsumerRecord
from orchestrion.store.cache_records import CacheEntry, CacheKey, CacheLookup, CacheNote
from orchestrion.store.objects import ObjectRef
from orchestrion.store.record import Record, field
from orchestrion.store.retention_records import (
    DEFAULT_NAMESPACE,
    PruneBatch,
    PruneCounts,
    RetentionPolicy,
)

if TYPE_CHECKING:
    # For type checkers only: the spec brings its models and expressions, which a process
    # that reads runs without defining workflows (a client, a remote CLI command) does not
    # need. `typing.get_type_hints` of a record that holds a spec resolves it where the
    # store builds its readers (`sql/rows.py`).
    from orchestrion.spec.model import WorkflowSpec

__all__ = [
    "DEFAULT_NAMESPACE",
    "AttemptRecord",
    "AuditEntry",
    "AuditFilter",
    "AuditRecord",
    "BackfillRecord",
    "CacheEntry",
    "CacheKey",
    "CacheLookup",
    "CacheNote",
    "Claim",
    "ConnectionRecord",
    "ConsumerRecord",
    "EventReceipt",
    "EventRecord",
    "FinishResult",
    "FinishedRun",
    "FireRecord",
    "LogLine",
    "LogRecord",
    "Outcome",
    "Produced",
    "PruneBatch",
    "PruneCounts",
    "QueueLimit",
    "Replay",
    "RetentionPolicy",
    "RunFilter",
    "RunMark",
    "RunRecord",
    "RunRequest",
    "ScheduleState",
    "SealedRow",
    "SecretMeta",
    "SessionRecord",
    "TaskRunRecord",
    "TokenRecord",
    "UserRecord",
    "WorkerRecord",
    "WorkflowRecord",
]


# ------------------------------------------------------------ workflows, runs, workers


class WorkflowRecord(Record, frozen=True, kw_only=True):
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


class RunRecord(Record, frozen=True, kw_only=True):
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
    #: Marked "keep" (retention): never pruned, nor is any run of its family.
    keep: bool = False


class TaskRunRecord(Record, frozen=True, kw_only=True):
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
    #: Succeeded from the cache: the run and task run whose result it reused.
    cache_run_id: str | None = None
    cache_task_run_id: int | None = None


class AttemptRecord(Record, frozen=True, kw_only=True):
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


class EventRecord(Record, frozen=True, kw_only=True):
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


class LogLine(Record, frozen=True, kw_only=True):
    """A line an attempt wrote to stdout or stderr, as its worker reports it."""

    run_id: str
    task_run_id: int
    attempt: int
    at: float
    stream: str
    line: str


class LogRecord(Record, frozen=True, kw_only=True):
    """A stored log line, named by its task (``name[3]`` for an item of a mapped task)."""

    id: int
    run_id: str
    task_run_id: int
    task_name: str
    attempt: int
    at: float
    stream: str
    line: str


class WorkerRecord(Record, frozen=True, kw_only=True):
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


class Claim(Record, frozen=True, kw_only=True):
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
    #: The upstream results the task reads (`WorkflowSpec.results_read`), by task name (a
    #: mapped task's result is a list).
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


class Produced(Record, frozen=True):
    """One asset a succeeded attempt updated, as its worker rendered it: recorded as an
    asset event with the finish (`orchestrion.store.sql.assets`)."""

    key: str
    partition: str | None = None
    metadata: dict[str, Any] | None = None


class Outcome(Record, frozen=True, kw_only=True):
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
    #: The object `result` refers to when the value went to the object store (its row
    #: lets retention delete it); None for a result kept in the database.
    stored: ObjectRef | None = None
    #: What the attempt published (`orchestrion.artifact`).
    artifacts: tuple[ArtifactRecord, ...] = ()
    #: A cached task's: the entry this outcome reads or writes (None: not cached).
    cache: CacheNote | None = None
    #: The assets a success updated (empty for a task that declares none: such a finish
    #: pays nothing for assets).
    assets: tuple[Produced, ...] = ()


class FinishResult(Record, frozen=True, kw_only=True):
    """What reporting a batch of outcomes did, and how much work it made ready."""

    #: Task run ids whose outcome was recorded.
    applied: tuple[int, ...] = ()
    #: Task run ids whose outcome came too late (lease lost or run canceled): kept as superseded.
    superseded: tuple[int, ...] = ()
    #: How many task runs became ready as a consequence (used to wake workers).
    newly_ready: int = 0


class RunFilter(Record, frozen=True, kw_only=True):
    """Which runs a listing returns, newest first."""

    workflow: str | None = None
    state: RunState | None = None
    limit: int = 50
    #: Cursor: return runs created strictly before this run id (ids sort by creation).
    before: str | None = None
    #: Only runs of these workflows (a principal's visible ones); None: of any workflow.
    workflows: frozenset[str] | None = None


# ------------------------------------------------------------ triggers


class ScheduleState(Record, frozen=True, kw_only=True):
    """How far a schedule has been decided (its cursor), and its last fire."""

    schedule_key: str
    workflow: str
    #: Every nominal time at or before this was decided (fired or skipped by policy).
    cursor: float
    last_fire: float | None


class FireRecord(Record, frozen=True, kw_only=True):
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


class RunRequest(Record, frozen=True, kw_only=True):
    """A run that a trigger asks for; `idempotency_key` makes asking twice harmless."""

    spec: WorkflowSpec
    params: dict[str, Any]
    trigger: str
    idempotency_key: str
    priority: int = 0


class Replay(Record, frozen=True):
    """A received webhook delivery's replay key (a digest of what its signature covers),
    remembered until `until`: a second delivery of it is recorded as a duplicate of the
    first, whatever event id it claims."""

    key: str
    until: float


class EventReceipt(Record, frozen=True, kw_only=True):
    """What recording a received event did: the runs it started, or nothing for a
    duplicate (it reports what the first delivery started)."""

    source: str
    event_id: str
    #: True when this (source, event id) had been received before: nothing was started.
    duplicate: bool
    run_ids: tuple[str, ...]
    errors: tuple[str, ...] = ()


class FinishedRun(Record, frozen=True, kw_only=True):
    """A run in the state it ended in, at its position in the history (what run triggers
    follow)."""

    event_id: int
    run: RunRecord


class BackfillRecord(Record, frozen=True, kw_only=True):
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


class UserRecord(Record, frozen=True, kw_only=True):
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


class TokenRecord(Record, frozen=True, kw_only=True):
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


class SessionRecord(Record, frozen=True, kw_only=True):
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


class AuditEntry(Record, frozen=True, kw_only=True):
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


class AuditRecord(AuditEntry, frozen=True, kw_only=True):
    """An audit entry as stored; its id orders the log."""

    id: int


class AuditFilter(Record, frozen=True, kw_only=True):
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


class SecretMeta(Record, frozen=True, kw_only=True):
    """What may be shown of a secret: never its value."""

    namespace: str
    name: str
    key_id: str
    created_at: float
    updated_at: float


class SealedRow(Record, frozen=True, kw_only=True):
    """A secret as stored: which master key sealed it, the nonce, ciphertext plus GCM tag."""

    namespace: str
    name: str
    key_id: str
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:  # the ciphertext is harmless, but keeps logs short
        return f"SealedRow({self.namespace}/{self.name}, key_id={self.key_id!r})"


# ------------------------------------------------------------ read models


class RunMark(Record, frozen=True, kw_only=True):
    """Just enough of a run to draw it as a coloured mark in a list: no params, no result
    (which may be large), so listing the last runs of 500 workflows stays cheap."""

    id: str
    workflow: str
    state: RunState
    created_at: float
    finished_at: float | None


class QueueLimit(Record, frozen=True, kw_only=True):
    """A queue's limit, and how many of its task runs hold an unexpired lease now."""

    queue: str
    max_running: int
    running: int
    updated_at: float

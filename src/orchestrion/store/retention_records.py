"""The records of retention (issue 16, part 4): a namespace's policy and what a prune
removed. Pure, like `orchestrion.store.records`, which re-exports them."""

from __future__ import annotations

from orchestrion.store.record import Record

__all__ = ["DEFAULT_NAMESPACE", "PruneBatch", "PruneCounts", "RetentionPolicy"]

#: The policy row that applies to every namespace without a row of its own.
DEFAULT_NAMESPACE = "*"


class RetentionPolicy(Record, frozen=True, kw_only=True):
    """How long one namespace keeps what its runs leave behind. A rule left None is off:
    a policy with only `logs_days` prunes log lines and never a run."""

    #: The namespace, or ``*``: every namespace without a policy of its own.
    namespace: str
    #: Finished runs older than this (by their end) go, with every row they own.
    runs_days: float | None = None
    #: Log lines of finished runs that ended longer ago than this go (the runs stay).
    logs_days: float | None = None
    #: The newest N runs of each workflow stay, whatever their age.
    keep_last: int | None = None
    #: Audit records older than this are exported to `audit_export_dir`, then deleted.
    audit_days: float | None = None
    #: The folder that receives the audit export files (JSON lines, owner-only).
    audit_export_dir: str | None = None
    updated_at: float = 0.0


class PruneCounts(Record, frozen=True, kw_only=True):
    """Rows a prune removed (or, for a dry run, would remove), by table."""

    runs: int = 0
    task_runs: int = 0
    attempts: int = 0
    events: int = 0
    logs: int = 0
    fires: int = 0
    #: Received events (webhooks, API events, broker messages) the inbox held.
    inbox: int = 0
    audit: int = 0
    #: Task cache entries: expired, or whose source run went (``docs/caching.md``).
    cache: int = 0
    #: Rows of waiting steps (`task_waits`) and signals sent to the runs (`run_signals`).
    waits: int = 0

    def __add__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(
            **{n: getattr(self, n) + getattr(other, n) for n in self.__struct_fields__}
        )

    @property
    def total(self) -> int:
        """Every row counted."""
        return sum(getattr(self, n) for n in self.__struct_fields__)

    def as_dict(self) -> dict[str, int]:
        """The counts by table (what event rows and the CLI's JSON carry)."""
        return {n: getattr(self, n) for n in self.__struct_fields__}


class PruneBatch(Record, frozen=True, kw_only=True):
    """What one batch of a runs prune removed, and where the next batch starts."""

    counts: PruneCounts
    #: (created_at, id) of the last candidate this batch looked at, passed over or not;
    #: None when it looked at fewer than its limit (nothing older is left to look at).
    next: tuple[float, str] | None = None
    #: The URIs of the objects (large results, file artifacts) of the runs deleted: the
    #: caller deletes them from the object store once the rows are gone.
    objects: tuple[str, ...] = ()

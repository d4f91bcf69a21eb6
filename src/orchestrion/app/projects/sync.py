"""Git sync: follow a repository's branch or tag and apply the project file in it.

One look at a source (`sync_once`) fetches the ref into a bare cache, and when it points
at a commit that has no result yet, reads that commit's files, loads and validates the
project, and applies it as ``orchestrion apply`` does, recording the commit on the
workflow versions it deploys. A commit that fails (invalid YAML, a cycle, a reference that
does not resolve, a failed apply, which is undone) is recorded as failed with its error,
notified (``sync.failed`` rules of the namespace) and not applied; the duty does not try
it again, and applies the next commit that is good. A force-push is nothing special: the
ref points at another commit, which is looked at like any new one.

The ``sync`` duty (`SyncDuty`) runs `sync_once` for every configured source each pass,
under its lease, on the scheduler's `PassLoop`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrion.app.audit import append_audit
from orchestrion.app.projects.git import Repo
from orchestrion.errors import IllegalTransition, OrchestrionError, StoreError
from orchestrion.spec.project import parse_project
from orchestrion.spec.project_export import read_project_isolated
from orchestrion.store.project_records import SyncResult, SyncSource
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.maintenance import PassLoop
from orchestrion.triggers.notify_rules import Fact, drafts

if TYPE_CHECKING:
    from orchestrion.app import App

__all__ = ["SyncDuty", "default_cache", "sync_once"]

log = logging.getLogger("orchestrion.sync")


def default_cache() -> Path:
    """Where fetched repositories are kept (``ORCHESTRION_SYNC_CACHE``, or a folder in
    the system's temporary directory)."""
    configured = os.environ.get("ORCHESTRION_SYNC_CACHE")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"orchestrion-sync-{os.getuid()}"


def sync_once(
    app: App,
    source: SyncSource,
    *,
    cache: Path | None = None,
    git: str = "git",
    force: bool = False,
) -> SyncResult | None:
    """Look at one source: the result recorded for a new commit, None when its commit
    has a result already (unless `force`). A fetch that fails raises `GitError` and
    records nothing (the next look tries again)."""
    secret = None
    if source.secret is not None:
        secret_ns, _, name = source.secret.partition("/")
        secret = app.secrets.resolve_secrets(secret_ns, [name])[name].reveal()
    repo = Repo(source.repo, cache or default_cache(), git=git, secret=secret)
    commit = repo.fetch(source.ref_kind, source.ref)
    seen = app.store.projects.sync_results(source.name, limit=1)
    if seen and seen[0].commit_sha == commit and not force:
        return None
    namespace: str | None = None
    with tempfile.TemporaryDirectory(prefix="orchestrion-sync-") as tmp:
        try:
            repo.extract(commit, Path(tmp))
            file = Path(tmp) / source.project_path
            with contextlib.suppress(OrchestrionError, OSError):  # the load reports it
                namespace = parse_project(file.read_bytes(), source=source.project_path).namespace
            # In a child process: the scheduler never imports workflow code.
            project = read_project_isolated(file, source=f"git:{source.name}@{commit[:12]}")
            done = app.projects.apply(project, actor=f"sync:{source.name}", commit=commit)
        except (OrchestrionError, OSError) as exc:
            if _transient(exc):
                raise  # another apply held the namespace, or the store failed: try again
            error = _relative(str(exc), tmp)
            result = SyncResult(
                source=source.name, commit_sha=commit, outcome="failed", error=error
            )
            _notify(app, source, namespace, commit, error)
        else:
            summary = {**done.plan.summary(), "namespace": done.plan.namespace}
            _audit(app, source, commit, done.plan.namespace, done.outcome, summary)
            result = SyncResult(
                source=source.name, commit_sha=commit, outcome=done.outcome, summary=summary
            )
    result_id = app.store.projects.record_sync(result, now=app.clock.now())
    log.info(
        "sync.commit", extra={"source": source.name, "commit": commit, "outcome": result.outcome}
    )
    return SyncResult(
        id=result_id,
        source=result.source,
        commit_sha=result.commit_sha,
        outcome=result.outcome,
        error=result.error,
        summary=result.summary,
    )


def _transient(exc: BaseException) -> bool:
    """Whether a failed look says nothing of the commit: another apply held the namespace,
    or the store failed (also as the cause of an undone apply). Nothing is recorded, and
    the next pass looks again."""
    kinds = (IllegalTransition, StoreError)
    return isinstance(exc, kinds) or isinstance(exc.__cause__, kinds)


def _audit(
    app: App, source: SyncSource, commit: str, namespace: str, outcome: str, summary: object
) -> None:
    """The audit record of an apply made by the duty: the scheduler's App acts for no
    one (its own verbs audit nothing), so the sync says who changed the namespace."""
    append_audit(
        app.store.accounts,
        app.clock,
        actor=f"sync:{source.name}",
        actor_kind="system",
        action="project.apply",
        object=f"namespace {namespace}",
        namespace=namespace,
        params={"commit": commit, "outcome": outcome, "summary": summary},
        source="sync",
        known=app.known(),
    )


def _relative(text: str, tmp: str) -> str:
    """The error without the temporary folder's path (paths read as in the repository)."""
    return text.replace(str(Path(tmp).resolve()) + "/", "").replace(tmp + "/", "")[:2000]


def _notify(app: App, source: SyncSource, namespace: str | None, commit: str, error: str) -> None:
    """Outbox rows for the namespace's ``sync.failed`` rules (delivered by the
    notifications duty)."""
    if namespace is None:
        return
    rules = app.store.notifications.list_rules(namespace)
    now = app.clock.now()
    fact = Fact(
        event="sync.failed",
        subject=f"{source.name}:{commit}",
        workflow="",
        namespace=namespace,
        tags=(),
        run_id=None,
        at=now,
        error=error[:500],
        detail=f"source {source.name} commit {commit[:12]}",
    )
    found = drafts([r for r in rules if "sync.failed" in r.events], fact)
    if found:
        app.store.notifications.enqueue(found, now=now)


class SyncDuty:
    """The scheduler's ``sync`` duty: every source, each pass, under its lease."""

    def __init__(
        self,
        app: App,
        *,
        lease: DutyLease | None = None,
        every: float = 30.0,
        cache: Path | None = None,
        git: str = "git",
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.app = app
        self.lease = lease
        #: Seconds between two passes.
        self.every = every
        self.cache = cache
        self.git = git
        self.on_error = on_error
        self._loop = PassLoop("sync", self.pass_once, every, lease)

    def start(self) -> None:
        """Pass every `every` seconds, on a daemon thread."""
        self._loop.start()

    def stop(self) -> None:
        """Stop after the pass in progress and free the lease."""
        self._loop.stop()

    def pass_once(self) -> list[SyncResult] | None:
        """Look at every source once, if this process holds the duty (None if not)."""
        if self.lease is not None and not self.lease.holds(self.app.clock.now()):
            return None
        results: list[SyncResult] = []
        for source in self.app.projects.sources():
            # A look can take minutes (a fetch, a child loading the project): a process
            # that lost the lease meanwhile stops before the next source.
            if self.lease is not None and not self.lease.holds(self.app.clock.now()):
                break
            try:
                found = sync_once(self.app, source, cache=self.cache, git=self.git)
            except Exception as exc:  # one source's failure must not stop the others
                log.warning("sync.look_failed", extra={"source": source.name, "error": str(exc)})
                if self.on_error is not None:
                    self.on_error(source.name, exc)
                continue
            if found is not None:
                results.append(found)
        return results

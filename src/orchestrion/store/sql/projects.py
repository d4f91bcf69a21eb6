"""`SqlProjects`: the `ProjectStore` of both dialects, over a `Database`.

Each write is one transaction with its event row (an apply's or a source's name, never a
secret: a source names its secret, the value is in the secret store)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from orchestrion.store.project_records import ProjectApply, SyncResult, SyncSource
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.named import NamedQueries, load_queries
from orchestrion.store.sql.rows import row_reader

__all__ = ["SqlProjects"]

PQ: Final[NamedQueries] = load_queries(Path(__file__).with_name("projects.sql"))
_APPLY = row_reader(ProjectApply)
_SOURCE = row_reader(SyncSource)
_RESULT = row_reader(SyncResult)


class SqlProjects:
    """See `orchestrion.store.projects.ProjectStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_apply(self, entry: ProjectApply, *, now: float) -> int:
        e = entry

        def fn(adv: Advance) -> int:
            row = adv.tx.execute(
                PQ.insert_apply,
                (
                    e.namespace,
                    e.project,
                    e.actor,
                    e.commit_sha,
                    e.source,
                    e.outcome,
                    json.dumps(dict(e.summary), sort_keys=True),
                    e.error,
                    now,
                ),
            ).fetchone()
            data = {"namespace": e.namespace, "project": e.project, "outcome": e.outcome}
            adv.event(None, None, "project.applied", data=data)
            return int(row["id"])

        return self._db.transact(now, fn)

    def list_applies(self, namespace: str | None = None, *, limit: int = 50) -> list[ProjectApply]:
        if namespace is None:
            found = self._db.read(PQ.applies, (limit,))
        else:
            found = self._db.read(PQ.applies_of, (namespace, limit))
        return [_APPLY(r) for r in found]

    def record_commit(
        self, versions: Sequence[tuple[str, str]], commit: str, *, now: float
    ) -> None:
        def fn(adv: Advance) -> None:
            for name, version in versions:
                adv.tx.execute(PQ.insert_commit, (name, version, commit, now))

        if versions:
            self._db.transact(now, fn)

    def commits_of(self, name: str) -> dict[str, str]:
        return {
            str(r["version"]): str(r["commit_sha"]) for r in self._db.read(PQ.commits_of, (name,))
        }

    def drop_workflow(self, name: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            if adv.tx.execute(PQ.runs_of_workflow, (name,)).fetchone() is not None:
                return False
            for query in (PQ.drop_current, PQ.drop_flags, PQ.drop_commits, PQ.drop_versions):
                adv.tx.execute(query, (name,))
            adv.event(None, None, "workflow.dropped", data={"name": name})
            return True

        return self._db.transact(now, fn)

    def put_sync_source(self, source: SyncSource, *, now: float) -> bool:
        s = source

        def fn(adv: Advance) -> bool:
            existed = adv.tx.execute(PQ.source_exists + adv.for_update(), (s.name,)).fetchone()
            adv.tx.execute(
                PQ.put_source,
                (s.name, s.repo, s.ref_kind, s.ref, s.project_path, s.secret, now, now),
            )
            kind = "sync_source.updated" if existed else "sync_source.created"
            adv.event(None, None, kind, data={"name": s.name, "ref": s.ref})
            return existed is None

        return self._db.transact(now, fn)

    def get_sync_source(self, name: str) -> SyncSource | None:
        found = self._db.read(PQ.source, (name,))
        return _SOURCE(found[0]) if found else None

    def list_sync_sources(self) -> list[SyncSource]:
        return [_SOURCE(r) for r in self._db.read(PQ.sources)]

    def delete_sync_source(self, name: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            if adv.tx.execute(PQ.delete_source, (name,)).fetchone() is None:
                return False
            adv.event(None, None, "sync_source.deleted", data={"name": name})
            return True

        return self._db.transact(now, fn)

    def record_sync(self, result: SyncResult, *, now: float) -> int:
        r = result

        def fn(adv: Advance) -> int:
            row = adv.tx.execute(
                PQ.insert_result,
                (
                    r.source,
                    r.commit_sha,
                    r.outcome,
                    r.error,
                    json.dumps(dict(r.summary), sort_keys=True),
                    now,
                ),
            ).fetchone()
            data = {"source": r.source, "commit": r.commit_sha, "outcome": r.outcome}
            adv.event(None, None, "sync.result", data=data)
            return int(row["id"])

        return self._db.transact(now, fn)

    def sync_results(self, source: str | None = None, *, limit: int = 50) -> list[SyncResult]:
        if source is None:
            found = self._db.read(PQ.results, (limit,))
        else:
            found = self._db.read(PQ.results_of, (source, limit))
        return [_RESULT(r) for r in found]

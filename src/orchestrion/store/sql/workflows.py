"""`SqlWorkflows`: the `WorkflowStore` of both dialects, over a `Database`.

A workflow's current version is a row of ``workflow_current``, changed only with the
registration or `set_current` that decided it, in the same transaction, with an event.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrion.errors import NotFound, SpecError
from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import WorkflowRecord
from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q

__all__ = ["SqlWorkflows"]


class SqlWorkflows:
    """See `orchestrion.store.workflows.WorkflowStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _record(self, row: Any) -> WorkflowRecord:
        """A record whose spec is parsed once per version: specs are immutable."""
        specs = self._db.specs
        key = (row["name"], row["version"])
        spec = specs.get(key)
        if spec is None:
            spec = specs[key] = WorkflowSpec.from_json(row["spec"])
        return rows.WORKFLOW(row, spec=spec)

    def register_workflow(
        self,
        spec: WorkflowSpec,
        *,
        source: str | None,
        now: float,
        keep_current: bool = False,
        code: CodeBundle | None = None,
        make_current: bool = True,
    ) -> bool:
        db = self._db
        if code is not None and code.digest != spec.code:
            raise SpecError(f"the code given is not the code of version {spec.version}")

        def fn(adv: Advance) -> bool:
            if code is not None:
                _insert_code(adv, code, now)
            elif spec.code is not None and _code_known(adv, spec.code) is None:
                raise SpecError(
                    f"the code of {spec.name} ({spec.code[:12]}) is not stored: send it"
                    " first (PUT /api/v1/code/{digest}), or deploy with the CLI"
                )
            created = db.upsert_workflow(adv, spec, source, now)
            if make_current and (created or not keep_current):
                _make_current(adv, spec.name, spec.version, now)
            return created

        created = db.transact(now, fn)
        db.specs[(spec.name, spec.version)] = spec
        return created

    def store_code(self, code: CodeBundle, *, now: float) -> bool:
        return self._db.transact(now, lambda adv: _insert_code(adv, code, now))

    def get_code(self, digest: str) -> CodeBundle | None:
        found = self._db.read(Q.code_bundle, (digest,))
        if not found:
            return None
        files: dict[str, str] = json.loads(found[0]["files"])
        wanted = sorted(set(files.values()))
        blobs = {
            r["digest"]: bytes(r["content"])
            for r in self._db.read(Q.code_blobs.fill(keys=marks(len(wanted))), wanted)
        }
        bundle = CodeBundle(
            {path: blobs[blob] for path, blob in files.items()},
            tuple(json.loads(found[0]["paths"])),
        )
        if bundle.digest != digest:  # a damaged row must not run as this version's code
            raise SpecError(f"the stored code {digest[:12]} does not match its digest")
        return bundle

    def set_current(self, name: str, version: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            if adv.tx.execute(Q.workflow_known, (name, version)).fetchone() is None:
                raise NotFound(f"no workflow named {name!r} at version {version}")
            return _make_current(adv, name, version, now)

        return self._db.transact(now, fn)

    def get_workflow(self, name: str, version: str | None = None) -> WorkflowRecord:
        if version is None:
            found = self._db.read(Q.current_workflow, (name,))
        else:
            found = self._db.read(Q.workflow_version, (name, version))
        if not found:
            raise NotFound(
                f"no workflow named {name!r}" + (f" at version {version}" if version else "")
            )
        return self._record(found[0])

    def list_workflows(self) -> list[WorkflowRecord]:
        return [self._record(r) for r in self._db.latest_rows(Q.current_workflows)]

    def list_versions(self, name: str) -> list[WorkflowRecord]:
        found = self._db.read(self._db.q.workflow_versions, (name,))
        if not found:
            raise NotFound(f"no workflow named {name!r}")
        return [self._record(r) for r in found]

    def latest_versions(self) -> dict[str, tuple[str, float]]:
        found = self._db.latest_rows(Q.current_versions)
        return {r["name"]: (r["version"], r["updated_at"]) for r in found}

    def set_paused(self, name: str, paused: bool, *, now: float) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(Q.set_paused, (name, int(paused), now))
            kind = "workflow.paused" if paused else "workflow.unpaused"
            adv.event(None, None, kind, data={"workflow": name})

        self._db.transact(now, fn)

    def paused_workflows(self) -> set[str]:
        return {r["name"] for r in self._db.read(Q.paused_workflows)}


def _code_known(adv: Advance, digest: str) -> Any:
    return adv.tx.execute(Q.code_bundle, (digest,)).fetchone()


def _insert_code(adv: Advance, code: CodeBundle, now: float) -> bool:
    """Insert a bundle and its files, each kept once (True if the bundle is new)."""
    if _code_known(adv, code.digest) is not None:
        return False
    manifest = code.manifest()
    for path, data in code.files.items():
        adv.tx.execute(Q.insert_code_blob, (manifest[path], data, len(data)))
    paths = json.dumps(list(code.paths))
    files = json.dumps(manifest, sort_keys=True)
    adv.tx.execute(Q.insert_code_bundle, (code.digest, paths, files, now))
    return True


def _make_current(adv: Advance, name: str, version: str, now: float) -> bool:
    """Make `version` current (True), with a ``workflow.current`` event saying from what;
    nothing when it already is, so that deploying the running version again neither writes
    nor restarts the clock its new schedules fire from."""
    row = adv.tx.execute(Q.lock_current, (name,)).fetchone()
    before = None if row is None else row["version"]
    if before == version:
        return False
    adv.tx.execute(Q.set_current, (name, version, now))
    data = {"workflow": name, "from": before, "to": version}
    adv.event(None, None, "workflow.current", data=data)
    return True

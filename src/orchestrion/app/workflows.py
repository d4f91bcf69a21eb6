"""`App.workflows`: load and register workflow files and specs, read them, choose the
current version, pause them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from orchestrion.app.core import Facet
from orchestrion.errors import NotFound
from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.loading import LoadedWorkflow, load_workflows, spec_from_data
from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import WorkflowRecord

if TYPE_CHECKING:
    from orchestrion.auth.principals import Principal
    from orchestrion.store.policy_records import Finding

__all__ = ["Version", "Workflows"]


class Version(msgspec.Struct, frozen=True):
    """One registered version of a workflow, and whether it is the current one."""

    record: WorkflowRecord
    current: bool
    #: The Git commit the version was first deployed from (sync or ``apply --commit``).
    commit: str | None = None


class Workflows(Facet):
    """Workflow versions: registering makes a new version when the content changed, and
    makes the registered version (new or known) current."""

    def load(
        self, path: str | os.PathLike[str], *, keep_current: bool = False
    ) -> list[WorkflowSpec]:
        """Load a workflow file, make its code available to local workers, register it
        (see `register_loaded` for `keep_current`)."""
        from orchestrion.app.templates import StoredSource

        # `uses:` the search path lacks come from the libraries this server holds.
        loaded = load_workflows(path, templates=[StoredSource(self.store.templates)])
        self.register_loaded(loaded, source=path, keep_current=keep_current)
        return [item.spec for item in loaded]

    def register_loaded(
        self,
        loaded: list[LoadedWorkflow],
        *,
        source: str | os.PathLike[str],
        keep_current: bool = False,
        principal: Principal | None = None,
        findings: list[Finding] | None = None,
    ) -> None:
        """Register what `load_workflows` returned (split from loading so that callers can
        check their choice and parameters before anything is written). Each becomes the
        current version, except, with `keep_current`, one registered before: a process
        re-reading its workflow folder at start does not undo a rollback.

        The admission policies check every spec first: `PolicyDenied` registers none;
        warnings are appended to `findings`."""
        # A file's absolute path; a source that is no file (``git:<source>@<commit>``, a
        # request) as given.
        path = Path(source)
        where = str(path.resolve()) if path.exists() else str(source)
        noted: list[list[Finding]] = [[] for _ in loaded]
        if self.store.policies.current_policies():  # else: nothing to import or check
            from orchestrion.app.policies import Policies

            noted = Policies(self._core).enforce_deploy(
                [item.spec for item in loaded], principal=principal, findings=findings
            )
        for item, found in zip(loaded, noted, strict=True):
            spec = item.spec
            if item.code is not None:
                self._core.code.add_bundle(item.code)
            else:
                self._core.code.add(item.callables)
            if self._core.actor is None:
                self.store.workflows.register_workflow(
                    spec,
                    source=where,
                    now=self.clock.now(),
                    keep_current=keep_current,
                    code=item.code,
                )
                continue
            with self._core.audited(
                "workflow.deploy",
                f"workflow {spec.namespace}/{spec.name}",
                params={
                    "version": spec.version,
                    "source": where,
                    **({"policy_findings": [str(f) for f in found]} if found else {}),
                },
            ):
                self.store.workflows.register_workflow(
                    spec,
                    source=where,
                    now=self.clock.now(),
                    keep_current=keep_current,
                    code=item.code,
                )

    def register_spec(
        self,
        data: dict[str, Any],
        *,
        source: str | None,
        principal: Principal | None = None,
        findings: list[Finding] | None = None,
    ) -> WorkflowRecord:
        """Register a spec given as JSON data (the API's and `deploy`'s way in), once the
        admission policies let it (`PolicyDenied`; warnings appended to `findings`)."""
        spec = spec_from_data(data, source=source or "request")
        if self.store.policies.current_policies():
            from orchestrion.app.policies import Policies

            Policies(self._core).enforce_deploy([spec], principal=principal, findings=findings)
        self.store.workflows.register_workflow(spec, source=source, now=self.clock.now())
        return self.store.workflows.get_workflow(spec.name, spec.version)

    def store_code(self, code: CodeBundle) -> bool:
        """Keep a version's code ahead of its spec (the API's upload, audited there); False
        if it was kept already."""
        return self.store.workflows.store_code(code, now=self.clock.now())

    def code(self, digest: str) -> CodeBundle:
        """A version's code by digest (`NotFound` if it is not stored)."""
        found = self.store.workflows.get_code(digest)
        if found is None:
            raise NotFound(f"no code stored under {digest}")
        return found

    def workflow(self, name: str, version: str | None = None) -> WorkflowSpec:
        """The spec of a version (the current one when `version` is None), or `NotFound`."""
        return self.store.workflows.get_workflow(name, version).spec

    def workflow_record(self, name: str, version: str | None = None) -> WorkflowRecord:
        """A version's record: its spec with its namespace, source and registration."""
        return self.store.workflows.get_workflow(name, version)

    def list_workflows(self) -> list[WorkflowRecord]:
        """The current version of every workflow."""
        return self.store.workflows.list_workflows()

    def workflow_versions(self, name: str) -> list[WorkflowRecord]:
        """Every version of one workflow, newest registered first."""
        return self.store.workflows.list_versions(name)

    def versions(self, name: str) -> list[Version]:
        """Every version of one workflow, newest registered first, the current one marked,
        with the commit each came from (`NotFound` for an unknown workflow)."""
        records = self.store.workflows.list_versions(name)
        current = self.store.workflows.get_workflow(name).version
        commits = self.store.projects.commits_of(name)
        return [Version(r, r.version == current, commits.get(r.version)) for r in records]

    def set_version(self, name: str, version: str) -> WorkflowRecord:
        """Make a registered version current (a rollback, or a roll forward again): what
        triggers, schedules and runs without a version start from now on. `NotFound` for
        an unknown workflow or version."""
        with self._core.audited(
            "workflow.set_version", f"workflow {name}", workflow=name, params={"version": version}
        ):
            self.store.workflows.set_current(name, version, now=self.clock.now())
        return self.store.workflows.get_workflow(name, version)

    def namespace_of(self, workflow: str) -> str:
        """The namespace of a workflow's current version (`NotFound` for an unknown one)."""
        return self.store.workflows.get_workflow(workflow).namespace

    def namespaces_of(self, workflows: Iterable[str]) -> dict[str, str]:
        """Namespaces of several workflows in one read (unknown names are left out)."""
        wanted = set(workflows)
        return {
            r.name: r.namespace for r in self.store.workflows.list_workflows() if r.name in wanted
        }

    def paused_workflows(self) -> set[str]:
        """Names of the paused workflows."""
        return self.store.workflows.paused_workflows()

    def set_paused(self, name: str, paused: bool) -> None:
        """Pause or unpause a workflow; `NotFound` for an unknown one."""
        action = "workflow.pause" if paused else "workflow.unpause"
        with self._core.audited(action, f"workflow {name}", workflow=name):
            self.store.workflows.get_workflow(name)  # NotFound for an unknown workflow
            self.store.workflows.set_paused(name, paused, now=self.clock.now())

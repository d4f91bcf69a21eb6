"""Workflow specs from files (.py, .yaml, .yml) and from JSON data (the API, `deploy`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from orchestrion.errors import SpecError
from orchestrion.spec.bundle import (
    CodeBundle,
    bundle_python_file,
    bundle_references,
    project_root,
)
from orchestrion.spec.model import PythonAction, WorkflowSpec
from orchestrion.spec.templates.search import LibrarySource, loading_with

__all__ = ["LoadedWorkflow", "load_workflows", "python_refs", "spec_from_data"]


class LoadedWorkflow(msgspec.Struct, frozen=True):
    """A workflow read from a file: its spec (``spec.code`` names `code`), the code it runs,
    and, for a Python file, the callables this process imported (by ref)."""

    spec: WorkflowSpec
    code: CodeBundle | None = None
    callables: dict[str, Callable[..., Any]] = msgspec.field(default_factory=dict)


def spec_from_data(data: Any, *, source: str) -> WorkflowSpec:
    """A spec from JSON data, with the model's complaints turned into one `SpecError`."""
    from orchestrion.spec.structs import Invalid

    if not isinstance(data, dict):
        raise SpecError("a workflow spec must be a JSON object", source=source)
    try:
        return WorkflowSpec.model_validate(data)
    except Invalid as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        more = len(exc.errors()) - 1
        extra = f" (and {more} more)" if more else ""
        raise SpecError(f"{first['msg']}{extra}", source=source, path=path or None) from None


def load_workflows(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    templates: Sequence[LibrarySource] = (),
) -> list[LoadedWorkflow]:
    """The workflows of a .py, .yaml or .yml file, each with its code bundled (see
    `orchestrion.spec.bundle`; `root` is the project root, by default the file's folder).
    Loading YAML never runs code; loading Python imports the file. Templates (``uses:``,
    ``use()``) are looked up on the search path, then in `templates` (a server's stored
    libraries)."""
    file = Path(path)
    if not file.exists():
        raise SpecError(f"no such file: {file}", source=str(file))
    suffix = file.suffix.lower()
    the_root = project_root(file, root)
    if suffix in (".yaml", ".yml"):
        from orchestrion.spec.yaml.libraries import default_source
        from orchestrion.spec.yaml.loader import load_yaml_file

        spec = load_yaml_file(file, templates=default_source(file, extra=templates))
        code = bundle_references(python_refs(spec), file, the_root)
        return [_with_code(spec, code, {})]
    if suffix == ".py":
        from orchestrion.spec.python import Workflow, load_python_file

        bundle = bundle_python_file(file, the_root)
        fresh = [the_root / rel for rel in bundle.files]
        found: dict[str, Workflow] = {}
        with loading_with(templates):  # `use()` calls made in the build see them
            pending = list(load_python_file(file, root=the_root, fresh=fresh))
            while pending:  # the file's workflows, then the sub-workflows they call
                wf = pending.pop(0)
                if wf.name not in found:
                    found[wf.name] = wf
                    pending.extend(wf.subworkflows.values())
            return [_with_code(wf.spec, bundle, dict(wf.callables)) for wf in found.values()]
    raise SpecError(
        f"unsupported workflow file type {suffix or '(none)'!r}: use .py, .yaml or .yml",
        source=str(file),
    )


def python_refs(spec: WorkflowSpec) -> Iterator[str]:
    """Every Python reference of a spec: task actions, undo actions and conditions."""
    for task in spec.tasks:
        for action in (task.action, task.undo):
            if isinstance(action, PythonAction):
                yield action.ref
        if task.when is not None and task.when.ref is not None:
            yield task.when.ref


def _with_code(
    spec: WorkflowSpec, code: CodeBundle | None, callables: dict[str, Callable[..., Any]]
) -> LoadedWorkflow:
    if code is None:
        return LoadedWorkflow(spec, None, callables)
    return LoadedWorkflow(spec.model_copy(update={"code": code.digest}), code, callables)

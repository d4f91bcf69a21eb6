"""Workflow specs from files (.py, .yaml, .yml) and from JSON data (the API, `deploy`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrion.errors import SpecError
from orchestrion.spec.model import WorkflowSpec

__all__ = ["load_workflows", "spec_from_data"]


def spec_from_data(data: Any, *, source: str) -> WorkflowSpec:
    """A spec from JSON data, with pydantic's complaints turned into one `SpecError`."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise SpecError("a workflow spec must be a JSON object", source=source)
    try:
        return WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        more = len(exc.errors()) - 1
        extra = f" (and {more} more)" if more else ""
        raise SpecError(f"{first['msg']}{extra}", source=source, path=path or None) from None


def load_workflows(path: str | os.PathLike[str]) -> list[tuple[WorkflowSpec, dict[str, Any]]]:
    """Specs (and, for Python files, their callables by ref) from a .py, .yaml or .yml file.
    Loading YAML never runs code; loading Python imports the file."""
    file = Path(path)
    if not file.exists():
        raise SpecError(f"no such file: {file}", source=str(file))
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml"):
        from orchestrion.spec.yaml.loader import load_yaml_file

        return [(load_yaml_file(file), {})]
    if suffix == ".py":
        from orchestrion.spec.python import Workflow, load_python_file

        found: dict[str, Workflow] = {}
        pending = list(load_python_file(file))
        while pending:  # the file's workflows, then the sub-workflows they call
            wf = pending.pop(0)
            if wf.name not in found:
                found[wf.name] = wf
                pending.extend(wf.subworkflows.values())
        return [(wf.spec, dict(wf.callables)) for wf in found.values()]
    raise SpecError(
        f"unsupported workflow file type {suffix or '(none)'!r}: use .py, .yaml or .yml",
        source=str(file),
    )

"""Which kind of Orchestrion document a YAML file is, when it is not a workflow.

A repository keeps project files, admission policies and template libraries beside its
workflow files (docs/projects.md). A server watching that folder for workflows skips them
by name instead of reporting each as an invalid workflow.
"""

from __future__ import annotations

from pathlib import Path

from orchestrion.errors import SpecError
from orchestrion.spec.yaml.reader import decode_text, read_document

__all__ = ["other_document"]

#: The top-level key that marks each kind of document that is not a workflow.
_MARKS = (
    ("project", "a project file"),
    ("policy", "an admission policy"),
    ("policies", "admission policies"),
    ("library", "a template library"),
)
_MAX_BYTES = 1 << 20
_MAX_DEPTH = 50


def other_document(path: Path) -> str | None:
    """What the YAML file at `path` is when it is a project, a policy or a template library
    (by its top-level key, as those commands read it); None for anything else, a workflow
    or a file that does not parse (loading it as a workflow reports that)."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return None
    try:
        text = decode_text(path.read_bytes(), str(path), _MAX_BYTES)
        data, _, _ = read_document(text, str(path), _MAX_DEPTH)
    except (OSError, SpecError):
        return None
    if not isinstance(data, dict) or "tasks" in data:
        return None
    return next((what for key, what in _MARKS if key in data), None)

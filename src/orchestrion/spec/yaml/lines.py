"""The lines of a workflow file's references, for errors found after loading (a Python
reference that does not import, a sub-workflow that does not exist)."""

from __future__ import annotations

import os
from typing import Any

from orchestrion.spec.yaml.reader import read_document

__all__ = ["REFERENCE_KEYS", "reference_lines"]

#: The task fields whose value names something outside the file.
REFERENCE_KEYS = ("python", "workflow")


def reference_lines(path: str | os.PathLike[str]) -> dict[tuple[str, str, str], int]:
    """``(task, key, value) -> line`` for every ``python:`` and ``workflow:`` value in the
    tasks of a (valid) workflow file, undo steps and conditions included."""
    with open(path, encoding="utf-8") as handle:
        data, marks, _ = read_document(handle.read(), os.fspath(path), 64)
    tasks = data.get("tasks") if isinstance(data, dict) else None
    found: dict[tuple[str, str, str], int] = {}
    for where, (line, _column) in marks.items():
        if len(where) < 3 or where[0] != "tasks" or where[-1] not in REFERENCE_KEYS:
            continue
        value = _at(data, where)
        name = _task_name(tasks, where[1])
        if isinstance(value, str) and name is not None:
            found.setdefault((name, str(where[-1]), value), line)
    return found


def _at(data: Any, where: tuple[str | int, ...]) -> Any:
    for part in where:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _task_name(tasks: Any, key: str | int) -> str | None:
    """A task's name: its key in the ``tasks`` mapping, or the ``name`` of a list item."""
    if isinstance(key, str):
        return key
    item = tasks[key] if isinstance(tasks, list) and key < len(tasks) else None
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) else None

"""The Python authoring API: ``@workflow``, ``@task``, ``shell``, ``http`` and the loaders.

A workflow is a function whose body wires tasks together::

    @task(retries=3)
    def extract(day: str) -> list[dict]: ...

    @task
    def load(rows: list[dict], ctx: TaskContext) -> int: ...

    @workflow(schedule="0 3 * * *")
    def etl(day: str, full: bool = False):
        rows = extract(day)                     # a TaskRef, not the rows
        load(rows)                              # depends on extract; rows -> tasks.extract
        shell("notify", argv=["notify-send", rows["count"]])

    etl.spec        # the frozen WorkflowSpec that is registered
    etl.callables   # {"mymod:extract": extract_fn, ...}: how workers find the code

Rules worth knowing:

* The body runs once, at build time, with placeholders. A `TaskRef` or `ParamRef` has no
  value then, so ``if rows:`` or ``day == "mon"`` raises a SpecError: make tasks
  conditional with ``when=``. A ``when`` callable is called by the worker with keyword
  arguments chosen by its signature: ``params`` (the run parameters, a dict) and/or
  ``results`` (upstream task name -> result); it returns a bool. A ``when`` string is an
  expression over ``params`` and ``tasks``.
* Task arguments: a ref becomes an expression input and a dependency; a literal must be JSON
  data; a list or dict holding refs becomes a list/dict expression (``[tasks.a, tasks.b]``).
* ``f"{ref}"`` gives the template ``{{ expr }}``: useful in shell/HTTP/sub-workflow fields,
  refused as a Python task argument (it would arrive as the literal text).
* Calling the same task twice auto-names the second ``name_2``; ``task.options(name=...)``
  names a call explicitly (and must be unique). ``task.options(after=[ref])`` adds an
  ordering-only dependency.
* ``task.map(list_ref, **other)`` runs one task per element; downstream sees the list.
* The ``ctx`` parameter (or one annotated ``TaskContext``) is filled by the worker.
* Calling a task outside a workflow just calls the function (handy in unit tests).
* A workflow called inside another one is a sub-workflow task; refs in its parameters
  become ``{{ ... }}`` templates. ``wf.subworkflows`` lists the children to register.
* The workflow function's return value is ignored (return nothing, or a task ref).
* Task refs are ``module:qualname``; for a file loaded by path the module is the file stem.

Importing this module is cheap: it pulls in the spec's models (msgspec) and the standard
library only.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from orchestrion.errors import OrchestrionError, SpecError
from orchestrion.spec.python.actions import container, http, plugin, publish, shell, sql
from orchestrion.spec.python.build import MappedTaskRef, ParamRef, Ref, TaskRef
from orchestrion.spec.python.options import CommonOptions, ShellOptions, TaskOptions
from orchestrion.spec.python.task import Task, task
from orchestrion.spec.python.templates import TemplateUse, template_library, use
from orchestrion.spec.python.triggers import broker
from orchestrion.spec.python.waits import approval, wait_for
from orchestrion.spec.python.workflow import SubWorkflowCall, Workflow, workflow

__all__ = [
    "CommonOptions",
    "MappedTaskRef",
    "ParamRef",
    "Ref",
    "ShellOptions",
    "SubWorkflowCall",
    "Task",
    "TaskOptions",
    "TaskRef",
    "TemplateUse",
    "Workflow",
    "approval",
    "broker",
    "container",
    "http",
    "load_python_file",
    "load_python_module",
    "plugin",
    "publish",
    "shell",
    "sql",
    "task",
    "template_library",
    "use",
    "wait_for",
    "workflow",
]


def load_python_file(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    fresh: Iterable[Path] = (),
) -> list[Workflow]:
    """Import a workflow file and return its workflows, in definition order.

    The module is named after the file stem (so task refs read ``stem:function``) and put
    in ``sys.modules`` under that name; the file's directory (then the project `root`) is
    added to ``sys.path`` so that it can import its siblings. Modules loaded before from
    the `fresh` files are imported again, so that reloading a changed file also sees its
    changed helpers. Every `Workflow` among the module's attributes is returned, including
    ones it imported. Specs are built lazily, on ``.spec``.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise SpecError("no such file", source=str(path))
    name = file.stem
    _check_module_name(name, file)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise SpecError("cannot be imported as a Python module", source=str(path))
    module = importlib.util.module_from_spec(spec)
    for folder in (str(Path(root).resolve()) if root else None, str(file.parent)):
        if folder is not None and folder not in sys.path:
            sys.path.insert(0, folder)
    _forget_modules({f.resolve() for f in fresh} - {file})
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        _reraise(exc, str(file), str(file))
    return _workflows_of(module)


def _forget_modules(files: set[Path]) -> None:
    """Drop the modules loaded from `files` from ``sys.modules`` (the next import reads the
    file again)."""
    if not files:
        return
    wanted = {str(f) for f in files}  # compared as strings: resolving every module is slow
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if isinstance(where, str) and os.path.abspath(where) in wanted:
            del sys.modules[name]


def load_python_module(name: str) -> list[Workflow]:
    """Import a module by dotted name and return its workflows, in definition order."""
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        _reraise(exc, name)
    return _workflows_of(module)


def _workflows_of(module: ModuleType) -> list[Workflow]:
    """Each distinct Workflow among the module's attributes (attribute order is definition
    order)."""
    found: list[Workflow] = []
    for value in vars(module).values():
        if isinstance(value, Workflow) and all(value is not w for w in found):
            found.append(value)
    return found


def _check_module_name(name: str, file: Path) -> None:
    """Refuse a file whose stem would replace an unrelated module (``json.py``, ``os.py``)."""
    known = sys.modules.get(name)
    known_file = getattr(known, "__file__", None)
    if known is not None and (known_file is None or Path(known_file).resolve() != file):
        raise SpecError(
            f"its module name {name!r} is already taken by {known_file or 'a built-in module'};"
            " rename the file",
            source=str(file),
        )


def _reraise(exc: BaseException, source: str, file: str | None = None) -> NoReturn:
    """Import failures become SpecErrors naming the file and line, with a traceback summary.

    The line is the last one executed in `file` (the loaded file) when it is on the stack,
    else the deepest frame outside importlib.
    """
    if not isinstance(exc, Exception | SystemExit):  # sys.exit() in a file is a bad file
        raise exc
    if isinstance(exc, SyntaxError):
        raise SpecError(
            f"syntax error: {exc.msg}",
            source=exc.filename or source,
            line=exc.lineno,
            column=exc.offset,
        ) from exc
    if isinstance(exc, SpecError) and exc.source:
        raise exc
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename]
    mine = [f for f in frames if f.filename == file]
    at = (mine or frames)[-1] if (mine or frames) else None
    summary = "".join(traceback.format_list(frames)).rstrip()
    kind = "" if isinstance(exc, OrchestrionError) else f"{type(exc).__name__}: "
    detail = exc.detail if isinstance(exc, SpecError) else str(exc)
    raise SpecError(
        f"import failed: {kind}{detail}" + (f"\n{summary}" if summary else ""),
        source=at.filename if at else source,
        line=at.lineno if at else None,
    ) from exc

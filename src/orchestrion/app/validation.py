"""`orchestrion validate`: every problem of a batch of workflow files, each with its file
and line, found without running anything in this process but the loading itself.

Beyond what loading a file checks (its shape, graph, expressions), a batch is checked as
a whole: every Python reference must import where a worker would import it (in a child
process, through the worker's own snapshot loader), and every sub-workflow a task calls
must be in the batch or already deployed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrion.errors import SpecError
from orchestrion.spec.loading import LoadedWorkflow, load_workflows
from orchestrion.spec.model import PythonAction, SubWorkflowAction, TaskSpec, WorkflowSpec
from orchestrion.spec.yaml.lines import reference_lines
from orchestrion.worker.refcheck import RefCheck, check_references

__all__ = ["FileReport", "validate_files"]


@dataclass
class FileReport:
    """One file: the workflows it defines (when it loaded) and its problems."""

    file: Path
    loaded: list[LoadedWorkflow] = field(default_factory=list)
    problems: list[SpecError] = field(default_factory=list)


def validate_files(
    files: Sequence[Path],
    *,
    deployed: Callable[[str], bool] | None = None,
    modules: Sequence[Path] = (),
) -> list[FileReport]:
    """Load and check `files` as one batch; `deployed` says whether a workflow not in the
    batch is known where the batch goes (None: nothing is known beyond the batch).
    `modules` are Python files found in folders: one that defines no workflow is a helper
    module, not a problem."""
    reports = [_load(file, required=True) for file in files]
    reports += [r for r in (_load(f, required=False) for f in modules) if r.loaded or r.problems]
    in_batch = {item.spec.name for r in reports for item in r.loaded}
    for report in reports:
        lines = _lines(report.file)
        for item in report.loaded:
            report.problems += _children(report.file, item.spec, lines, in_batch, deployed)
    _check_references(reports)
    for report in reports:
        report.problems.sort(key=lambda p: p.line or 0)
    return reports


def _load(file: Path, *, required: bool) -> FileReport:
    report = FileReport(file)
    try:
        report.loaded = load_workflows(file)
        if not report.loaded and required:
            raise SpecError(
                "the file defines no workflow (no @workflow function)", source=str(file)
            )
    except SpecError as exc:
        report.problems += [exc, *exc.more]
    return report


def _lines(file: Path) -> dict[tuple[str, str, str], int]:
    if file.suffix.lower() not in (".yaml", ".yml"):
        return {}
    try:
        return reference_lines(file)
    except (OSError, SpecError, UnicodeDecodeError):
        return {}


def _children(
    file: Path,
    spec: WorkflowSpec,
    lines: dict[tuple[str, str, str], int],
    in_batch: set[str],
    deployed: Callable[[str], bool] | None,
) -> list[SpecError]:
    problems: list[SpecError] = []
    for task in spec.tasks:
        for action in (task.action, task.undo):
            if not isinstance(action, SubWorkflowAction) or action.workflow in in_batch:
                continue
            if deployed is not None and deployed(action.workflow):
                continue
            where = "neither deployed nor" if deployed is not None else "not"
            hint = "" if deployed is not None else " (give --db or --server to look there too)"
            problems.append(
                SpecError(
                    f"task {task.name!r} calls workflow {action.workflow!r}, which is {where}"
                    f" among the files validated{hint}",
                    source=str(file),
                    path=f"tasks.{task.name}.workflow",
                    line=lines.get((task.name, "workflow", action.workflow)),
                )
            )
    return problems


def _check_references(reports: Iterable[FileReport]) -> None:
    """One child process imports every reference of the batch."""
    wanted: list[tuple[FileReport, WorkflowSpec, str, str, int | None]] = []
    checks: list[RefCheck] = []
    for report in reports:
        lines = _lines(report.file)
        for item in report.loaded:
            for task, ref in _references(item.spec.tasks):
                line = lines.get((task, "python", ref))
                wanted.append((report, item.spec, task, ref, line))
                checks.append(RefCheck(ref, item.code))
    for (report, spec, task, _ref, line), problem in zip(
        wanted, check_references(checks), strict=True
    ):
        if problem is not None:
            report.problems.append(
                SpecError(
                    f"workflow {spec.name!r}, task {task!r}: {problem}",
                    source=str(report.file),
                    path=f"tasks.{task}.python",
                    line=line,
                )
            )


def _references(tasks: Iterable[TaskSpec]) -> Iterable[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for task in tasks:
        refs = [a.ref for a in (task.action, task.undo) if isinstance(a, PythonAction)]
        if task.when is not None and task.when.ref is not None:
            refs.append(task.when.ref)
        for ref in refs:
            if (task.name, ref) not in seen:
                seen.add((task.name, ref))
                yield task.name, ref

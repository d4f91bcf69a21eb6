"""Load a project in a child process and print it as JSON: how Git sync reads a commit's
project without importing its Python workflow files into the scheduler.

The scheduler never imports user code (a workflow file's imports could hang it, leak
memory, or, from one commit to the next, be served stale from ``sys.modules``). So
`read_project_isolated` runs ``python -m orchestrion.spec.project_export FILE`` and
rebuilds the loaded project from its output: the declaration, each spec, each code
bundle. A loading error is the child's one line on stderr, raised as `SpecError`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrion.errors import SpecError
from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.loading import LoadedWorkflow, spec_from_data
from orchestrion.spec.project import LoadedProject, load_project, project_from_data

__all__ = ["export", "read_project_isolated"]

_TIMEOUT = 300.0


def export(path: str) -> dict[str, Any]:
    """The project file at `path`, loaded, as JSON data."""
    loaded = load_project(path)
    return {
        "project": loaded.spec.to_data(),
        "workflows": [
            {
                "spec": json.loads(w.spec.to_json()),
                "code": None if w.code is None else w.code.to_wire(),
            }
            for w in loaded.workflows
        ],
        "policies": list(loaded.policies),
    }


def read_project_isolated(path: Path, *, source: str) -> LoadedProject:
    """The project at `path`, loaded by a child Python process (see the module's doc)."""
    try:
        done = subprocess.run(
            [sys.executable, "-P", "-m", "orchestrion.spec.project_export", str(path)],
            cwd=path.parent,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SpecError(f"loading the project took over {_TIMEOUT:.0f} s", source=source) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SpecError(lines[-1] if lines else "loading the project failed")
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise SpecError(
            "loading the project printed no project (see the loader's stderr)"
        ) from None
    spec = project_from_data(data["project"], source=source)
    workflows = tuple(
        LoadedWorkflow(
            spec_from_data(item["spec"], source=source),
            None if item["code"] is None else CodeBundle.from_wire(item["code"]),
        )
        for item in data["workflows"]
    )
    return LoadedProject(spec, workflows, source, tuple(data["policies"]))


def main() -> None:
    """Print the project named on the command line as JSON; an error as one line on stderr
    and exit status 1."""
    # What a workflow file prints while it loads goes to stderr: stdout carries the JSON.
    out, sys.stdout = sys.stdout, sys.stderr
    try:
        text = json.dumps(export(sys.argv[1]))
    except SpecError as exc:
        print(str(exc).replace("\n", " "), file=sys.stderr)
        sys.exit(1)
    except BaseException as exc:  # a workflow file's own error or exit, as one line
        print(f"{exc.__class__.__name__}: {exc}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)
    out.write(text + "\n")


if __name__ == "__main__":
    main()

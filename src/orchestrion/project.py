"""Declarative projects from Python: read a project file, or declare one as a dict.

    from orchestrion.app import App
    from orchestrion.project import load_project, project_from_dict

    project = load_project("deploy/prod/project.yaml")
    # or: project_from_dict({"project": "analytics", "namespace": "prod",
    #                        "workflows": ["flows/"]}, base="deploy/prod")
    with App() as app:
        print(app.projects.plan(project).to_data())
        app.projects.apply(project)

See docs/projects.md for the file's keys and what plan and apply do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrion.spec.project import (
    LoadedProject,
    ProjectSpec,
    load_project,
    load_project_policies,
    load_project_workflows,
    parse_project,
    project_from_data,
)

__all__ = [
    "LoadedProject", "ProjectSpec", "load_project", "parse_project", "project_from_data",
    "project_from_dict",
]  # fmt: skip


def project_from_dict(
    data: Mapping[str, Any], *, base: str | os.PathLike[str] = "."
) -> LoadedProject:
    """A project declared as a mapping (the file's keys), its workflow paths read relative
    to `base`; checked and loaded as `load_project` does."""
    spec = project_from_data(dict(data), source="<dict>")
    workflows = load_project_workflows(spec, Path(base))
    return LoadedProject(spec, workflows, "<dict>", load_project_policies(spec, Path(base)))

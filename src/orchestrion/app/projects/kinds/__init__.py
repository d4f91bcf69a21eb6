"""The resource kinds of a project, in apply order (creates and updates in this order,
deletes in the reverse: a channel exists before its rules, a workflow before its
schedule's state), and the whole-project checks run before any kind is diffed.

Admission policies (issue 19, part 1) plug in here once `orchestrion.app.policies` is
merged: a ``kinds/policies.py`` kind (the namespace's policy documents, put/deleted with
``app.policies.put``/``delete``) inserted before ``WORKFLOWS`` in `KINDS`, so a commit's new
policies are in force when its workflows are checked; and a ``checks/policies.py`` entry in
`CHECKS` calling ``app.policies.check_deploy(spec, namespace=..., principal=...)`` for each
workflow of the project and raising on a denial (its warnings go to the plan's notes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from orchestrion.app.projects.kind import Kind
from orchestrion.app.projects.kinds.connections import CONNECTIONS
from orchestrion.app.projects.kinds.notifications import CHANNELS, RULES
from orchestrion.app.projects.kinds.queues import QUEUES
from orchestrion.app.projects.kinds.roles import ROLES
from orchestrion.app.projects.kinds.workflows import SCHEDULES, WORKFLOWS

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.spec.project import LoadedProject

__all__ = ["CHECKS", "KINDS", "ProjectCheck"]

KINDS: tuple[Kind, ...] = (CONNECTIONS, CHANNELS, QUEUES, ROLES, WORKFLOWS, SCHEDULES, RULES)

#: A check of the whole project, run before anything is diffed or written: it raises an
#: `OrchestrionError` naming the problem, or returns notes for the plan (warnings).
ProjectCheck = Callable[["App", "LoadedProject"], Sequence[str]]

#: The whole-project checks (the admission policy check goes here).
CHECKS: tuple[ProjectCheck, ...] = ()

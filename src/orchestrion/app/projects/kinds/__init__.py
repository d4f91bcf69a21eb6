"""The resource kinds of a project, in apply order (creates and updates in this order,
deletes in the reverse: a channel exists before its rules, a workflow before its
schedule's state), and the whole-project checks run before any kind is diffed.

Admission policies come before the workflows, so a commit's new policies are in force
when its workflows are registered; `check_policies` checks every workflow against them
before anything is written (a denial refuses the whole project; warnings are the plan's
notes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from orchestrion.app.projects.kind import Kind
from orchestrion.app.projects.kinds.connections import CONNECTIONS
from orchestrion.app.projects.kinds.notifications import CHANNELS, RULES
from orchestrion.app.projects.kinds.policies import POLICIES, check_policies
from orchestrion.app.projects.kinds.queues import QUEUES
from orchestrion.app.projects.kinds.roles import ROLES
from orchestrion.app.projects.kinds.workflows import SCHEDULES, WORKFLOWS

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["CHECKS", "KINDS", "ProjectCheck"]

KINDS: tuple[Kind, ...] = (
    CONNECTIONS, CHANNELS, QUEUES, ROLES, POLICIES, WORKFLOWS, SCHEDULES, RULES,
)  # fmt: skip

#: A check of the whole project for a principal (None: the App's actor), run before
#: anything is diffed or written: it raises an
#: `OrchestrionError` naming the problem, or returns notes for the plan (warnings).
ProjectCheck = Callable[["App", "LoadedProject", "Principal | None"], Sequence[str]]

#: The whole-project checks.
CHECKS: tuple[ProjectCheck, ...] = (check_policies,)

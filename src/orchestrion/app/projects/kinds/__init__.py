"""The resource kinds of a project, in apply order (creates and updates in this order,
deletes in the reverse: a channel exists before its rules, a workflow before its
schedule's state). The admission policies kind (``policies.POLICIES``, issue 19 part 1)
goes after ``roles`` when `orchestrion.app.policies` is merged."""

from __future__ import annotations

from orchestrion.app.projects.kind import Kind
from orchestrion.app.projects.kinds.connections import CONNECTIONS
from orchestrion.app.projects.kinds.notifications import CHANNELS, RULES
from orchestrion.app.projects.kinds.queues import QUEUES
from orchestrion.app.projects.kinds.roles import ROLES
from orchestrion.app.projects.kinds.workflows import SCHEDULES, WORKFLOWS

__all__ = ["KINDS"]

KINDS: tuple[Kind, ...] = (CONNECTIONS, CHANNELS, QUEUES, ROLES, WORKFLOWS, SCHEDULES, RULES)

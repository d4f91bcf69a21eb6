"""The store's role implementations document nothing of their own: each public method is
a verb of the role protocol it implements, documented there once. So a helper made public
on an implementation (which ruff's D102 exemption for these files would let pass without
a docstring) fails here instead, and every protocol verb has its contract written down."""

from __future__ import annotations

import inspect

import pytest

from orchestrion.store.accounts import AccountStore
from orchestrion.store.connections import ConnectionStore
from orchestrion.store.notifier import Notifier
from orchestrion.store.policies import PolicyStore
from orchestrion.store.postgres.reads import PostgresReads
from orchestrion.store.postgres.runs import PostgresRuns
from orchestrion.store.postgres.triggers import PostgresTriggers
from orchestrion.store.reads import ReadStore
from orchestrion.store.runs import RunStore
from orchestrion.store.secrets import SecretStore
from orchestrion.store.sql.accounts import SqlAccounts
from orchestrion.store.sql.connections import SqlConnections
from orchestrion.store.sql.notifier import SqlNotifier
from orchestrion.store.sql.policies import SqlPolicies
from orchestrion.store.sql.reads import SqlReads
from orchestrion.store.sql.runs import SqlRuns
from orchestrion.store.sql.secrets import SqlSecrets
from orchestrion.store.sql.triggers import SqlTriggers
from orchestrion.store.sql.workflows import SqlWorkflows
from orchestrion.store.sqlite.runs import SqliteRuns
from orchestrion.store.triggers import TriggerStore
from orchestrion.store.workflows import WorkflowStore

ROLES: list[tuple[type, type]] = [
    (SqlWorkflows, WorkflowStore),
    (SqlRuns, RunStore),
    (SqliteRuns, RunStore),
    (PostgresRuns, RunStore),
    (SqlTriggers, TriggerStore),
    (PostgresTriggers, TriggerStore),
    (SqlAccounts, AccountStore),
    (SqlSecrets, SecretStore),
    (SqlConnections, ConnectionStore),
    (SqlReads, ReadStore),
    (PostgresReads, ReadStore),
    (SqlNotifier, Notifier),
    (SqlPolicies, PolicyStore),
]


@pytest.mark.parametrize(("impl", "role"), ROLES, ids=[i.__name__ for i, _ in ROLES])
def test_an_implementation_adds_no_public_method(impl: type, role: type) -> None:
    public = {n for n, v in vars(impl).items() if callable(v) and not n.startswith("_")}
    assert public <= set(dir(role)), f"{impl.__name__}: {sorted(public - set(dir(role)))}"


_PROTOCOLS: list[type] = sorted({r for _, r in ROLES}, key=lambda r: r.__name__)


@pytest.mark.parametrize("role", _PROTOCOLS, ids=[r.__name__ for r in _PROTOCOLS])
def test_every_verb_of_a_role_is_documented(role: type) -> None:
    verbs = [n for n, v in vars(role).items() if callable(v) and not n.startswith("_")]
    assert verbs
    for name in verbs:
        assert inspect.getdoc(getattr(role, name)), f"{role.__name__}.{name}"

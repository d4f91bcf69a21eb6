"""Admission policies: list, read (with the YAML and the version history), write and
delete.

A policy applies across namespaces, so writing one is a server setting (admin on ``*``,
`Action.SETTINGS`, audited as ``policy.put`` / ``policy.delete``); reading them is open to
any reader, so that whoever is refused can read the rule that refused them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from orchestrion.auth.principals import Action
from orchestrion.store.policy_records import PolicyRecord
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of, principal_of

__all__ = ["policy_json", "router"]

router = APIRouter(prefix="/api/v1/policies", tags=["policies"])


def policy_json(record: PolicyRecord) -> dict[str, Any]:
    """A policy version as the API sends it (`PolicyRecord.to_wire`)."""
    return record.to_wire()


@router.get("")
@rule(Action.READ, targets.anywhere)
def list_policies(request: Request) -> list[dict[str, Any]]:
    """The policies in force, by name."""
    return [policy_json(r) for r in app_of(request).policies.list()]


@router.post("")
@rule(Action.SETTINGS, targets.server_wide, "policy.put")
def put_policy(request: Request, document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Write a policy (the document as JSON: what its YAML holds). A changed document is a
    new version; an unchanged one answers the version in force. 422 names the field of a
    bad document."""
    app = app_of(request)
    return policy_json(app.policies.put(document, principal=principal_of(request)))


@router.get("/{name}")
@rule(Action.READ, targets.anywhere)
def get_policy(request: Request, name: str) -> dict[str, Any]:
    """The version in force of one policy (404 when none is)."""
    return policy_json(app_of(request).policies.get(name))


@router.get("/{name}/history")
@rule(Action.READ, targets.anywhere)
def policy_history(request: Request, name: str) -> list[dict[str, Any]]:
    """Every version of a policy, newest first, deletions included."""
    return [policy_json(r) for r in app_of(request).policies.history(name)]


@router.delete("/{name}", status_code=204)
@rule(Action.SETTINGS, targets.server_wide, "policy.delete")
def delete_policy(request: Request, name: str) -> Response:
    """Take a policy out of force (its history stays)."""
    app_of(request).policies.delete(name, principal=principal_of(request))
    return Response(status_code=204)

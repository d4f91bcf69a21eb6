"""Who am I, users, API tokens and the audit log.

Each route's `rule` authorises it before it runs; what is left here is what only the
handler can know: a token may be given no more than its maker holds
(`authorize_grant`), a token is revoked only by an admin of every namespace it binds, and
audit records are shown for the namespaces the reader administers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.app.accounts import parse_bindings
from orchestrion.auth.principals import Action, Resource, authorize_all, authorize_grant
from orchestrion.errors import Forbidden, ParameterError
from orchestrion.spec.fields import Line, NamespaceOrAll
from orchestrion.store.records import AuditFilter, AuditRecord, TokenRecord, UserRecord
from orchestrion.web import targets
from orchestrion.web.params import BeforeId, Since
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of, principal_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["accounts"])

#: Namespace (or ``*``) -> role label; the namespace checked by the one shared definition.
Bindings = Annotated[
    dict[NamespaceOrAll, Annotated[str, Field(max_length=20)]], Field(max_length=50)
]


def _bindings(pairs: dict[str, str]) -> None:
    parse_bindings(pairs)  # ParameterError (422) names a bad role or namespace


# Users, tokens and audit records are shown field by field on purpose: they sit beside
# secrets (password and token hashes), so a new column stays private until it is added here.
def _user(u: UserRecord) -> dict[str, Any]:
    return {
        "id": u.id,
        "name": u.name,
        "bindings": dict(u.bindings),
        "disabled": u.disabled,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    }


def _token(t: TokenRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "bindings": dict(t.bindings),
        "created_by": t.created_by,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
    }


def _audit(r: AuditRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": r.at,
        "actor": r.actor,
        "actor_kind": r.actor_kind,
        "action": r.action,
        "object": r.object,
        "namespace": r.namespace,
        "params": dict(r.params),
        "outcome": r.outcome,
        "detail": r.detail,
        "request_id": r.request_id,
        "source": r.source,
    }


@router.get("/me")
@rule(Action.READ, targets.signed_in)
def me(request: Request) -> dict[str, Any]:
    principal = principal_of(request)
    return {
        "kind": principal.kind.value,
        "id": principal.id,
        "name": principal.name,
        "bindings": {ns: role.label for ns, role in principal.bindings.items()},
    }


# --------------------------------------------------------------------------------- users


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    bindings: Bindings


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Annotated[str | None, Field(max_length=1024)] = None
    bindings: Bindings | None = None
    disabled: bool | None = None


@router.get("/users")
@rule(Action.MANAGE_USERS, targets.server_wide, "users.list")
def list_users(request: Request) -> list[dict[str, Any]]:
    return [_user(u) for u in app_of(request).accounts.list_users()]


@router.post("/users", status_code=201)
@rule(Action.MANAGE_USERS, targets.server_wide, "user.create", audit_fields=("name", "bindings"))
def create_user(request: Request, body: UserIn) -> dict[str, Any]:
    _bindings(body.bindings)
    return _user(app_of(request).accounts.create_user(body.name, body.password, body.bindings))


@router.patch("/users/{user}")
@rule(
    Action.MANAGE_USERS, targets.server_wide, "user.change", audit_fields=("bindings", "disabled")
)
def change_user(request: Request, user: str, body: UserChange) -> dict[str, Any]:
    """Any change ends the user's sessions at once."""
    accounts = app_of(request).accounts
    accounts.get_user(user)  # NotFound first
    record = None
    if body.bindings is not None:
        _bindings(body.bindings)
        record = accounts.set_roles(user, body.bindings)
    if body.password is not None:
        record = accounts.set_password(user, body.password)
    if body.disabled is not None:
        record = accounts.set_disabled(user, body.disabled)
    return _user(record or accounts.get_user(user))


# -------------------------------------------------------------------------------- tokens


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Line, Field(min_length=1, max_length=100)]
    bindings: Bindings
    expires: Annotated[Line, Field(max_length=20)] = "90d"


@router.get("/tokens")
@rule(Action.MANAGE_TOKENS, targets.anywhere, "tokens.list")
def list_tokens(request: Request) -> list[dict[str, Any]]:
    """Tokens whose every namespace the caller administers (never a token's secret)."""
    principal = principal_of(request)
    return [
        _token(t)
        for t in app_of(request).accounts.list_tokens()
        if _may_manage(principal, t.bindings)
    ]


@router.post("/tokens", status_code=201)
@rule(Action.MANAGE_TOKENS, targets.grant, "token.create")
def create_token(request: Request, body: TokenIn) -> dict[str, Any]:
    """A new token; its plaintext is in this response and nowhere else, ever."""
    principal = principal_of(request)
    _bindings(body.bindings)
    if not body.bindings:
        raise ParameterError("a token needs at least one namespace binding")
    decision = authorize_grant(principal, parse_bindings(body.bindings))
    if not decision:
        raise Forbidden(decision.reason)
    plaintext, record = app_of(request).accounts.create_token(
        body.name, body.bindings, expires=body.expires, created_by=principal.name
    )
    return {**_token(record), "token": plaintext}


@router.post("/tokens/{token_id}/revoke")
@rule(Action.MANAGE_TOKENS, targets.anywhere, "token.revoke")
def revoke_token(request: Request, token_id: str) -> dict[str, Any]:
    """Revoke at once: the next request with it is refused."""
    accounts = app_of(request).accounts
    record = accounts.get_token(token_id)
    if not _may_manage(principal_of(request), record.bindings):
        raise Forbidden(f"may not revoke token {token_id}: it binds namespaces you do not manage")
    accounts.revoke_token(token_id)
    return _token(accounts.get_token(token_id))


def _may_manage(principal: Any, bindings: Any) -> bool:
    resources = [Resource(ns, "token") for ns in bindings]
    return bool(authorize_all(principal, Action.MANAGE_TOKENS, resources))


# --------------------------------------------------------------------------------- audit


@router.get("/audit")
@rule(Action.READ_AUDIT, targets.anywhere)
def list_audit(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    namespace: str | None = None,
    outcome: str | None = None,
    since: Since | None = None,
    before: BeforeId | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Newest first; records of namespaces the caller administers (all, for ``*`` admins).
    Page on with ``before=<next_before>``."""
    scope = scope_of(request, Action.READ_AUDIT)
    filt = AuditFilter(
        actor=actor,
        action=action,
        namespace=namespace,
        outcome=outcome,
        since=since,
        before=before,
        limit=limit,
    )
    found = app_of(request).accounts.list_audit(filt)
    shown = [
        _audit(r)
        for r in found
        if scope.everything or (r.namespace is not None and scope.namespace(r.namespace))
    ]
    return {"items": shown, "next_before": found[-1].id if len(found) == limit else None}

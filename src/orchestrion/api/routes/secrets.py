"""Secrets: names and metadata out, values in; no route ever returns a value."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.schemas import RecordModel, SecretInfo, list_of
from orchestrion.app.secrets import MAX_SECRET_BYTES
from orchestrion.auth.principals import NAMESPACE_PATTERN, Action
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(tags=["secrets"])


class SecretValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=MAX_SECRET_BYTES)


class SecretWritten(BaseModel):
    namespace: str
    name: str
    created: bool


@router.get("/api/v1/secrets", response_model=list_of(SecretInfo))
@rule(Action.MANAGE_SECRETS, targets.anywhere, "secrets.list")
def list_secrets(
    request: Request, namespace: str | None = Query(None, pattern=NAMESPACE_PATTERN)
) -> list[RecordModel]:
    scope = scope_of(request, Action.MANAGE_SECRETS)  # names of the namespaces one manages
    found = app_of(request).secrets.list_secrets(namespace)
    return [SecretInfo.of(m) for m in found if scope.namespace(m.namespace)]


@router.put(
    "/api/v1/secrets/{namespace}/{name}",
    response_model=SecretWritten,
    responses={201: {"model": SecretWritten, "description": "Created"}},
)
@rule(Action.MANAGE_SECRETS, targets.secret, "secret.set")
def put_secret(
    request: Request, namespace: str, name: str, body: SecretValue, response: Response
) -> SecretWritten:
    created = app_of(request).secrets.set_secret(namespace, name, body.value)
    response.status_code = 201 if created else 200
    return SecretWritten(namespace=namespace, name=name, created=created)


@router.delete("/api/v1/secrets/{namespace}/{name}", status_code=204)
@rule(Action.MANAGE_SECRETS, targets.secret, "secret.delete")
def delete_secret(request: Request, namespace: str, name: str) -> Response:
    app_of(request).secrets.delete_secret(namespace, name)
    return Response(status_code=204)

"""Secrets: names and metadata out, values in; no route ever returns a value."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.scope import scope_of
from orchestrion.app import App
from orchestrion.app.secrets import MAX_SECRET_BYTES
from orchestrion.auth.principals import Action
from orchestrion.store.records import SecretMeta

__all__ = ["router"]

router = APIRouter(tags=["secrets"])


class SecretInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: str
    name: str
    key_id: str
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, meta: SecretMeta) -> SecretInfo:
        return cls(
            namespace=meta.namespace,
            name=meta.name,
            key_id=meta.key_id,
            created_at=meta.created_at,
            updated_at=meta.updated_at,
        )


class SecretValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=MAX_SECRET_BYTES)


class SecretWritten(BaseModel):
    namespace: str
    name: str
    created: bool


def _app(request: Request) -> App:
    app: App = request.app.state.orchestrion
    return app


@router.get("/api/v1/secrets", response_model=list[SecretInfo])
def list_secrets(
    request: Request, namespace: str | None = Query(None, max_length=63)
) -> list[SecretInfo]:
    scope = scope_of(request, Action.MANAGE_SECRETS)  # names of the namespaces one manages
    found = _app(request).secrets.list_secrets(namespace)
    return [SecretInfo.of(m) for m in found if scope.namespace(m.namespace)]


@router.put("/api/v1/secrets/{namespace}/{name}", response_model=SecretWritten)
def put_secret(
    request: Request, namespace: str, name: str, body: SecretValue, response: Response
) -> SecretWritten:
    created = _app(request).secrets.set_secret(namespace, name, body.value)
    response.status_code = 201 if created else 200
    return SecretWritten(namespace=namespace, name=name, created=created)


@router.delete("/api/v1/secrets/{namespace}/{name}", status_code=204)
def delete_secret(request: Request, namespace: str, name: str) -> Response:
    _app(request).secrets.delete_secret(namespace, name)
    return Response(status_code=204)

"""Broker connections: named per namespace; no route takes or returns a credential (a
connection names the secret that holds its password). And the consumers of broker
triggers: their state, lag and message counts."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.schemas import ConnectionInfo, ConsumerInfo, RecordModel, list_of
from orchestrion.auth.principals import Action
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(tags=["connections"])


class ConnectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["redis", "rabbitmq", "nats", "mqtt", "postgres", "mysql", "sqlite"]
    url: str = Field(min_length=1, max_length=2000)
    username: str | None = Field(None, min_length=1, max_length=200)
    password_secret: str | None = Field(None, min_length=1, max_length=200)
    tls: dict[str, Any] = Field(default_factory=dict)


class ConnectionWritten(BaseModel):
    namespace: str
    name: str
    created: bool


@router.get("/api/v1/connections", response_model=list_of(ConnectionInfo))
@rule(Action.READ, targets.anywhere, "connections.list")
def list_connections(
    request: Request, namespace: str | None = Query(None, max_length=63)
) -> list[RecordModel]:
    scope = scope_of(request)  # the namespaces one may read
    found = app_of(request).connections.list_connections(namespace)
    return [ConnectionInfo.of(c) for c in found if scope.namespace(c.namespace)]


@router.get("/api/v1/connections/{namespace}/{name}", response_model=ConnectionInfo)
@rule(Action.READ, targets.connection, "connection.show")
def get_connection(request: Request, namespace: str, name: str) -> RecordModel:
    return ConnectionInfo.of(app_of(request).connections.get_connection(namespace, name))


@router.put(
    "/api/v1/connections/{namespace}/{name}",
    response_model=ConnectionWritten,
    responses={201: {"model": ConnectionWritten, "description": "Created"}},
)
@rule(Action.MANAGE_CONNECTIONS, targets.connection, "connection.put")
def put_connection(
    request: Request, namespace: str, name: str, body: ConnectionBody, response: Response
) -> ConnectionWritten:
    created = app_of(request).connections.put_connection(
        namespace,
        name,
        kind=body.kind,
        url=body.url,
        username=body.username,
        password_secret=body.password_secret,
        tls=body.tls,
    )
    response.status_code = 201 if created else 200
    return ConnectionWritten(namespace=namespace, name=name, created=created)


@router.delete("/api/v1/connections/{namespace}/{name}", status_code=204)
@rule(Action.MANAGE_CONNECTIONS, targets.connection, "connection.delete")
def delete_connection(request: Request, namespace: str, name: str) -> Response:
    app_of(request).connections.delete_connection(namespace, name)
    return Response(status_code=204)


@router.get("/api/v1/consumers", response_model=list_of(ConsumerInfo))
@rule(Action.READ, targets.anywhere)
def list_consumers(request: Request) -> list[RecordModel]:
    scope = scope_of(request)
    found = app_of(request).triggers.list_consumers()
    return [ConsumerInfo.of(c) for c in found if scope.workflow(c.workflow)]

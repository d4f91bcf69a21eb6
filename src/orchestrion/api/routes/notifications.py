"""Notifications: channels and rules per namespace (an admin's to manage; every write is
audited by the guard), the outbox's deliveries with their status, and a test send. No
route takes or returns a secret: a channel names the secret holding its key or URL."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orchestrion.api.schemas import ChannelInfo, DeliveryInfo, RecordModel, RuleInfo, list_of
from orchestrion.auth.principals import Action
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of
from orchestrion.web.scope import scope_of

__all__ = ["router"]

router = APIRouter(tags=["notifications"])
_CHANNEL = "/api/v1/notifications/channels/{namespace}/{name}"
_RULE = "/api/v1/notifications/rules/{namespace}/{name}"


class ChannelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook", "slack", "smtp"]
    config: dict[str, Any] = Field(default_factory=dict)
    secret: str | None = Field(None, min_length=1, max_length=200)


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=200)
    events: list[str] = Field(min_length=1, max_length=10)
    workflows: str = Field("*", min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=20)
    template: str | None = Field(None, max_length=4000)


class ChannelTestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field("", max_length=2000)


class NotificationWritten(BaseModel):
    namespace: str
    name: str
    created: bool


@router.get("/api/v1/notifications/channels", response_model=list_of(ChannelInfo))
@rule(Action.READ, targets.anywhere, "notification.channels")
def list_channels(
    request: Request, namespace: str | None = Query(None, max_length=63)
) -> list[RecordModel]:
    scope = scope_of(request)
    found = app_of(request).notifications.list_channels(namespace)
    return [ChannelInfo.of(c) for c in found if scope.namespace(c.namespace)]


@router.put(
    _CHANNEL,
    response_model=NotificationWritten,
    responses={201: {"model": NotificationWritten, "description": "Created"}},
)
@rule(Action.MANAGE_NOTIFICATIONS, targets.notification, "notification.channel.put")
def put_channel(
    request: Request, namespace: str, name: str, body: ChannelBody, response: Response
) -> NotificationWritten:
    created = app_of(request).notifications.put_channel(
        namespace, name, kind=body.kind, config=body.config, secret=body.secret
    )
    response.status_code = 201 if created else 200
    return NotificationWritten(namespace=namespace, name=name, created=created)


@router.delete(_CHANNEL, status_code=204)
@rule(Action.MANAGE_NOTIFICATIONS, targets.notification, "notification.channel.delete")
def delete_channel(request: Request, namespace: str, name: str) -> Response:
    app_of(request).notifications.delete_channel(namespace, name)
    return Response(status_code=204)


@router.post(_CHANNEL + "/test", status_code=204)
@rule(Action.MANAGE_NOTIFICATIONS, targets.notification, "notification.channel.test")
def test_channel(request: Request, namespace: str, name: str, body: ChannelTestBody) -> Response:
    app_of(request).notifications.test_channel(namespace, name, body.text)
    return Response(status_code=204)


@router.get("/api/v1/notifications/rules", response_model=list_of(RuleInfo))
@rule(Action.READ, targets.anywhere, "notification.rules")
def list_rules(
    request: Request, namespace: str | None = Query(None, max_length=63)
) -> list[RecordModel]:
    scope = scope_of(request)
    found = app_of(request).notifications.list_rules(namespace)
    return [RuleInfo.of(r) for r in found if scope.namespace(r.namespace)]


@router.put(
    _RULE,
    response_model=NotificationWritten,
    responses={201: {"model": NotificationWritten, "description": "Created"}},
)
@rule(Action.MANAGE_NOTIFICATIONS, targets.notification, "notification.rule.put")
def put_rule(
    request: Request, namespace: str, name: str, body: RuleBody, response: Response
) -> NotificationWritten:
    created = app_of(request).notifications.put_rule(
        namespace,
        name,
        channel=body.channel,
        events=body.events,
        workflows=body.workflows,
        tags=body.tags,
        template=body.template,
    )
    response.status_code = 201 if created else 200
    return NotificationWritten(namespace=namespace, name=name, created=created)


@router.delete(_RULE, status_code=204)
@rule(Action.MANAGE_NOTIFICATIONS, targets.notification, "notification.rule.delete")
def delete_rule(request: Request, namespace: str, name: str) -> Response:
    app_of(request).notifications.delete_rule(namespace, name)
    return Response(status_code=204)


@router.get("/api/v1/notifications/deliveries", response_model=list_of(DeliveryInfo))
@rule(Action.READ, targets.anywhere, "notification.deliveries")
def list_deliveries(
    request: Request,
    namespace: str | None = Query(None, max_length=63),
    state: Literal["pending", "sent", "failed"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[RecordModel]:
    scope = scope_of(request)
    found = app_of(request).notifications.list_deliveries(namespace, state=state, limit=limit)
    return [DeliveryInfo.of(d) for d in found if scope.namespace(d.namespace)]

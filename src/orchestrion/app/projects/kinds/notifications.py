"""Notification channels and rules of the namespace (two kinds: a rule names a channel,
so channels are created first and deleted last)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrion.app.notifications import check_channel
from orchestrion.app.projects.kinds.common import require_secret
from orchestrion.errors import NotFound, ParameterError
from orchestrion.store.notification_records import NOTIFY_EVENTS

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["CHANNELS", "RULES"]


class _Channels:
    name = "channel"
    prunable = True
    reports_unmanaged = True

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return {
            k: {"kind": v["kind"], "config": dict(v["config"]), "secret": v["secret"]}
            for k, v in project.spec.channels.items()
        }

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        return {
            c.name: {"kind": c.kind, "config": dict(c.config), "secret": c.secret}
            for c in app.notifications.list_channels(namespace)
        }

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        for key, v in desired.items():
            try:
                check_channel(v["kind"], dict(v["config"]), v["secret"])
            except ParameterError as exc:
                raise ParameterError(f"channel {key}: {exc}") from None
            require_secret(app, project.spec.namespace, v["secret"], f"channel {key}")

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        app.notifications.put_channel(
            project.spec.namespace,
            key,
            kind=value["kind"],
            config=value["config"],
            secret=value["secret"],
        )

    def remove(self, app: App, namespace: str, key: str) -> None:
        app.notifications.delete_channel(namespace, key)


class _Rules:
    name = "notification"
    prunable = True
    reports_unmanaged = True

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return {k: _rule(v) for k, v in project.spec.notifications.items()}

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        return {
            r.name: _rule(
                {
                    "channel": r.channel,
                    "events": r.events,
                    "workflows": r.workflows,
                    "tags": r.tags,
                    "template": r.template,
                }
            )
            for r in app.notifications.list_rules(namespace)
        }

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        ns = project.spec.namespace
        existing = {c.name for c in app.notifications.list_channels(ns)}
        for key, v in desired.items():
            if v["channel"] not in project.spec.channels and v["channel"] not in existing:
                raise NotFound(
                    f"notification rule {key} names channel {v['channel']!r}, which is not declared"
                )
            for event in v["events"]:
                if event not in NOTIFY_EVENTS:
                    raise ParameterError(
                        f"notification rule {key}: unknown event {event[:60]!r}: one of"
                        f" {', '.join(NOTIFY_EVENTS)}"
                    )

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        app.notifications.put_rule(
            project.spec.namespace,
            key,
            channel=value["channel"],
            events=value["events"],
            workflows=value["workflows"],
            tags=value["tags"],
            template=value["template"],
        )

    def remove(self, app: App, namespace: str, key: str) -> None:
        app.notifications.delete_rule(namespace, key)


def _rule(v: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "channel": v["channel"],
        "events": sorted(v["events"]),
        "workflows": v["workflows"],
        "tags": sorted(v["tags"]),
        "template": v["template"],
    }


CHANNELS = _Channels()
RULES = _Rules()

"""Connections (brokers, databases) of the namespace; their password by secret name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrion.app.connections import checked
from orchestrion.app.projects.kinds.common import require_secret

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["CONNECTIONS"]


class _Connections:
    name = "connection"
    prunable = True
    reports_unmanaged = True

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return {k: dict(v) for k, v in project.spec.connections.items()}

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        return {
            c.name: {
                "kind": c.kind,
                "url": c.url,
                "username": c.username,
                "secret": c.password_secret,
                "tls": dict(c.tls),
            }
            for c in app.connections.list_connections(namespace)
        }

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        ns = project.spec.namespace
        for key, v in desired.items():
            checked(ns, key, v["kind"], v["url"], v["username"], v["secret"], dict(v["tls"]))
            require_secret(app, ns, v["secret"], f"connection {key}")

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        app.connections.put_connection(
            project.spec.namespace,
            key,
            kind=value["kind"],
            url=value["url"],
            username=value["username"],
            password_secret=value["secret"],
            tls=value["tls"],
        )

    def remove(self, app: App, namespace: str, key: str) -> None:
        app.connections.delete_connection(namespace, key)


CONNECTIONS = _Connections()

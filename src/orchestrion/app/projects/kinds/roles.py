"""Role bindings in the namespace: which user has which role here (a user's roles in
other namespaces are left as they are)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrion.errors import NotFound

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.auth.principals import Principal
    from orchestrion.spec.project import LoadedProject

__all__ = ["ROLES"]


class _Roles:
    name = "role"
    prunable = True
    reports_unmanaged = True

    def desired(self, project: LoadedProject) -> dict[str, Any]:
        return dict(project.spec.roles)

    def read_current(self, app: App, namespace: str) -> dict[str, Any]:
        return {
            u.name: u.bindings[namespace]
            for u in app.accounts.list_users()
            if namespace in u.bindings
        }

    def check(self, app: App, project: LoadedProject, desired: Mapping[str, Any]) -> None:
        users = {u.name for u in app.accounts.list_users()}
        for user in desired:
            if user not in users:
                raise NotFound(
                    f"role binding names user {user[:100]!r}, who does not exist (create the"
                    " user first: `orchestrion users create`)"
                )

    def put(
        self, app: App, project: LoadedProject, key: str, value: Any, by: Principal | None
    ) -> None:
        bindings = dict(app.accounts.get_user(key).bindings)
        bindings[project.spec.namespace] = str(value)
        app.accounts.set_roles(key, bindings)

    def remove(self, app: App, namespace: str, key: str) -> None:
        bindings = dict(app.accounts.get_user(key).bindings)
        bindings.pop(namespace, None)
        app.accounts.set_roles(key, bindings)


ROLES = _Roles()

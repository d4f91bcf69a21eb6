"""What several kinds share: the secrets a namespace has, for reference checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrion.errors import NotFound

if TYPE_CHECKING:
    from orchestrion.app import App

__all__ = ["require_secret"]


def require_secret(app: App, namespace: str, name: str | None, what: str) -> None:
    """`NotFound` unless the namespace has a secret `name` (None: nothing to check)."""
    if name is None:
        return
    names = {s.name for s in app.secrets.list_secrets(namespace)}
    if name not in names:
        raise NotFound(
            f"{what} names secret {namespace}/{name}, which does not exist (create it with"
            f" `orchestrion secrets set {namespace}/{name}`)"
        )

"""What every handler of either face needs first: the `App` and the principal of a request."""

from __future__ import annotations

from starlette.requests import Request

from orchestrion.app import App
from orchestrion.auth.principals import Principal
from orchestrion.errors import AuthError

__all__ = ["app_of", "principal_of"]


def app_of(request: Request) -> App:
    """The `App` the server was built over (`orchestrion.server.create_server`)."""
    app: App = request.app.state.orchestrion
    return app


def principal_of(request: Request) -> Principal:
    """Who is calling; `guard.Authenticate` found them before any handler runs."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # pragma: no cover - the middleware guarantees one
        raise AuthError("not signed in")
    return principal

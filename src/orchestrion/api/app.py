"""`create_api(app)`: the REST API as an ASGI application over one `App`."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from orchestrion.api.errors import install_error_handlers
from orchestrion.api.guard import Authenticate, guard
from orchestrion.api.limits import BodyLimit
from orchestrion.api.routes import (
    accounts,
    queues,
    runs,
    secrets,
    stream,
    system,
    triggers,
    workflows,
)
from orchestrion.app import App
from orchestrion.ui import router as ui_router

__all__ = ["MAX_BODY_BYTES", "create_api"]

#: Bodies above this are refused with 413 before any handler reads them.
MAX_BODY_BYTES = 1_048_576


def create_api(app: App, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    api = FastAPI(
        title="Orchestrion",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # Every route passes the guard: its rule in `api.policy` decides, or it is refused.
        dependencies=[Depends(guard)],
    )
    api.state.orchestrion = app
    install_error_handlers(api)
    for module in (workflows, runs, system, stream, triggers, accounts, secrets, queues):
        api.include_router(module.router)
    api.include_router(ui_router)  # the web UI at /, after the API's routes
    api.add_middleware(Authenticate, orchestrion=app)
    api.add_middleware(BodyLimit, max_bytes=max_body_bytes)  # outermost: refuse before reading
    return api

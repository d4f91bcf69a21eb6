"""Template libraries held by the server (docs/templates.md): list, show, push. A push is
checked like a library file and a version is written once (other content under an existing
version is a 409). Libraries are server-wide: reading needs a role somewhere, pushing the
editor role somewhere (a version only matters to workflows that name it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response
from pydantic import BaseModel

from orchestrion.auth.principals import Action
from orchestrion.spec.templates.library import TemplateLibrary
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["router"]

router = APIRouter(tags=["templates"])

_Name = Annotated[str, Path(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")]
_Version = Annotated[int, Path(ge=1, le=999_999_999)]


class TemplateInfo(BaseModel):
    """One template of a library: its description and typed params."""

    name: str
    description: str
    params: dict[str, Any]


class LibraryInfo(BaseModel):
    """One library version held by the server."""

    name: str
    version: int
    digest: str
    description: str
    templates: list[TemplateInfo]
    pushed_by: str | None = None
    pushed_at: float | None = None


class LibraryDetail(LibraryInfo):
    """A library version with its full text, as a library file holds it."""

    library: dict[str, Any]


class LibraryPushed(BaseModel):
    name: str
    version: int
    digest: str
    #: "created", or "unchanged" when the same content was stored already
    outcome: str


def _info(lib: TemplateLibrary, pushed_by: str | None, pushed_at: float | None) -> LibraryInfo:
    return LibraryInfo.model_validate(
        {**lib.summary(), "pushed_by": pushed_by, "pushed_at": pushed_at}
    )


@router.get("/api/v1/templates", response_model=list[LibraryInfo])
@rule(Action.READ, targets.anywhere, "templates.list")
def list_libraries(request: Request) -> list[LibraryInfo]:
    """Every library version the server holds, by name and version."""
    from orchestrion.app.templates import parsed

    found = app_of(request).templates.list_libraries()
    return [_info(parsed(row), row.pushed_by, row.pushed_at) for row in found]


@router.get("/api/v1/templates/{name}/{version}", response_model=LibraryDetail)
@rule(Action.READ, targets.anywhere, "template.show")
def get_library(request: Request, name: _Name, version: _Version) -> LibraryDetail:
    """One library version, with its text (what ``orchestrion templates show`` prints)."""
    lib = app_of(request).templates.library(name, version)
    info = _info(lib, None, None)
    return LibraryDetail(**info.model_dump(), library=lib.to_data())


@router.post(
    "/api/v1/templates",
    response_model=LibraryPushed,
    status_code=201,
    responses={200: {"model": LibraryPushed, "description": "The same content was stored"}},
)
@rule(Action.SETTINGS, targets.server_wide, "template.push")
def push_library(
    request: Request, response: Response, body: Annotated[dict[str, Any], Body()]
) -> LibraryPushed:
    """Store a library version (the JSON of a library file: library, version, templates);
    every template body must make a valid task."""
    from orchestrion.spec.templates.library import library_from_data
    from orchestrion.spec.yaml.libraries import check_library

    lib = library_from_data(body, source="the library")
    check_library(lib)
    outcome = app_of(request).templates.push(lib)
    response.status_code = 201 if outcome == "created" else 200
    return LibraryPushed(name=lib.name, version=lib.version, digest=lib.digest, outcome=outcome)

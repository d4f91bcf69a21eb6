"""A version's code: uploaded (content-addressed) before the spec that names it, and read
back per workflow version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from orchestrion.auth.principals import Action
from orchestrion.errors import NotFound, SpecError
from orchestrion.spec.bundle import MAX_BUNDLE_FILES, CodeBundle
from orchestrion.web import targets
from orchestrion.web.policy import rule
from orchestrion.web.request import app_of

__all__ = ["Code", "CodeStored", "router"]

router = APIRouter(tags=["workflows"])

Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256, hex")]


class Code(BaseModel):
    """A version's code: each file's text by path, relative to the project root, and the
    folders imports resolve against (``""``: the root)."""

    paths: list[str] = Field(min_length=1, max_length=16)
    files: dict[str, str] = Field(min_length=1, max_length=MAX_BUNDLE_FILES)


class CodeStored(BaseModel):
    """What the server kept."""

    digest: str
    files: int
    bytes: int
    #: False when the same code was stored before (uploads are idempotent)
    created: bool


@router.put("/api/v1/code/{digest}", response_model=CodeStored)
@rule(Action.DEPLOY, targets.anywhere, "code.upload")
def upload_code(request: Request, digest: Digest, body: Code) -> CodeStored:
    """Store a version's code under its digest, ahead of registering the spec that names
    it (``spec.code``); the files must hash to `digest`. Idempotent."""
    bundle = CodeBundle.from_wire(body.model_dump())
    if bundle.digest != digest:
        raise SpecError(f"the files hash to {bundle.digest}, not to {digest}")
    created = app_of(request).workflows.store_code(bundle)
    return CodeStored(digest=digest, files=len(bundle.files), bytes=bundle.size, created=created)


@router.get("/api/v1/workflows/{name}/code", response_model=Code)
@rule(Action.READ, targets.workflow)
def workflow_code(request: Request, name: str, version: str | None = None) -> Code:
    """The code of a workflow version (the current one by default); 404 when it carries
    none (its tasks call installed modules only)."""
    app = app_of(request)
    spec = app.workflows.workflow(name, version)
    if spec.code is None:
        raise NotFound(f"workflow {name!r} version {spec.version} carries no code")
    wire = app.workflows.code(spec.code).to_wire()
    return Code(paths=wire["paths"], files=wire["files"])

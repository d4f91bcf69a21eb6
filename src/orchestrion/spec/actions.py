"""What a task does: the four action kinds a task (or its undo) runs, one model each.

A Python action names its callable by reference, resolved by workers only; the others are
data whose string fields may be templates over ``params``, ``tasks`` and ``item``, checked
when the workflow is validated (`orchestrion.spec.validation`) and rendered by the worker.
`Action` is their union, told apart by ``kind``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from orchestrion.spec.fields import Bool, Duration, FrozenModel, Int, Line, Name, Str

__all__ = ["Action", "HttpAction", "PythonAction", "ShellAction", "SubWorkflowAction"]


class PythonAction(FrozenModel):
    """Call a Python function, named by reference so that the spec stays data: only workers
    resolve it."""

    kind: Literal["python"] = "python"
    #: ``module:qualname`` or ``path/to/file.py:qualname``.
    ref: Line = Field(min_length=1, max_length=500)
    is_async: Bool = False


class ShellAction(FrozenModel):
    """A process. Values reach it only as argv elements or environment variables."""

    kind: Literal["shell"] = "shell"
    #: argv, each element a template; no shell parses it.
    argv: tuple[Str, ...] | None = None
    #: A bash script whose text is never templated: parameters arrive as ``env``.
    script: Str | None = None
    env: dict[str, Str] = Field(default_factory=dict)
    cwd: Str | None = None
    #: Parse stdout as JSON for the result; otherwise the result is the last stdout line.
    json_output: Bool = False

    @model_validator(mode="after")
    def _one_form(self) -> ShellAction:
        if (self.argv is None) == (self.script is None):
            raise ValueError("a shell task needs exactly one of 'argv' or 'script'")
        if self.argv is not None and not self.argv:
            raise ValueError("'argv' must not be empty")
        for key in self.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"bad environment variable name {key!r}")
        return self


class HttpAction(FrozenModel):
    """Send one HTTP request; the task fails unless the status is one of `expect_status` (by default
    any 2xx)."""

    kind: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Str = Field(min_length=1, max_length=4096)
    headers: dict[str, Str] = Field(default_factory=dict)
    #: A JSON body; string leaves may be templates.
    json_body: Any = None
    expect_status: tuple[Annotated[Int, Field(ge=100, le=599)], ...] = ()
    timeout: Duration = 30.0


class SubWorkflowAction(FrozenModel):
    """Start a run of another workflow and wait for it to finish: the task's result is the
    child run's leaf results."""

    kind: Literal["workflow"] = "workflow"
    workflow: Name
    #: Child run parameters; string values may be templates.
    params: dict[str, Any] = Field(default_factory=dict)


Action = Annotated[
    PythonAction | ShellAction | HttpAction | SubWorkflowAction, Field(discriminator="kind")
]

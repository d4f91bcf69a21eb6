"""The field types every spec model is built from: strict scalars, names and the base model.

Lists must be accepted for tuples (YAML and JSON have no tuples), but scalars are strict:
``"3"`` is not an int and ``"no"`` is not a bool, whatever YAML 1.1 thought. The name
patterns live here too, so that the loaders, the JSON Schema and the CLI check a name
exactly as the models do.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from orchestrion.spec.durations import parse_duration

__all__ = [
    "ENV_NAME_PATTERN",
    "LABEL_PATTERN",
    "MAX_LABELS",
    "NAME_PATTERN",
    "SECRET_NAME_PATTERN",
    "Bool",
    "Duration",
    "Float",
    "FrozenModel",
    "Int",
    "Label",
    "Name",
    "Str",
]

#: A workflow, task or parameter name.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$"
#: A secret's name inside its namespace (no ``/``: a task can only name its own namespace's).
SECRET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"
#: An environment variable a task's secret is handed in.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: A worker label's key or value (``orchestrion worker --label gpu=a100``).
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$"
#: Most labels a task may require (a worker's claims enumerate subsets of its labels).
MAX_LABELS = 8

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
#: Seconds, written as a number or as a duration string (``90s``, ``5m``, ``1h30m``).
Duration = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Strict(), Field(pattern=NAME_PATTERN)]
Label = Annotated[str, Strict(), Field(pattern=LABEL_PATTERN)]


class FrozenModel(BaseModel):
    """The base of every spec model: immutable (a spec is a value, hashed for its
    version), and an unknown field is an error rather than silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

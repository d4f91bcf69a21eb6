"""The options of a ``sql`` task (`orchestrion.kinds.sql`), apart so that the code that runs
the statement (`orchestrion.kinds.sql_run`) and the kind share them without a cycle."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from orchestrion.spec.fields import SECRET_NAME_PATTERN, Duration, Int, Str

#: Seconds, or text such as ``90s`` or ``5m`` (what the JSON Schema says of it).
_Seconds = Annotated[
    Duration,
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^\s*([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+\s*$"},
            ]
        }
    ),
]

__all__ = ["SqlOptions"]


class SqlOptions(BaseModel):
    """The options of a ``sql`` task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: A connection of the workflow's namespace whose kind is postgres, mysql or sqlite.
    connection: Str = Field(pattern=SECRET_NAME_PATTERN, description="A database connection.")
    #: One statement; values as ``:name`` bind parameters. Never templated.
    query: Str = Field(
        min_length=1,
        max_length=100_000,
        description="One SQL statement; values as :name bind parameters (never templated).",
    )
    #: Bind parameter values; string leaves may be templates.
    params: dict[Str, Any] = Field(
        default_factory=dict,
        description="Values of the query's :name parameters; may hold {{ }} templates.",
    )
    result: Literal["rowcount", "rows", "first", "none"] = Field(
        default="rowcount",
        description="rowcount (rows affected), rows (a list of objects, at most max_rows),"
        " first (the first row or null), or none.",
    )
    max_rows: Int = Field(default=1000, ge=1, le=100_000, description="The cap of 'rows'.")
    #: The statement timeout (also capped by the task's timeout).
    timeout: _Seconds = Field(
        default=300.0, gt=0, le=86_400, description="Statement timeout (seconds or '5m')."
    )

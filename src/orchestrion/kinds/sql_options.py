"""The options of a ``sql`` task (`orchestrion.kinds.sql`) and its bind parameters, apart
so that the kind and the code that runs the statement (`orchestrion.kinds.sql_run`) share
them without an import cycle."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

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

__all__ = ["SqlOptions", "bind_names"]

#: A ``:name`` bind parameter, as SQLAlchemy's `text()` finds them (not ``::cast``, not
#: ``\\:escaped``).
_BIND: Final = re.compile(r"(?<![:\w\\]):(\w+)(?!:)", re.UNICODE)


def bind_names(query: str) -> list[str]:
    """The bind parameter names `query` uses, in order of first use."""
    return list(dict.fromkeys(_BIND.findall(query)))


_Statement = Annotated[Str, Field(min_length=1, max_length=100_000)]


class SqlOptions(BaseModel):
    """The options of a ``sql`` task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: A connection of the workflow's namespace whose kind is postgres, mysql or sqlite.
    connection: Str = Field(pattern=SECRET_NAME_PATTERN, description="A database connection.")
    #: One statement, or a list run in order in the one transaction; values as ``:name``
    #: bind parameters. Never templated.
    query: _Statement | tuple[_Statement, ...] = Field(
        description="One SQL statement, or a list run in order in one transaction; values"
        " as :name bind parameters (never templated).",
    )
    #: Bind parameter values; string leaves may be templates.
    params: dict[Str, Any] = Field(
        default_factory=dict,
        description="Values of the query's :name parameters; may hold {{ }} templates.",
    )
    result: Literal["rowcount", "rows", "first", "none"] = Field(
        default="rowcount",
        description="rowcount (rows affected), rows (a list of objects, at most max_rows),"
        " first (the first row or null), or none; of the last statement.",
    )
    max_rows: Int = Field(default=1000, ge=1, le=100_000, description="The cap of 'rows'.")
    #: The statement timeout (also capped by the task's timeout); for a list, of them all.
    timeout: _Seconds = Field(
        default=300.0, gt=0, le=86_400, description="Statement timeout (seconds or '5m')."
    )

    @property
    def statements(self) -> tuple[str, ...]:
        """The statements to run, in order."""
        return (self.query,) if isinstance(self.query, str) else self.query

"""The JSON Schema of ``approval:`` and ``wait_for:`` (`orchestrion.spec.waits`), as
`orchestrion.spec.json_schema` puts them under ``$defs``. (An undo step takes the same
keys as a task's action, as the loader reads them; the model refuses a waiting undo.)"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["wait_defs"]

_DURATION: Final = {"$ref": "#/$defs/duration"}


def _closed(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def wait_defs() -> dict[str, Any]:
    """``approval`` and ``wait_for``, by name."""
    roles = {"enum": ["viewer", "operator", "editor", "admin"], "default": "operator"}
    approval = _closed(
        {
            "approvers": _closed(
                {"role": {**roles, "description": "The lowest role, in the namespace."}}
            ),
            "message": {"type": "string", "description": "Shown to whoever decides."},
            "timeout": _DURATION,
            "on_timeout": {"enum": ["reject", "approve", "fail"], "default": "reject"},
        },
        description="Wait for a person with the role to approve or reject (no worker held).",
    )
    http = {
        "oneOf": [
            {"type": "string", "description": "A URL: true when GET answers 2xx."},
            _closed(
                {
                    "url": {"type": "string", "minLength": 1},
                    "status": {"type": "array", "items": {"type": "integer"}},
                    "timeout": _DURATION,
                },
                required=["url"],
            ),
        ]
    }
    sql = _closed(
        {
            "connection": {"type": "string", "description": "A database connection."},
            "query": {
                "type": "string",
                "minLength": 1,
                "description": "True when it returns a row whose first column is truthy;"
                " values as :name bind parameters (never templated).",
            },
            "params": {"type": "object", "description": "Values of :name; may hold {{ }}."},
            "timeout": _DURATION,
        },
        required=["connection", "query"],
    )
    kinds = ("signal", "event", "file", "http", "sql")
    wait_for = _closed(
        {
            "signal": {"type": "string", "description": "A signal sent to the run."},
            "event": {"type": "string", "description": "An event type (POST /api/v1/events)."},
            "filter": {"type": "string", "description": "An expression over event."},
            "file": {"type": "string", "description": "A path: true once it exists."},
            "http": http,
            "sql": sql,
            "every": {**_DURATION, "description": "How often a sensor is checked."},
            "timeout": _DURATION,
            "on_timeout": {"enum": ["fail", "succeed"], "default": "fail"},
        },
        oneOf=[{"required": [k]} for k in kinds],
        description="Wait for a signal, an event or a sensor (no worker held).",
    )
    return {"approval": approval, "wait_for": wait_for}

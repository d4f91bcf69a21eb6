"""A JSON Schema (draft 2020-12) of the YAML authoring format, for editors.

Point an editor at ``schemas/workflow.schema.json`` (committed, regenerated with
``python -m orchestrion.spec.json_schema > schemas/workflow.schema.json``) to get
completion and squiggles while writing a workflow file. It is hand-built from small pieces
that mirror what `orchestrion.spec.yaml.loader` accepts, shorthands included; the loader
stays the authority (it also checks references, expressions, cron and time zones).

Task kinds (`orchestrion.spec.kinds`) add their options' schema under their name: the
committed file has the built-in ones (``sql``); ``orchestrion schema`` prints the schema
with every installed plugin kind too.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrion.auth.principals import NAMESPACE_RE
from orchestrion.spec.actions import BROKER_KINDS
from orchestrion.spec.assets import ASSET_KEY_PATTERN
from orchestrion.spec.container import PULL_POLICIES, RESULT_FORMS
from orchestrion.spec.json_schema_waits import wait_defs
from orchestrion.spec.kinds import KindRegistry, builtin_kinds
from orchestrion.spec.model import (
    LABEL_PATTERN,
    MAX_LABELS,
    NAME_PATTERN,
    SECRET_NAME_PATTERN,
    ParamType,
    TriggerRule,
)
from orchestrion.spec.template_origin import REF_PATTERN
from orchestrion.spec.yaml.loader import ACTION_KEYS

__all__ = ["render_schema", "yaml_json_schema"]

_DURATION_PATTERN = r"^\s*([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+\s*$"
_HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
_MAX_DURATION = 366 * 86400 * 10  # parse_duration's range: ten years
_IDENTIFIER = "^[A-Za-z_][A-Za-z0-9_]*$"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A closed object: the loader rejects unknown fields, so the schema does too."""
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _integer(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "description": description, **extra}


def _defs(kinds: list[str]) -> dict[str, Any]:
    return {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "duration": {
            "description": "Seconds, or text such as '90s', '5m', '1h30m', '2d'.",
            "oneOf": [
                {"type": "number", "minimum": 0, "maximum": _MAX_DURATION},
                {"type": "string", "pattern": _DURATION_PATTERN},
            ],
        },
        "expression": _string("An expression over params, tasks and item, bare or in {{ }}."),
        "stringMap": {"type": "object", "additionalProperties": {"type": "string"}},
        "param": _param(),
        "schedule": _schedule(),
        "trigger": _trigger(),
        "retry": _retry(),
        "python": _string(
            "A callable reference 'module:function' (imported by workers only).",
            pattern=r"^([A-Za-z_][\w.]*|[^:\s]+\.py):[A-Za-z_][\w.]*$",
        ),
        "shell": _shell(),
        "http": _http(),
        "workflow": _workflow_action(),
        "publish": _publish(),
        "container": _container(),
        **wait_defs(),
        "undo": _undo(kinds),
        "task": _task(kinds),
    }


def _kind_defs(registry: KindRegistry) -> dict[str, Any]:
    """Each kind's options schema under its name, the models it nests under ``NAME.Model``."""
    out: dict[str, Any] = {}
    for kind in registry.all():
        schema = kind.json_schema(ref_template=f"#/$defs/{kind.name}.{{model}}")
        for model, nested in schema.pop("$defs", {}).items():
            out[f"{kind.name}.{model}"] = nested
        out[kind.name] = schema
    return out


def _param() -> dict[str, Any]:
    types = {"enum": [member.value for member in ParamType]}
    settings = _object(
        {
            "type": types,
            "default": {"description": "Used when a run does not set the parameter."},
            "required": {"type": "boolean"},
            "enum": {"type": "array", "minItems": 1},
            "description": {"type": "string"},
        },
    )
    return {"oneOf": [types, settings]}


def _schedule() -> dict[str, Any]:
    when = _string("An ISO date or datetime; naive ones are in the schedule's time zone.")
    settings = _object(
        {
            "name": {**_ref("name"), "description": "A stable name (default: a hash)."},
            "cron": _string("Five-field cron; quote it ('*' starts a YAML alias)."),
            "every": {**_ref("duration"), "description": "A fixed interval (at least 1 s)."},
            "timezone": _string("An IANA time zone.", default="UTC"),
            "params": {
                "type": "object",
                "description": "Run parameters for each fire; templates may read fire.date,"
                " fire.time, fire.local, fire.timestamp.",
            },
            "start": when,
            "end": when,
            "catchup": {"enum": ["none", "latest", "all"], "default": "latest"},
            "max_catchup": _integer("Most missed fires made up.", minimum=1, maximum=10_000),
            "overlap": {"enum": ["skip", "queue", "cancel_previous", "allow"], "default": "allow"},
            "require_fresh": {
                "type": "array",
                "items": {"type": "string", "pattern": ASSET_KEY_PATTERN},
                "description": "Assets that must each have an event since the previous"
                " fire: a due fire waits for them.",
            },
            "jitter": {**_ref("duration"), "description": "Delay each fire by up to this."},
        },
        oneOf=[{"required": ["cron"]}, {"required": ["every"]}],
    )
    return {"oneOf": [{"type": "string"}, settings]}


def _trigger() -> dict[str, Any]:
    after = _object(
        {
            "workflow": _ref("name"),
            "outcome": {"enum": ["succeeded", "failed", "any"], "default": "succeeded"},
        },
        required=["workflow"],
    )
    broker = _object(
        {
            "kind": {"enum": list(BROKER_KINDS)},
            "connection": _string("A connection of the workflow's namespace.", minLength=1),
            "stream": _string("Redis: the stream, read by a consumer group."),
            "queue": _string("RabbitMQ: the queue."),
            "subject": _string("NATS: the JetStream subject (a durable pull consumer)."),
            "topic": _string("MQTT: the topic filter (QoS 1, a persistent session)."),
            "group": _string("Redis: the consumer group; NATS: the durable's name."),
            "key": _string("An expression over message identifying it (deduplication)."),
            "max_in_flight": _integer(
                "Most unfinished runs of this trigger (back-pressure).", minimum=1, maximum=100_000
            ),
        },
        required=["kind", "connection"],
    )
    return _object(
        {
            "event": _string("An event type; '*' matches any characters (orders.*)."),
            "after": {"oneOf": [_ref("name"), after], "description": "Start after that run."},
            "broker": {**broker, "description": "Start a run for each message."},
            "assets": {
                "type": "array",
                "items": {"type": "string", "pattern": ASSET_KEY_PATTERN},
                "minItems": 1,
                "description": "Start a run when these assets have new events (per partition).",
            },
            "when": {"enum": ["all_updated", "any_updated"], "default": "all_updated"},
            "filter": _string("An expression over event, run or message that must be true."),
            "params": {
                "type": "object",
                "description": "Run parameters; templates read event (or message; for an"
                " asset trigger, partition and assets).",
            },
        },
        oneOf=[
            {"required": ["event"]},
            {"required": ["after"]},
            {"required": ["broker"]},
            {"required": ["assets"]},
        ],
    )


def _asset_refs(description: str) -> dict[str, Any]:
    key = {"type": "string", "pattern": ASSET_KEY_PATTERN}
    ref = _object(
        {
            "asset": key,
            "partition": _string("A template over params (and item) naming the partition."),
            "max_age": {**_ref("duration"), "description": "Stale when older than this."},
        },
        required=["asset"],
    )
    return {"type": "array", "items": {"oneOf": [key, ref]}, "description": description}


def _retry() -> dict[str, Any]:
    settings = _object(
        {
            "retries": _integer("Retries after the first attempt.", minimum=0, maximum=1000),
            "backoff": _ref("duration"),
            "factor": {"type": "number", "minimum": 1, "maximum": 100},
            "max_delay": _ref("duration"),
            "jitter": {"type": "number", "minimum": 0, "maximum": 1},
            "retry_on": {"type": "array", "items": {"type": "string"}},
        },
    )
    return {"oneOf": [_integer("Number of retries.", minimum=0, maximum=1000), settings]}


def _shell() -> dict[str, Any]:
    argv = {"type": "array", "items": {"type": "string"}, "minItems": 1}
    settings = _object(
        {
            "argv": {**argv, "description": "The command; each element may hold templates."},
            "script": _string("A bash script; never templated: pass values through env."),
            "env": {**_ref("stringMap"), "propertyNames": {"pattern": _IDENTIFIER}},
            "cwd": {"type": "string"},
            "json_output": {"type": "boolean"},
        },
        oneOf=[{"required": ["argv"]}, {"required": ["script"]}],
    )
    return {"oneOf": [argv, settings]}


def _http() -> dict[str, Any]:
    methods = _HTTP_METHODS + [method.lower() for method in _HTTP_METHODS]
    status = {"type": "integer"}
    return _object(
        {
            "method": {"enum": methods, "default": "GET"},
            "url": _string("May hold templates; their values are percent-encoded.", minLength=1),
            "headers": _ref("stringMap"),
            "json": {"description": "A JSON body; string leaves may be templates."},
            "expect_status": {"oneOf": [status, {"type": "array", "items": status}]},
            "timeout": _ref("duration"),
        },
        required=["url"],
    )


def _workflow_action() -> dict[str, Any]:
    settings = _object({"name": _ref("name"), "params": {"type": "object"}}, required=["name"])
    return {"oneOf": [_ref("name"), settings]}


def _publish() -> dict[str, Any]:
    where = "May hold templates."
    return _object(
        {
            "kind": {"enum": list(BROKER_KINDS)},
            "connection": _string("A connection of the workflow's namespace.", minLength=1),
            "stream": _string(f"Redis: the stream. {where}"),
            "queue": _string(f"RabbitMQ: the routing key (a queue's name). {where}"),
            "exchange": _string("RabbitMQ: the exchange (default: the default exchange)."),
            "subject": _string(f"NATS: the subject. {where}"),
            "topic": _string(f"MQTT: the topic. {where}"),
            "jetstream": {"type": "boolean", "default": True},
            "retain": {"type": "boolean", "default": False},
            "body": {"description": "A string as it is, anything else as JSON; templates."},
            "headers": _ref("stringMap"),
            "timeout": _ref("duration"),
        },
        required=["kind", "connection"],
    )


def _container() -> dict[str, Any]:
    argv = {"type": "array", "minItems": 1, "items": {"type": "string"}}
    result_file = _object(
        {"file": _string("An absolute path in the container: a JSON file.", pattern="^/")},
        required=["file"],
    )
    resources = _object(
        {
            "cpus": {"type": "number", "exclusiveMinimum": 0, "description": "CPU cores."},
            "memory": {
                "oneOf": [{"type": "string"}, {"type": "integer", "minimum": 1}],
                "description": "Memory limit like 512Mi, 1Gi, 300M (bytes if a number).",
            },
        }
    )
    return _object(
        {
            "image": _string("The image (built or pulled on the worker's engine).", minLength=1),
            "command": {**argv, "description": "argv; each element may hold templates."},
            "entrypoint": {**argv, "description": "Replaces the image's entrypoint."},
            "env": _ref("stringMap"),
            "secrets": _task([])["properties"]["secrets"],
            "resources": resources,
            "result": {
                "oneOf": [{"enum": list(RESULT_FORMS)}, result_file],
                "default": "last-line",
            },
            "pull": {"enum": list(PULL_POLICIES), "default": "if-missing"},
            "work_dir": _string("Where the attempt's work folder is mounted.", default="/work"),
        },
        required=["image"],
    )


def _actions(kinds: list[str]) -> dict[str, Any]:
    return {key: _ref(key) for key in (*ACTION_KEYS, *kinds)}


def _exactly_one_action(kinds: list[str]) -> list[dict[str, Any]]:
    return [{"required": [key]} for key in (*ACTION_KEYS, *kinds)]


def _undo(kinds: list[str]) -> dict[str, Any]:
    return _object(_actions(kinds), oneOf=_exactly_one_action(kinds))


def _task(kinds: list[str]) -> dict[str, Any]:
    names = {"type": "array", "items": _ref("name")}
    properties = {
        **_actions(kinds),
        "depends_on": {"oneOf": [_ref("name"), names]},
        "inputs": {"type": "object", "propertyNames": {"pattern": _IDENTIFIER}},
        "when": _ref("expression"),
        "trigger_rule": {"enum": [rule.value for rule in TriggerRule]},
        "map": _ref("expression"),
        "retry": _ref("retry"),
        "timeout": _ref("duration"),
        "concurrency": _integer("Most task runs of this task at once.", minimum=1),
        "concurrency_key": {
            "type": "string",
            "description": "Key template; at most key_limit task runs per key at once.",
        },
        "key_limit": _integer("Most running task runs with the same key.", minimum=1),
        "priority": _integer("Higher runs first.", minimum=-1000, maximum=1000),
        "queue": _ref("name"),
        "requires": {
            "type": "object",
            "description": "Worker labels this task needs (orchestrion worker --label k=v).",
            "maxProperties": MAX_LABELS,
            "propertyNames": {"pattern": LABEL_PATTERN},
            "additionalProperties": {"type": "string", "pattern": LABEL_PATTERN},
        },
        "undo": _ref("undo"),
        "description": {"type": "string"},
        "executor": {
            "enum": ["thread", "process"],
            "description": "Where a Python task's code runs: process (a child process per"
            " attempt, killed on timeout/cancel) or thread; unset: the worker's --executor.",
        },
        "cache": {
            "description": "Reuse the result of an earlier run with the same key"
            " (docs/caching.md): true for the defaults, or {key, ttl}.",
            "oneOf": [
                {"type": "boolean"},
                _object(
                    {
                        "key": {
                            "type": "string",
                            "description": "An expression over params and inputs; its value"
                            " replaces the default key (the inputs and the code version).",
                        },
                        "ttl": {**_ref("duration"), "description": "Default 7d."},
                    }
                ),
            ],
        },
        "secrets": {
            "type": "object",
            "description": "Environment variable -> secret name in the workflow's namespace;"
            " resolved by the worker, never templated.",
            "propertyNames": {"pattern": _IDENTIFIER},
            "additionalProperties": {"type": "string", "pattern": SECRET_NAME_PATTERN},
        },
        "produces": _asset_refs("Data assets a success updates (an asset event each)."),
        "consumes": _asset_refs("Data assets the task reads (lineage)."),
        "uses": {
            "type": "string",
            "pattern": REF_PATTERN,
            "description": "A template to expand, library/template@version"
            " (docs/templates.md); the task then sets no action of its own.",
        },
        "with": {"type": "object", "description": "The template's parameter values."},
    }
    uses = [{"required": ["uses"]}]
    return _object(properties, oneOf=[*_exactly_one_action(kinds), *uses])


def yaml_json_schema(kinds: KindRegistry | None = None) -> dict[str, Any]:
    """The JSON Schema of one workflow file, as a JSON-ready dict, with the task kinds of
    `kinds` (default: the built-in ones)."""
    registry = builtin_kinds() if kinds is None else kinds
    properties = {
        "name": _ref("name"),
        "description": {"type": "string"},
        "params": {"type": "object", "additionalProperties": _ref("param")},
        "timeout": _ref("duration"),
        "max_active_runs": _integer("Most runs of this workflow at once.", minimum=1),
        "sla": _object(
            {"deadline": _ref("duration"), "expected_duration": _ref("duration")},
            description="When a run is late (notifications' run.late): not finished "
            "`deadline` after its nominal start, or running longer than `expected_duration`.",
            minProperties=1,
        ),
        "schedule": _ref("schedule"),
        "schedules": {"type": "array", "items": _ref("schedule")},
        "triggers": {"type": "array", "items": _ref("trigger")},
        "tags": {"type": "array", "items": {"type": "string"}},
        "namespace": {
            "type": "string",
            "description": "The group (e.g. a team) that roles are granted on; "
            "also the scope of the workflow's secrets.",
            "pattern": "^" + NAMESPACE_RE.pattern + "$",
            "default": "default",
        },
        "tasks": {
            "type": "object",
            "description": "Task name -> task, in order.",
            "minProperties": 1,
            "propertyNames": {"pattern": NAME_PATTERN},
            "additionalProperties": _ref("task"),
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://orchestrion.dev/schemas/workflow.schema.json",
        "title": "Orchestrion workflow",
        **_object(properties, required=["name", "tasks"]),
        "not": {"required": ["schedule", "schedules"]},
        "$defs": {**_defs(registry.names()), **_kind_defs(registry)},
    }


def render_schema() -> str:
    """The exact text of ``schemas/workflow.schema.json``."""
    return json.dumps(yaml_json_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(render_schema(), end="")

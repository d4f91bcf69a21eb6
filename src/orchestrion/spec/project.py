"""Declarative projects (issue 19): what one namespace should hold, as data.

A project file (YAML) or a Python mapping declares a namespace's workflows (files or
folders, relative to the file), schedules' states, queue limits, connections, notification
channels and rules, role bindings, and admission policies (files or folders). This
module only reads and checks the declaration and loads the workflow files; comparing it
with what is deployed and applying it is `orchestrion.app.projects`.

Secrets are named, never given: a connection or channel that holds a literal credential
(``password``, ``token``, a URL with a password) is refused here, before anything is read
from the store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from orchestrion.errors import SpecError
from orchestrion.spec.loading import LoadedWorkflow, load_workflows
from orchestrion.spec.policies.loading import policy_documents
from orchestrion.spec.rules import NAME_PATTERN, SECRET_NAME_PATTERN
from orchestrion.spec.yaml.reader import decode_text, read_document

__all__ = [
    "LoadedProject",
    "ProjectSpec",
    "load_project",
    "load_project_namespace",
    "load_project_policies",
    "parse_project",
    "project_from_data",
]

#: What a project file may hold at its top level.
TOP_KEYS = (
    "project", "namespace", "workflows", "schedules", "queues", "connections", "channels",
    "notifications", "roles", "policies", "prune",
)  # fmt: skip
SCHEDULE_STATES = ("active", "paused")
ROLE_NAMES = ("viewer", "operator", "editor", "admin")
#: Keys that would hold a credential itself: the declaration names a secret instead.
_LITERAL_SECRETS = ("password", "token", "secret_value", "key", "private_key")
_RULE_FIELDS = ("channel", "workflows", "tags", "template")
_WORKFLOW_SUFFIXES = (".yaml", ".yml", ".py")
MAX_BYTES = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectSpec:
    """A namespace's declared state (the file's content, checked; paths not yet read)."""

    project: str
    namespace: str
    #: Workflow files or folders, relative to the project file's folder.
    workflows: tuple[str, ...] = ()
    #: Workflow name -> ``active`` or ``paused``.
    schedules: Mapping[str, str] = field(default_factory=dict)
    #: Queue -> at most this many task runs at once.
    queues: Mapping[str, int] = field(default_factory=dict)
    #: Name -> {kind, url, username?, secret?, tls?}.
    connections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Name -> {kind, config?, secret?}.
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Rule name -> {channel, on, workflows?, tags?, template?}.
    notifications: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: User -> role in this namespace.
    roles: Mapping[str, str] = field(default_factory=dict)
    #: Policy files or folders (their documents: `LoadedProject.policies`).
    policies: tuple[str, ...] = ()
    #: Delete what the namespace holds but the file does not declare (see the docs).
    prune: bool = False

    def to_data(self) -> dict[str, Any]:
        """The declaration as JSON data (the wire form; `project_from_data` reads it)."""
        return {
            "project": self.project,
            "namespace": self.namespace,
            "workflows": list(self.workflows),
            "schedules": dict(self.schedules),
            "queues": {k: {"limit": v} for k, v in self.queues.items()},
            "connections": {k: dict(v) for k, v in self.connections.items()},
            "channels": {
                k: {**v["config"], "kind": v["kind"], "secret": v["secret"]}
                for k, v in self.channels.items()
            },
            "notifications": [
                {"name": k, "on": v["events"], **{f: v[f] for f in _RULE_FIELDS}}
                for k, v in self.notifications.items()
            ],
            "roles": dict(self.roles),
            "policies": list(self.policies),
            "prune": self.prune,
        }


@dataclass(frozen=True, slots=True)
class LoadedProject:
    """A declaration with its workflows loaded and checked (each in its namespace)."""

    spec: ProjectSpec
    workflows: tuple[LoadedWorkflow, ...] = ()
    #: Where it was read from (a file, a request, ``git:<repo>@<commit>``).
    source: str = "<data>"
    #: The admission policy documents of the declared policy files, each checked.
    policies: tuple[dict[str, Any], ...] = ()


def load_project(path: str | os.PathLike[str]) -> LoadedProject:
    """Read a project file and every workflow file it names; `SpecError` names the file,
    the field and the reason of the first problem."""
    file = Path(path)
    source = os.fspath(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise SpecError(
            f"cannot read the project file: {exc.strerror or exc}", source=source
        ) from None
    spec = parse_project(raw, source=source)
    workflows = load_project_workflows(spec, file.parent)
    return LoadedProject(spec, workflows, source, load_project_policies(spec, file.parent))


def load_project_policies(spec: ProjectSpec, base: Path) -> tuple[dict[str, Any], ...]:
    """The policy documents of the declared files and folders (a folder: its .yaml and
    .yml files, sorted), each checked (`PolicyError` names the file and field); a policy
    name declared twice is an error."""
    found: dict[str, dict[str, Any]] = {}
    for entry in spec.policies:
        target = (base / entry).resolve()
        if target.is_dir():
            files = sorted(p for p in target.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
        elif target.exists():
            files = [target]
        else:
            raise SpecError(f"no such policy file or folder: {entry}", path="policies")
        for file in files:
            for document in policy_documents(file.read_bytes(), source=str(file)):
                name = str(document["policy"])
                if name in found:
                    raise SpecError(f"policy {name!r} is declared twice", source=str(file))
                found[name] = document
    return tuple(found.values())


def parse_project(text: str | bytes, *, source: str = "<string>") -> ProjectSpec:
    """A project declaration from YAML text (safe YAML: no tags, aliases or code)."""
    data, _marks, _keys = read_document(decode_text(text, source, MAX_BYTES), source, 20)
    return project_from_data(data, source=source)


def load_project_workflows(spec: ProjectSpec, base: Path) -> tuple[LoadedWorkflow, ...]:
    """The workflows of the declared files and folders (a folder: its .yaml, .yml and .py
    files, sorted, not recursing), in the project's namespace; a workflow that names
    another namespace, or a name declared twice, is an error."""
    loaded: dict[str, LoadedWorkflow] = {}
    for entry in spec.workflows:
        target = (base / entry).resolve()
        if target.is_dir():
            files = sorted(p for p in target.iterdir() if p.suffix.lower() in _WORKFLOW_SUFFIXES)
        elif target.exists():
            files = [target]
        else:
            raise SpecError(f"no such workflow file or folder: {entry}", path="workflows")
        for file in files:
            for item in load_workflows(file, root=base):
                item = _in_namespace(item, spec.namespace, str(file))
                if item.spec.name in loaded:
                    raise SpecError(
                        f"workflow {item.spec.name!r} is declared twice", source=str(file)
                    )
                loaded[item.spec.name] = item
    return tuple(loaded.values())


def load_project_namespace(
    spec: ProjectSpec, workflows: list[LoadedWorkflow]
) -> tuple[LoadedWorkflow, ...]:
    """Workflows already loaded (the API's bundle) put in the project's namespace, each
    name once."""
    out: dict[str, LoadedWorkflow] = {}
    for item in workflows:
        item = _in_namespace(item, spec.namespace, "request")
        if item.spec.name in out:
            raise SpecError(f"workflow {item.spec.name!r} is declared twice", source="request")
        out[item.spec.name] = item
    return tuple(out.values())


def _in_namespace(item: LoadedWorkflow, namespace: str, source: str) -> LoadedWorkflow:
    """The workflow in the project's namespace: one naming none takes it; one naming
    another is refused (a project deploys into its own namespace only)."""
    current = item.spec.namespace
    if current == namespace:
        return item
    if current != "default":
        raise SpecError(
            f"workflow {item.spec.name!r} is in namespace {current!r}, not the project's"
            f" {namespace!r}",
            source=source,
        )
    return msgspec.structs.replace(item, spec=item.spec.model_copy(update={"namespace": namespace}))


def project_from_data(data: Any, *, source: str = "<data>") -> ProjectSpec:
    """A declaration from a mapping (a parsed file, a Python dict, the API's body)."""
    top = _mapping(data, "the project", source)
    unknown = sorted(set(top) - set(TOP_KEYS))
    if unknown:
        raise SpecError(f"unknown key {unknown[0]!r}: one of {', '.join(TOP_KEYS)}", source=source)
    for required in ("project", "namespace"):
        if required not in top:
            raise SpecError(f"{required!r} is required", source=source, path=required)
    prune = top.get("prune", False)
    if not isinstance(prune, bool):
        raise SpecError("prune is true or false", source=source, path="prune")
    return ProjectSpec(
        project=_name(top["project"], "project", source),
        namespace=_name(top["namespace"], "namespace", source),
        workflows=_paths(top.get("workflows", []), "workflows", source),
        schedules=_schedules(top.get("schedules", {}), source),
        queues=_queues(top.get("queues", {}), source),
        connections=_connections(top.get("connections", {}), source),
        channels=_channels(top.get("channels", {}), source),
        notifications=_rules(top.get("notifications", []), source),
        roles=_roles(top.get("roles", {}), source),
        policies=_paths(top.get("policies", []), "policies", source),
        prune=prune,
    )


# --------------------------------------------------------------------------- fields


def _mapping(value: Any, what: str, source: str, path: str | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{what} must be a mapping", source=source, path=path)
    return dict(value)


def _name(value: Any, path: str, source: str, pattern: str = NAME_PATTERN) -> str:
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        shown = repr(value)[:100]
        raise SpecError(f"bad name {shown}: letters, digits, '_' and '-'", source=source, path=path)
    return value


def _paths(value: Any, path: str, source: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise SpecError(f"{path} is a list of paths", source=source, path=path)
    for item in items:
        if os.path.isabs(item) or ".." in Path(item).parts:
            raise SpecError(
                f"{item!r} is not inside the project: paths are relative, without '..'",
                source=source,
                path=path,
            )
    return tuple(items)


def _schedules(value: Any, source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, state in _mapping(value, "schedules", source, "schedules").items():
        _name(name, f"schedules.{name}", source)
        if state not in SCHEDULE_STATES:
            raise SpecError(
                f"a schedule is 'active' or 'paused', not {str(state)[:50]!r}",
                source=source,
                path=f"schedules.{name}",
            )
        out[name] = state
    return out


def _queues(value: Any, source: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, body in _mapping(value, "queues", source, "queues").items():
        _name(name, f"queues.{name}", source)
        limit = _mapping(body, "a queue", source, f"queues.{name}").get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise SpecError(
                "limit is an integer of at least 1", source=source, path=f"queues.{name}.limit"
            )
        out[name] = limit
    return out


def _no_literal_secret(body: Mapping[str, Any], path: str, source: str) -> None:
    for key in _LITERAL_SECRETS:
        if key in body:
            raise SpecError(
                f"{key!r} would put a credential in the project file: name a secret of the"
                " namespace instead (secret: <name>)",
                source=source,
                path=f"{path}.{key}",
            )
    secret = body.get("secret")
    if secret is not None:
        _name(secret, f"{path}.secret", source, SECRET_NAME_PATTERN)


def _connections(value: Any, source: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    allowed = {"kind", "type", "url", "username", "secret", "tls"}
    for name, raw in _mapping(value, "connections", source, "connections").items():
        path = f"connections.{name}"
        _name(name, path, source)
        body = _mapping(raw, "a connection", source, path)
        _no_literal_secret(body, path, source)
        extra = sorted(set(body) - allowed)
        if extra:
            raise SpecError(f"unknown key {extra[0]!r}", source=source, path=path)
        kind = body.get("kind", body.get("type"))
        if not isinstance(kind, str) or not isinstance(body.get("url"), str):
            raise SpecError("a connection needs a kind and a url", source=source, path=path)
        out[name] = {
            "kind": kind,
            "url": body["url"],
            "username": body.get("username"),
            "secret": body.get("secret"),
            "tls": _mapping(body.get("tls"), "tls", source, f"{path}.tls"),
        }
    return out


def _channels(value: Any, source: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, raw in _mapping(value, "channels", source, "channels").items():
        path = f"channels.{name}"
        _name(name, path, source)
        body = _mapping(raw, "a channel", source, path)
        _no_literal_secret(body, path, source)
        kind = body.pop("kind", None)
        secret = body.pop("secret", None)
        if not isinstance(kind, str):
            raise SpecError(
                "a channel needs a kind (webhook, slack, smtp)", source=source, path=path
            )
        out[name] = {"kind": kind, "config": body, "secret": secret}
    return out


def _rules(value: Any, source: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, list):
        raise SpecError("notifications is a list of rules", source=source, path="notifications")
    out: dict[str, dict[str, Any]] = {}
    allowed = {"name", "on", "channel", "workflows", "tags", "template"}
    for index, raw in enumerate(value):
        path = f"notifications.{index}"
        body = _mapping(raw, "a rule", source, path)
        extra = sorted(set(body) - allowed)
        if extra:
            raise SpecError(f"unknown key {extra[0]!r}", source=source, path=path)
        name = _name(body.get("name"), f"{path}.name", source)
        events = body.get("on", [])
        events = [events] if isinstance(events, str) else events
        if not isinstance(events, list) or not events:
            raise SpecError("'on' lists the events of the rule", source=source, path=f"{path}.on")
        if name in out:
            raise SpecError(f"rule {name!r} is declared twice", source=source, path=path)
        out[name] = {
            "channel": _name(body.get("channel"), f"{path}.channel", source),
            "events": [_text(e, f"{path}.on", source) for e in events],
            "workflows": _text(body.get("workflows", "*"), f"{path}.workflows", source),
            "tags": [_text(t, f"{path}.tags", source) for t in _list(body, "tags", path, source)],
            "template": _optional_text(body.get("template"), f"{path}.template", source),
        }
    return out


def _text(value: Any, path: str, source: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"expected text, got {type(value).__name__}", source=source, path=path)
    return value


def _optional_text(value: Any, path: str, source: str) -> str | None:
    return None if value is None else _text(value, path, source)


def _list(body: Mapping[str, Any], key: str, path: str, source: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise SpecError(f"{key} is a list", source=source, path=f"{path}.{key}")
    return value


def _roles(value: Any, source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for user, role in _mapping(value, "roles", source, "roles").items():
        if not isinstance(role, str) or role not in ROLE_NAMES:
            raise SpecError(
                f"a role is one of {', '.join(ROLE_NAMES)}", source=source, path=f"roles.{user}"
            )
        out[str(user)] = role
    return out

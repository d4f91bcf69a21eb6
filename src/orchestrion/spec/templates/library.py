"""A template library: a name, a version and templates, each with typed params and a task body.

A library is data (a YAML file, a mapping built in Python, or a row on a server); the
task bodies are in the YAML task shape (``shell:``, ``python:``, ``retry:``...), and
``{{ params.x }}`` in them names the template's own parameters, filled when a workflow uses
the template (`orchestrion.spec.templates.expand`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final

import msgspec

from orchestrion.errors import SpecError
from orchestrion.spec.model import ParamSpec
from orchestrion.spec.rules import NAME_PATTERN
from orchestrion.spec.structs import Invalid

__all__ = [
    "LIBRARY_KEYS",
    "TEMPLATE_KEYS",
    "TaskTemplate",
    "TemplateLibrary",
    "canonical_json",
    "describe",
    "fits_type",
    "library_from_data",
]

LIBRARY_KEYS: Final = ("library", "version", "description", "templates")
TEMPLATE_KEYS: Final = ("description", "params", "task")
#: Highest library version (a major version number).
MAX_VERSION: Final = 999_999_999


_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "date": (str,),
    "datetime": (str,),
}


def fits_type(kind: str, value: Any) -> bool:
    """Whether `value` has the JSON type of param type `kind` (dates are checked as text)."""
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES.get(kind, (object,)))


def describe(value: Any) -> str:
    """A value as an error message shows it: its type, and its text when short."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def canonical_json(data: Any) -> str:
    """Sorted, compact JSON: what digests are taken over."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class TaskTemplate(msgspec.Struct, frozen=True):
    """One template: its parameters and its task body (YAML task shape)."""

    name: str
    params: dict[str, ParamSpec]
    task: dict[str, Any]
    description: str = ""
    #: Parameter name -> the fields its declaration wrote (a model keeps no such record):
    #: `to_data` writes those only, and `required` tells an explicit ``required`` apart.
    declared: dict[str, frozenset[str]] = msgspec.field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """The template as in a library file."""
        params = {
            name: {k: v for k, v in p.model_dump().items() if k in self._given(name)}
            for name, p in self.params.items()
        }
        return {"description": self.description, "params": params, "task": self.task}

    def required(self, name: str) -> bool:
        """A parameter without a default must be given, unless declared ``required: false``."""
        param = self.params[name]
        if param.default is not None:
            return False
        return param.required if "required" in self._given(name) else True

    def _given(self, name: str) -> frozenset[str]:
        found = self.declared.get(name)
        return found if found is not None else frozenset(self.params[name].field_names())


class TemplateLibrary(msgspec.Struct, frozen=True):
    """A versioned set of templates. `source` names where it was read (for errors)."""

    name: str
    version: int
    templates: dict[str, TaskTemplate]
    description: str = ""
    source: str = "<library>"

    def __eq__(self, other: object) -> bool:
        """Equal by content: where a library was read from is not part of it."""
        if not isinstance(other, TemplateLibrary):
            return NotImplemented
        return (self.name, self.version, self.templates, self.description) == (
            other.name,
            other.version,
            other.templates,
            other.description,
        )

    def to_data(self) -> dict[str, Any]:
        """The library as in a file (`library_from_data` reads it back)."""
        return {
            "library": self.name,
            "version": self.version,
            "description": self.description,
            "templates": {name: t.to_data() for name, t in self.templates.items()},
        }

    @property
    def digest(self) -> str:
        """``sha256:...`` of the library's canonical JSON: what a server stores it under."""
        return "sha256:" + hashlib.sha256(canonical_json(self.to_data()).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """What listings show of the library: its name, version, digest, description, and
        each template's name, description and params (the API's and the CLI's shape)."""
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "description": self.description,
            "templates": [
                {"name": name, "description": t.description, "params": t.to_data()["params"]}
                for name, t in self.templates.items()
            ],
        }

    def template_digest(self, name: str) -> str:
        """``sha256:...`` of one template with its library and version: what a task records."""
        data = {"library": self.name, "version": self.version, "template": name}
        data.update(self.templates[name].to_data())
        return "sha256:" + hashlib.sha256(canonical_json(data).encode()).hexdigest()


def library_from_data(data: Any, *, source: str) -> TemplateLibrary:
    """A library from its mapping (a parsed YAML file, JSON from the API, a Python dict).

    Raises:
        SpecError: naming `source`, the field and the problem.
    """
    if not isinstance(data, dict):
        raise SpecError("a template library must be a mapping", source=source)
    if _depth(data) > _MAX_DEPTH:  # what reads it next recurses: refuse before, by name
        raise SpecError(f"the library nests deeper than {_MAX_DEPTH} levels", source=source)
    _keys(data, LIBRARY_KEYS, "the library", source, "")
    name = data.get("library")
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise SpecError(
            "'library' must be a name (letters, digits, '_' and '-')", source=source, path="library"
        )
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise SpecError(
            f"'version' must be a positive integer (a major version), got {version!r}",
            source=source,
            path="version",
        )
    raw = data.get("templates")
    if not isinstance(raw, dict) or not raw:
        raise SpecError(
            "'templates' must be a mapping of template name to template",
            source=source,
            path="templates",
        )
    templates = {key: _template(key, body, source) for key, body in raw.items()}
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise SpecError("'description' must be text", source=source, path="description")
    return TemplateLibrary(name, version, templates, description, source)


def _template(name: Any, body: Any, source: str) -> TaskTemplate:
    path = f"templates.{name}"
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise SpecError(f"invalid template name {name!r}", source=source, path=path)
    if not isinstance(body, dict):
        raise SpecError(f"template '{name}' must be a mapping", source=source, path=path)
    _keys(body, TEMPLATE_KEYS, f"template '{name}'", source, path)
    task = body.get("task")
    if not isinstance(task, dict) or not task:
        raise SpecError(
            f"template '{name}' needs 'task': a task body such as {{shell: ...}}",
            source=source,
            path=f"{path}.task",
        )
    if "depends_on" in task:
        raise SpecError(
            "a template cannot set depends_on: it does not know the workflow's tasks"
            " (the task that uses it sets them)",
            source=source,
            path=f"{path}.task.depends_on",
        )
    description = body.get("description") or ""
    if not isinstance(description, str):
        raise SpecError("'description' must be text", source=source, path=f"{path}.description")
    params, declared = _params(body.get("params"), source, path)
    return TaskTemplate(name, params, task, description, declared)


def _params(
    raw: Any, source: str, path: str
) -> tuple[dict[str, ParamSpec], dict[str, frozenset[str]]]:
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict):
        raise SpecError("'params' must be a mapping", source=source, path=f"{path}.params")
    out: dict[str, ParamSpec] = {}
    declared: dict[str, frozenset[str]] = {}
    for name, body in raw.items():
        where = f"{path}.params.{name}"
        if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
            raise SpecError(f"invalid parameter name {name!r}", source=source, path=where)
        data = {"type": body} if isinstance(body, str) else body
        try:
            out[name] = ParamSpec.model_validate(data)
            declared[name] = frozenset(data)
        except Invalid as exc:
            first = exc.errors()[0]
            field_path = ".".join(str(p) for p in first["loc"])
            raise SpecError(
                f"{first['msg']}", source=source, path=f"{where}.{field_path}".rstrip(".")
            ) from None
    return out, declared


def _keys(
    body: dict[str, Any], allowed: tuple[str, ...], what: str, source: str, path: str
) -> None:
    for key in body:
        if key not in allowed:
            raise SpecError(
                f"unknown field {key!r} in {what} (allowed: {', '.join(allowed)})",
                source=source,
                path=f"{path}.{key}".lstrip("."),
            )


#: As deep as a YAML workflow file may nest (`orchestrion.spec.yaml.loader.MAX_DEPTH`): a
#: library pushed as JSON is held to the same bound.
_MAX_DEPTH = 50


def _depth(data: Any) -> int:
    """How deep `data` nests (its lists and mappings), counted without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if level > _MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest

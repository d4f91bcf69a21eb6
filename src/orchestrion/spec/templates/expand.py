"""A use of a template made concrete: the reference resolved, the ``with`` values checked
against the template's typed params, and ``{{ params.x }}`` in the body filled in.

Filling happens at load time so that the stored spec is concrete: what runs is what was
deployed, whatever the library becomes later. Inside a template body ``params`` means the
template's params; every other scope (``tasks``, ``item``, ``run``...) is left for run time.
A ``with`` value may itself be a run-time template (``"{{ params.day }}"``, the *workflow's*
param): it is put in place as text and evaluated when the task runs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

import msgspec

from orchestrion.errors import ExpressionError, SpecError
from orchestrion.spec.expressions import TEMPLATE_RE, compile_expression, to_text, whole_template
from orchestrion.spec.template_origin import REF_PATTERN, TemplateOrigin
from orchestrion.spec.templates.library import TaskTemplate, TemplateLibrary, describe, fits_type
from orchestrion.spec.templates.search import LibrarySource

__all__ = ["Expansion", "TemplateRef", "bind_values", "expand", "fill", "parse_ref", "resolve"]

_PLAIN_PARAM: Final = re.compile(r"params\.([A-Za-z_][A-Za-z0-9_-]*)")

#: A problem's message -> the error to raise (each caller knows where the use is written).
Fail = Callable[[str], SpecError]


class TemplateRef(msgspec.Struct, frozen=True):
    """``library/template@version``, parsed."""

    library: str
    template: str
    version: int

    def __str__(self) -> str:
        return f"{self.library}/{self.template}@{self.version}"


class Expansion(msgspec.Struct, frozen=True):
    """A use made concrete: the task body to translate, and where it came from."""

    body: dict[str, Any]
    origin: TemplateOrigin


def parse_ref(text: Any, fail: Fail) -> TemplateRef:
    """``lib/transfer@2``. A version is required: an unpinned use would change what a
    workflow runs whenever the library changes, on the next deploy, without a word."""
    if not isinstance(text, str):
        raise fail(f"'uses' must be a reference like lib/transfer@2, got {type(text).__name__}")
    lib, slash, rest = text.partition("/")
    name, at, version = rest.partition("@")
    if not slash or not lib or not name:
        raise fail(f"bad template reference {text!r}: write library/template@version")
    if not at or version == "latest":
        raise fail(
            f"template reference {text!r} needs a pinned major version, like {lib}/{name}@1"
            " (versions are pinned so a library change never changes a workflow silently)"
        )
    if not re.fullmatch(REF_PATTERN, text):
        raise fail(
            f"bad template reference {text!r}: names are letters, digits, '_' and '-',"
            " and the version a positive integer"
        )
    return TemplateRef(lib, name, int(version))


def resolve(
    ref: TemplateRef, source: LibrarySource | None, fail: Fail
) -> tuple[TemplateLibrary, TaskTemplate]:
    """The library and template `ref` names, or an error saying which part is unknown."""
    library = source.library(ref.library, ref.version) if source is not None else None
    if library is None:
        versions = source.versions(ref.library) if source is not None else []
        if not versions:
            raise fail(
                f"unknown template library {ref.library!r} (looked in --templates folders,"
                " ORCHESTRION_TEMPLATE_PATH, templates/ beside the workflow, and the server's"
                " stored libraries when deploying there)"
            )
        held = ", ".join(str(v) for v in versions)
        raise fail(f"library {ref.library!r} has no version {ref.version} (versions: {held})")
    template = library.templates.get(ref.template)
    if template is None:
        known = sorted(library.templates)
        close = difflib.get_close_matches(ref.template, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (templates: {', '.join(known)})"
        raise fail(f"library {ref.library}@{ref.version} has no template {ref.template!r}{hint}")
    return library, template


def expand(
    ref: TemplateRef,
    source: LibrarySource | None,
    given: Any,
    fail: Fail,
    fail_values: Fail | None = None,
    fail_key: Callable[[str], Fail] | None = None,
) -> Expansion:
    """The concrete task body for a use of `ref` with the `given` values (a problem with
    them raises through `fail_values`, by default `fail`)."""
    library, template = resolve(ref, source, fail)
    values = bind_values(template, ref, given, fail_values or fail, fail_key)
    body = fill_task(template.task, values, fail)
    origin = TemplateOrigin(ref=str(ref), digest=library.template_digest(ref.template))
    return Expansion(body, origin)


def bind_values(
    template: TaskTemplate,
    ref: TemplateRef,
    given: Any,
    fail: Fail,
    fail_key: Callable[[str], Fail] | None = None,
) -> dict[str, Any]:
    """Every param's value: given, else its default; unknown, missing and mistyped are errors
    (raised through `fail_key` of the value's key when given, so they point at it)."""

    def at(key: str) -> Fail:
        return fail_key(key) if fail_key is not None else fail

    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise fail(f"'with' must be a mapping of parameter to value, got {describe(given)}")
    declared = sorted(template.params)
    for key in given:
        if key not in template.params:
            close = difflib.get_close_matches(str(key), declared, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise at(str(key))(
                f"unknown parameter {key!r} for template {ref}"
                f" (params: {', '.join(declared) or 'none'}){hint}"
            )
    values: dict[str, Any] = {}
    for name, param in template.params.items():
        if name in given:
            values[name] = _checked(template, ref, name, given[name], at(name))
        elif template.required(name):
            kind = param.type.value
            raise fail(f"template {ref} needs parameter {name!r} ({kind}) in 'with'")
        else:
            values[name] = param.default
    return values


def _checked(template: TaskTemplate, ref: TemplateRef, name: str, value: Any, fail: Fail) -> Any:
    param = template.params[name]
    if _runtime(value) or (value is None and not template.required(name)):
        return value  # a run-time template is checked when the task runs
    if not fits_type(param.type.value, value):
        kind = param.type.value
        raise fail(f"parameter {name!r} of {ref} must be {kind}, got {describe(value)}")
    if param.enum is not None and value not in param.enum:
        allowed = ", ".join(repr(v) for v in param.enum)
        got = describe(value)
        raise fail(f"parameter {name!r} of {ref} must be one of {allowed}, got {got}")
    return value


def _runtime(value: Any) -> bool:
    return isinstance(value, str) and TEMPLATE_RE.search(value) is not None


#: Fields whose text is code, never filled from values (a shell script, a SQL query): the
#: same rule as a workflow's own (`orchestrion.spec.yaml.actions`), which would otherwise
#: see only the filled text.
CODE_FIELDS: Final = (("shell", "script"), ("sql", "query"))


def check_code_fields(task: dict[str, Any], fail: Fail) -> None:
    """Refuse a params template in a field that is code (see `CODE_FIELDS`)."""
    for action, key in CODE_FIELDS:
        body = task.get(action)
        text = body.get(key) if isinstance(body, dict) else None
        if isinstance(text, str) and any(
            _reads_params(m.group(1), fail) for m in TEMPLATE_RE.finditer(text)
        ):
            raise fail(
                f"a template's {action} {key} is never filled from its params (values must not"
                " become code): pass the value in 'env' (a script) or 'params' (a query)"
            )


def fill_task(task: dict[str, Any], values: dict[str, Any], fail: Fail) -> Any:
    """A template's task body filled with `values`: code fields are refused a params
    template (`check_code_fields`), and an HTTP URL's embedded values are percent-encoded,
    as a workflow's own URL is at run time (`orchestrion.spec.expressions.render_url`)."""
    check_code_fields(task, fail)
    filled = fill(task, values, fail)
    http, raw = task.get("http"), None
    if isinstance(http, dict) and isinstance(filled.get("http"), dict):
        raw = http.get("url")
    if isinstance(raw, str) and whole_template(raw) is None:
        filled["http"]["url"] = _fill_string(raw, values, fail, encode=True)
    return filled


def fill(value: Any, values: dict[str, Any], fail: Fail) -> Any:
    """`value` with the templates that read ``params`` evaluated over the template's params
    (mapping keys are left alone, as `orchestrion.spec.expressions.render` does)."""
    if isinstance(value, str):
        return _fill_string(value, values, fail)
    if isinstance(value, dict):
        return {key: fill(item, values, fail) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [fill(item, values, fail) for item in value]
    return value


def _fill_string(text: str, values: dict[str, Any], fail: Fail, *, encode: bool = False) -> Any:
    if "{{" not in text:
        return text
    inner = whole_template(text)
    if inner is not None and _reads_params(inner, fail):
        return _value(inner, values, fail)
    parts: list[str] = []
    last = 0
    for match in TEMPLATE_RE.finditer(text):
        if not _reads_params(match.group(1), fail):
            continue  # a run-time template: kept as written
        filled = to_text(_value(match.group(1), values, fail))
        parts += [text[last : match.start()], quote(filled, safe="") if encode else filled]
        last = match.end()
    parts.append(text[last:])
    return "".join(parts)


def _reads_params(expr: str, fail: Fail) -> bool:
    try:
        names = compile_expression(expr).names
    except ExpressionError as exc:
        raise fail(f"the template body holds a bad expression: {exc}") from None
    if "params" not in names:
        return False
    if names - {"params"}:
        raise fail(
            f"'{{{{{expr}}}}}' mixes the template's params with run-time values"
            f" ({', '.join(sorted(names - {'params'}))}); pass run-time values in through"
            " a param instead"
        )
    return True


def _value(expr: str, values: dict[str, Any], fail: Fail) -> Any:
    plain = _PLAIN_PARAM.fullmatch(expr.strip())
    if plain is not None and plain.group(1) in values:
        return values[plain.group(1)]  # a run-time template value stays text
    compiled = compile_expression(expr)
    late = sorted(p for p in compiled.referenced_params if _runtime(values.get(p)))
    if late:
        raise fail(
            f"'{{{{{expr}}}}}' computes with parameter {late[0]!r}, whose value is only known"
            " at run time; use it as '{{ params." + late[0] + " }}' on its own"
        )
    try:
        return compiled.evaluate({"params": values})
    except ExpressionError as exc:
        raise fail(f"the template body's {exc}") from None

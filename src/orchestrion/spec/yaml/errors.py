"""Where a workflow file's errors are: the load context and model-error -> YAML mapping.

The spec model validates the translated workflow; its errors name spec paths, which are
mapped back here to the YAML paths, lines and columns a person wrote.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrion.errors import CycleError, SpecError
from orchestrion.spec.model import NAME_PATTERN, WorkflowSpec
from orchestrion.spec.structs import Invalid
from orchestrion.spec.templates.search import LibrarySource
from orchestrion.spec.yaml.reader import (
    Mark,
    Path,
    describe,
    format_path,
    is_scalar,
    resolve_scalar,
)

__all__ = ["LoadContext", "check_keys", "expect_mapping", "suggest", "validate_spec"]


@dataclass
class LoadContext:
    """One load's state: the document, its marks, and what error mapping needs later."""

    source: str
    data: dict[str, Any]
    marks: dict[Path, Mark]
    key_marks: dict[Path, Mark]
    #: spec path prefix -> YAML path prefix, where the two shapes differ.
    pathmap: dict[Path, Path] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (task, dependency) -> the YAML path that introduced the dependency.
    origins: dict[tuple[str, str], Path] = field(default_factory=dict)
    #: Where ``uses:`` finds template libraries (None: a use is an error).
    templates: LibrarySource | None = None

    def error(self, path: Path, message: str, *, at_key: bool = False) -> SpecError:
        """A `SpecError` at `path` with its line and column (of the key itself when `at_key`, as for
        an unknown field)."""
        line, column = self.locate(path, at_key=at_key)
        return SpecError(
            message, source=self.source, path=format_path(path), line=line, column=column
        )

    def locate(self, path: Path, *, at_key: bool = False) -> Mark:
        """The line and column of `path`, or of its nearest ancestor that has one (a missing field
        is reported where its mapping is)."""
        if at_key and path in self.key_marks:
            return self.key_marks[path]
        while path not in self.marks:
            path = path[:-1]
        return self.marks[path]


def expect_mapping(ctx: LoadContext, path: Path, value: Any, what: str) -> dict[str, Any]:
    """`value`, which must be a mapping; `what` names it in the error otherwise."""
    if not isinstance(value, dict):
        raise ctx.error(path, f"{what} must be a mapping, got {describe(value)}")
    return value


def check_keys(
    ctx: LoadContext, path: Path, body: dict[str, Any], allowed: tuple[str, ...], what: str
) -> None:
    """Refuse a key of `body` that is not `allowed`, suggesting the closest allowed one: a
    misspelt optional field would otherwise be dropped without a word."""
    for key in body:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"
            raise ctx.error((*path, key), f"unknown field '{key}' in {what}{hint}", at_key=True)


def suggest(name: str, names: list[str]) -> str:
    """A ``did you mean`` hint for a misspelt `name`, or nothing when none of `names` is close."""
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def validate_spec(ctx: LoadContext, data: dict[str, Any]) -> WorkflowSpec:
    """The spec the translated `data` makes, or a `SpecError` that points at the YAML line of the
    first problem (a cycle at the dependency that closes it)."""
    try:
        return WorkflowSpec.model_validate(data)
    except Invalid as exc:
        raise _from_model(ctx, exc) from None
    except CycleError as exc:
        origin = ctx.origins.get((exc.cycle[0], exc.cycle[1]), ("tasks", exc.cycle[0]))
        line, column = ctx.locate(origin)
        # Re-run SpecError's initialiser so the CycleError (and its .cycle) gains a location.
        SpecError.__init__(
            exc, exc.detail, source=ctx.source, path=format_path(origin), line=line, column=column
        )
        raise exc from None


def _from_model(ctx: LoadContext, exc: Invalid) -> SpecError:
    errors = exc.errors()
    locs = [tuple(err["loc"]) for err in errors]
    seen: dict[Path, Any] = {}
    for err, loc in zip(errors, locs, strict=True):
        if err["type"] in ("too_short", "too_long") and any(
            other != loc and other[: len(loc)] == loc for other in locs
        ):
            continue  # an echo of a failed element on its container
        seen.setdefault(_yaml_path(ctx, loc, err["type"] == "missing"), err)
    ordered = sorted(seen.items(), key=lambda item: ctx.locate(item[0]))
    path, err = ordered[0]
    more = len(ordered) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    first = ctx.error(path, _reason(err, path) + suffix)
    first.more = tuple(ctx.error(p, _reason(e, p)) for p, e in ordered[1:])
    return first


def _yaml_path(ctx: LoadContext, loc: Path, missing: bool) -> Path:
    """A spec loc -> the YAML path a person wrote (the actions' kind tags dropped)."""
    base: Path = ()
    rest = loc
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in ctx.pathmap:
            base, rest = ctx.pathmap[loc[:cut]], loc[cut:]
            break
    node: Any = ctx.data
    for part in base:
        node = node.get(part) if isinstance(node, dict) else None
    path: list[str | int] = list(base)
    for i, part in enumerate(rest):
        present = isinstance(node, dict) and part in node
        if present or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
        elif not (missing and i == len(rest) - 1 and isinstance(node, dict)):
            continue
        path.append(part)
    return tuple(path)


_REASONS: Final = {
    "missing": "missing required field '{field}'",
    "extra_forbidden": "unknown field '{field}'",
    "int_type": "expected an integer, got {got}",
    "int_from_float": "expected an integer, got {got}",
    "float_type": "expected a number, got {got}",
    "bool_type": "expected true or false, got {got}",
    "string_type": "expected a string, got {got}",
    "dict_type": "expected a mapping, got {got}",
    "tuple_type": "expected a list, got {got}",
    "list_type": "expected a list, got {got}",
    "literal_error": "expected one of {expected}, got {got}",
    "enum": "expected one of {expected}, got {got}",
    "greater_than_equal": "must be at least {ge}, got {got}",
    "greater_than": "must be greater than {gt}, got {got}",
    "less_than_equal": "must be at most {le}, got {got}",
    "less_than": "must be less than {lt}, got {got}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long (at most {max_length} characters)",
    "string_pattern_mismatch": "invalid name {got}: use letters, digits, '_' and '-',"
    " starting with a letter or '_' (at most 100 characters)",
    "pattern_mismatch": "{got} does not match {pattern}",
    "value_error": "{error}",
}


def _reason(err: Any, path: Path) -> str:
    value = err.get("input")
    fields = {**(err.get("ctx") or {}), "got": describe(value), "field": path[-1] if path else ""}
    kind = err["type"]
    if kind == "string_pattern_mismatch" and fields.get("pattern") != NAME_PATTERN:
        kind = "pattern_mismatch"  # not a name: say what the value must look like
    try:
        text = _REASONS[kind].format_map(fields)
    except KeyError:
        text = f"{err['msg']}, got {describe(value)}"
    return text + _hint(err["type"], value)


def _hint(kind: str, value: Any) -> str:
    if kind == "string_type" and is_scalar(value):
        return " (quote it to make it a string)"
    if not isinstance(value, str) or kind not in ("int_type", "float_type", "bool_type"):
        return ""
    if kind == "bool_type" and value.lower() in ("yes", "no", "on", "off", "y", "n"):
        return " (YAML 1.1 words like yes/no/on/off are plain strings here: write true or false)"
    if re.fullmatch(r"[-+]?0[0-9]+", value):
        return " (a number with a leading zero stays a string here)"
    if re.fullmatch(r"[0-9]+(:[0-5]?[0-9])+", value):
        return " (values like 1:30 stay strings here: write the number)"
    if not isinstance(resolve_scalar(value), str):
        return " (remove the quotes)"
    return ""

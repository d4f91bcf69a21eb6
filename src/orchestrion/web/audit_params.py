"""What of a request an audit record keeps: its path, query and body parameters.

The record is masked when it is written (`orchestrion.app.accounts.Accounts.audit`: keys
that name a credential, and every stored secret's value). A route whose body *is* a
credential declares which fields may be kept (`policy.rule(..., audit_fields=...)`; routes
managing secrets keep none): of the others only their names and that a value was given
are recorded, because a misspelled or extra field (``{"valeu": ...}``) carries a value
under a name no mask knows. A name is kept when the route's body model declares it or
it is a near miss of one (a typo); any other, which may be a value pasted where a name
goes, only by its length.
"""

from __future__ import annotations

import functools
import typing
from typing import Any, Final
from urllib.parse import parse_qsl

from pydantic import BaseModel
from starlette.requests import Request

from orchestrion.errors import InvalidValue
from orchestrion.spec.rules import load_json
from orchestrion.web.policy import Rule

__all__ = ["audit_params"]

#: An unknown field name this close to a declared one is a typo, shown as it is.
_TYPO_DISTANCE: Final = 2


#: Bodies larger than this are audited by their size only (the audit log is no archive).
_AUDITED_BODY_BYTES = 65_536


async def audit_params(request: Request, rule: Rule) -> dict[str, Any]:
    """The request's parameters for its audit record (masked on write by key name and by
    every known secret's value). On a route whose body carries a credential (the rule's
    `kept_fields` is not None) only the kept fields' values are recorded: a misspelled or
    extra field would otherwise put a value in the log under a name no mask knows."""
    kept = rule.kept_fields
    out: dict[str, Any] = dict(request.path_params)
    query = {k: v for k, v in request.query_params.items()}
    body = await _body(request)
    if kept is None:
        out.update({f"query.{k}": v for k, v in query.items()})
        if body is not None:
            out["form" if _is_form(request) else "body"] = body
        return out
    fields = dict(query)
    if isinstance(body, dict):
        fields.update(body)
        if kept:
            out["body"] = {k: v for k, v in body.items() if k in kept}
    elif body is not None:
        fields["<body>"] = body  # not an object: nothing in it is a kept field
    declared = _declared_fields(getattr(request.scope.get("route"), "endpoint", None)) | kept
    out["fields"] = sorted({_field_name(k, declared) for k in fields})
    out["value_given"] = any(v not in (None, "") for k, v in fields.items() if k not in kept)
    return out


async def _body(request: Request) -> Any:
    """The parsed body: JSON, a form's fields (less the CSRF token), a placeholder for other
    bytes, or None when there is none."""
    body = await request.body()
    if not body:
        return None
    if len(body) > _AUDITED_BODY_BYTES:  # a version's code, say: the size says enough
        return f"<{len(body)} bytes>"
    if "json" in request.headers.get("content-type", ""):
        # A body the guard refuses is not recorded either: the record could not hold it.
        try:
            return load_json(body, what="it")
        except InvalidValue as exc:
            return f"<{len(body)} bytes, refused: {exc}>"
        except ValueError:
            return f"<{len(body)} bytes, not JSON>"
    if _is_form(request):
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v for k, v in pairs if k != "csrf_token"}
    return f"<{len(body)} bytes>"


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return "form" in content_type and "json" not in content_type


def _field_name(name: str, declared: frozenset[str]) -> str:
    """A field's name as the audit keeps it: a declared one, or a near miss of one (a typo:
    ``valeu``, ``pasword``), as it is; any other name (which may be a value pasted where a
    name goes) only by its length."""
    if name in declared or name == "<body>":
        return name
    if len(name) <= 64 and any(_distance(name, d) <= _TYPO_DISTANCE for d in declared):
        return name
    return f"<other field of {len(name)} characters>"


def _distance(a: str, b: str) -> int:
    """The Levenshtein distance of two short strings."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[-1]


@functools.cache
def _declared_fields(endpoint: object) -> frozenset[str]:
    """The names of the fields of a route's body model(s), read off its signature."""
    try:
        hints = typing.get_type_hints(endpoint)
    except Exception:  # an endpoint we cannot introspect declares nothing
        return frozenset()
    names: set[str] = set()
    for hint in hints.values():
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            for field_name, info in hint.model_fields.items():
                names.add(info.alias or field_name)
    return frozenset(names)

"""A YAML task that uses a template (``uses: lib/transfer@2`` with ``with: {...}``): the
template's body, filled with the values, under the task's own fields (`depends_on`,
`retry`, `timeout`...), which override the template's."""

from __future__ import annotations

from typing import Any, Final

from orchestrion.errors import SpecError
from orchestrion.spec.template_origin import TemplateOrigin
from orchestrion.spec.templates.expand import expand, parse_ref
from orchestrion.spec.yaml.actions import ACTION_KEYS, kind_keys
from orchestrion.spec.yaml.errors import LoadContext, check_keys
from orchestrion.spec.yaml.reader import Path

__all__ = ["USES_KEYS", "use_template"]

USES_KEYS: Final = ("uses", "with")


def use_template(
    ctx: LoadContext, path: Path, name: str, body: dict[str, Any], allowed: tuple[str, ...]
) -> tuple[dict[str, Any], TemplateOrigin]:
    """The task body a use makes, and the origin to record in the spec."""

    def fail_at(where: Path) -> Any:
        def fail(message: str) -> SpecError:
            return ctx.error(where, f"task '{name}': {message}")

        return fail

    ref = parse_ref(body["uses"], fail_at((*path, "uses")))
    given = body.get("with")
    at_with = fail_at((*path, "with")) if "with" in body else None
    at_key = None
    if isinstance(given, dict):  # a value's problem points at its own line

        def at_key(key: str) -> Any:
            return fail_at((*path, "with", key))

    expansion = expand(ref, ctx.templates, given, fail_at((*path, "uses")), at_with, at_key)
    overrides = {key: value for key, value in body.items() if key not in USES_KEYS}
    kinds = kind_keys(overrides, allowed)
    check_keys(ctx, path, overrides, (*allowed, *ACTION_KEYS, *kinds), f"task '{name}'")
    for key in overrides:
        if key in ACTION_KEYS or key in kinds:
            raise ctx.error(
                (*path, key),
                f"task '{name}' uses template {ref}, which gives its action; '{key}' cannot"
                " be set here (a using task may set dependencies, retry, timeout, queue,"
                " inputs and the other task fields)",
                at_key=True,
            )
    return {**expansion.body, **overrides}, expansion.origin

"""Templates from Python: ``use("lib/transfer@2")`` gives a callable that, inside a
``@workflow``, records the template's task (the same expansion as ``uses:`` in YAML), and
`template_library` builds a library in code.

The YAML machinery (which checks and translates template bodies) is imported on first use,
so that importing the authoring API stays cheap.

Values may be refs (``transfer(source=extract["table"], ...)``): they become run-time
templates and dependencies, as for any task argument.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Unpack

from orchestrion.errors import SpecError
from orchestrion.spec.model import TaskSpec
from orchestrion.spec.python.build import TaskRef, current_build, member_expr, raise_spec
from orchestrion.spec.python.options import (
    TaskOptions,
    check_keys,
    task_fields,
    validation_message,
)
from orchestrion.spec.python.values import Collector, template
from orchestrion.spec.structs import Invalid
from orchestrion.spec.templates.expand import TemplateRef, expand, parse_ref
from orchestrion.spec.templates.library import TemplateLibrary, library_from_data
from orchestrion.spec.templates.search import ChainSource, MemorySource, extra_sources

__all__ = ["TemplateUse", "template_library", "use"]

_OPTION_KEYS: frozenset[str] = TaskOptions.__optional_keys__
_RETRY_OPTIONS = frozenset({"retries", "backoff", "factor", "max_delay", "jitter", "retry_on"})


def template_library(
    name: str, version: int, templates: Mapping[str, Any], *, description: str = ""
) -> TemplateLibrary:
    """A library built in Python, in the same shape as a library file's (each template a
    mapping with ``params`` and a YAML-shaped ``task``); checked like a file."""
    from orchestrion.spec.yaml.libraries import check_library

    data = {"library": name, "version": version, "description": description}
    data["templates"] = dict(templates)
    library = library_from_data(data, source=f"<library {name}@{version}>")
    check_library(library)
    return library


def use(
    ref: str,
    *,
    libraries: Iterable[TemplateLibrary] = (),
    templates: Sequence[str | os.PathLike[str]] = (),
) -> TemplateUse:
    """A template to call inside a workflow: looked up in `libraries`, then the folders of
    `templates`, ``ORCHESTRION_TEMPLATE_PATH`` and ``templates/`` beside the calling file."""
    from orchestrion.spec.yaml.libraries import default_source

    caller = sys._getframe(1).f_code.co_filename
    parsed = parse_ref(ref, lambda problem: SpecError(problem, source=caller))
    source = ChainSource(
        [
            MemorySource(libraries),
            default_source(caller if os.path.exists(caller) else None, templates),
        ]
    )
    return TemplateUse(parsed, source, {})


class TemplateUse:
    """A resolved-on-call template reference, with task options for its calls."""

    def __init__(self, ref: TemplateRef, source: ChainSource, options: dict[str, Any]) -> None:
        self.ref = ref
        self._source = source
        self._options = options

    def options(self, **options: Unpack[TaskOptions]) -> TemplateUse:
        """A copy whose calls also set these task options (they override the template's)."""
        check_keys(options, _OPTION_KEYS, lambda p: SpecError(f"{self.ref}: {p}"))
        return TemplateUse(self.ref, self._source, {**self._options, **options})

    def __call__(self, **values: Any) -> TaskRef:
        """Record the template's task with these param values; returns its ref."""
        state = current_build()
        if state is None:
            raise_spec(f"template {self.ref} was used outside a workflow build")
        opts = self._options
        explicit = "name" in opts
        name = state.claim_name(str(opts.get("name", self.ref.template)), explicit=explicit)
        fail = functools.partial(state.error, name)
        col = Collector(state, name)
        given = {key: template(value, col, f"parameter {key!r}") for key, value in values.items()}
        # The load's extra sources (a deploy target's libraries) are read at build time.
        source = ChainSource([self._source, *extra_sources()])
        expansion = expand(self.ref, source, given, fail)
        from orchestrion.spec.yaml.libraries import translate_task

        params = {k: p.model_dump(mode="json") for k, p in state.params.items()}
        names = [task.name for task in state.tasks]
        try:
            fields = translate_task(state.workflow, params, names, name, expansion.body)
        except SpecError as exc:
            raise fail(f"template {self.ref}: {exc.detail}") from None
        deps = [*fields.pop("depends_on"), *col.deps]
        fields.update(_overrides(opts, fail, state, name))
        for ref in opts.get("after") or ():
            if not isinstance(ref, TaskRef):
                raise fail(f"after= takes task references, not {ref!r}")
            col.add(ref)
        deps += [d for d in col.deps if d not in deps]
        fields.update(name=name, depends_on=tuple(dict.fromkeys(deps)), template=expansion.origin)
        try:
            state.tasks.append(TaskSpec(**fields))
        except Invalid as exc:
            raise fail(validation_message(exc)) from None
        return TaskRef(member_expr("tasks", name), state, name)

    def __repr__(self) -> str:
        return f"<template {self.ref}>"


def _overrides(
    opts: dict[str, Any], fail: Callable[[str], Exception], state: Any, name: str
) -> dict[str, Any]:
    """The task fields the call's options set: only those given replace the template's."""
    fields, callables = task_fields(opts, fail)
    for key, func in callables.items():
        state.add_callable(key, func, name)
    given = {k for k in fields if k in opts}
    if _RETRY_OPTIONS & set(opts):
        given.add("retry")
    return {k: v for k, v in fields.items() if k in given}

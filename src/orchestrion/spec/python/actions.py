"""``shell(...)``, ``http(...)``, ``publish(...)``, ``container(...)``, ``sql(...)`` and
``plugin(...)`` (any task kind, `orchestrion.spec.kinds`): non-Python tasks, declared from
inside a workflow function.

Refs passed as values (a whole argv element, an env value, the URL, a header, a JSON body
leaf) become ``{{ expr }}`` templates that the worker renders at run time, and make the task
depend on the tasks they name. A ref formatted into a string (``f"--day={day}"``) becomes
the same template inside the text, so it works too; a plain ``+`` concatenation does not
(it raises TypeError). A shell ``script`` is never templated: pass values through ``env``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from orchestrion.errors import SpecError
from orchestrion.spec.kinds import installed_kinds, options_message
from orchestrion.spec.model import (
    Action,
    ContainerAction,
    HttpAction,
    PluginAction,
    PublishAction,
    ShellAction,
)
from orchestrion.spec.python.build import (
    BuildState,
    TaskRef,
    current_build,
    is_valid_name,
    member_expr,
    raise_spec,
)
from orchestrion.spec.python.options import (
    CommonOptions,
    ShellOptions,
    check_keys,
    validation_message,
)
from orchestrion.spec.python.task import record_task
from orchestrion.spec.python.values import Collector, json_literal, template, template_str
from orchestrion.spec.structs import Invalid

__all__ = ["container", "http", "plugin", "publish", "shell", "sql"]

_SHELL_KEYS: frozenset[str] = ShellOptions.__optional_keys__
_HTTP_KEYS: frozenset[str] = CommonOptions.__optional_keys__


def shell(
    name: str,
    argv: Sequence[Any] | None = None,
    *extra: Any,
    script: str | None = None,
    env: Mapping[str, Any] | None = None,
    cwd: Any = None,
    json_output: bool = False,
    **options: Unpack[ShellOptions],
) -> TaskRef:
    """A process task: either ``argv`` (no shell parses it) or a bash ``script``.

    ``argv`` may be given by position (``shell("list", ["ls", "-l"])``); everything else is
    by keyword. The result is the last stdout line, or stdout parsed as JSON with
    ``json_output=True``.
    """
    state, col = _start(name, "shell", options, _SHELL_KEYS)
    _no_extra(state, name, "shell(name, argv)", "script=, env=, timeout=", extra)
    if isinstance(argv, str):
        raise state.error(name, "argv is a list of arguments; for a command line use script=")
    argv_t = None
    if argv is not None:
        argv_t = tuple(template_str(a, col, f"argv[{i}]") for i, a in enumerate(argv))
    if script is not None and (not isinstance(script, str) or col.formatted_in(script) is not None):
        raise state.error(
            name, "script must be plain text: it is never templated, pass values with env="
        )
    env_t = {str(k): template_str(v, col, f"env[{k!r}]") for k, v in (env or {}).items()}
    cwd_t = template_str(cwd, col, "cwd") if cwd is not None else None

    def build() -> Action:
        return ShellAction(
            argv=argv_t, script=script, env=env_t, cwd=cwd_t, json_output=json_output
        )

    return _finish(state, col, build, dict(options))


def http(
    name: str,
    url: Any,
    *extra: Any,
    method: str = "GET",
    headers: Mapping[str, Any] | None = None,
    json: Any = None,
    expect_status: Sequence[int] = (),
    timeout: float | str = 30,
    **options: Unpack[CommonOptions],
) -> TaskRef:
    """An HTTP request task; its result is the response (the worker defines its shape).

    ``method`` is GET, POST, PUT, PATCH, DELETE or HEAD, in any case.
    ``timeout`` is the request's; ``expect_status`` lists the statuses that count as success
    (empty: any 2xx, as the worker decides).
    """
    state, col = _start(name, "http", options, _HTTP_KEYS)
    _no_extra(state, name, "http(name, url)", "method=, headers=, json=", extra)
    url_t = template_str(url, col, "url")
    headers_t = {
        str(k): template_str(v, col, f"headers[{k!r}]") for k, v in (headers or {}).items()
    }
    body = template(json, col, "json") if json is not None else None

    def build() -> Action:
        return HttpAction.model_validate(
            {
                "method": str(method).upper(),
                "url": url_t,
                "headers": headers_t,
                "json_body": body,
                "expect_status": tuple(expect_status),
                "timeout": timeout,
            }
        )

    return _finish(state, col, build, dict(options))


def publish(
    name: str,
    *,
    kind: str,
    connection: str,
    body: Any = None,
    headers: Mapping[str, Any] | None = None,
    stream: Any = None,
    routing_key: Any = None,
    subject: Any = None,
    topic: Any = None,
    exchange: str | None = None,
    jetstream: bool = True,
    retain: bool = False,
    timeout: float | str = 30,
    **options: Unpack[CommonOptions],
) -> TaskRef:
    """A task that publishes one message to a broker through a named connection.

    ``kind`` is ``redis`` (give ``stream``), ``rabbitmq`` (``routing_key``: a queue's name
    on the default exchange, YAML's ``queue``; optionally ``exchange``), ``nats``
    (``subject``; JetStream unless ``jetstream=False``) or ``mqtt`` (``topic``).
    ``body`` is sent as it is when a string, as JSON otherwise; refs in it, the
    destination and ``headers`` become templates. The result says where it went and the
    broker's id for the message where it has one.
    """
    state, col = _start(name, "publish", options, _HTTP_KEYS)
    where = {
        key: template_str(value, col, key)
        for key, value in {
            "stream": stream,
            "queue": routing_key,
            "subject": subject,
            "topic": topic,
        }.items()
        if value is not None
    }
    headers_t = {
        str(k): template_str(v, col, f"headers[{k!r}]") for k, v in (headers or {}).items()
    }
    body_t = template(body, col, "body") if body is not None else None

    def build() -> Action:
        return PublishAction.model_validate(
            {
                "broker": kind,
                "connection": connection,
                "exchange": exchange,
                "jetstream": jetstream,
                "retain": retain,
                "body": body_t,
                "headers": headers_t,
                "timeout": timeout,
                **where,
            }
        )

    return _finish(state, col, build, dict(options))


def plugin(
    name: str,
    kind: str,
    options: Mapping[str, Any] | None = None,
    **task_options: Unpack[CommonOptions],
) -> TaskRef:
    """A task of the installed task kind `kind` (built in, like ``"sql"``, or a plugin's,
    like ``"example-greet"``), with the options its YAML mapping would have.

    Refs in the kind's templated fields become templates (and dependencies); a ref in any
    other field is refused, as the YAML loader refuses a template there. The kind checks
    the options now, so a mistake fails when the workflow is built.
    """
    state, col = _start(name, kind, task_options, _HTTP_KEYS)
    try:
        found = installed_kinds().get(kind)
    except SpecError as exc:
        raise state.error(name, str(exc)) from None
    raw: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key in found.templated:
            raw[str(key)] = template(value, col, key)
            continue

        def fail(problem: str, key: Any = key) -> Exception:
            return state.error(name, f"{key}: {problem} ({kind} does not template it)")

        raw[str(key)] = literal = json_literal(value, fail)
        _refuse_formatted_refs(col, literal, fail)

    def build() -> Action:
        try:
            checked = found.validate(raw)
        except ValueError as exc:  # pydantic's ValidationError is one
            raise state.error(name, f"bad {kind} options: {options_message(exc)}") from None
        return PluginAction(plugin=kind, options=found.stored(checked))

    return _finish(state, col, build, dict(task_options))


def sql(
    name: str,
    *,
    connection: str,
    query: str,
    params: Mapping[str, Any] | None = None,
    result: str = "rowcount",
    max_rows: int = 1000,
    timeout: float | str = 300,
    **options: Unpack[CommonOptions],
) -> TaskRef:
    """One SQL statement on a named database connection, in a transaction of its own.

    ``query`` holds ``:name`` bind parameters whose values are ``params`` (refs allowed
    there, never in the query). ``result`` is ``rowcount``, ``rows`` (at most
    ``max_rows``), ``first`` or ``none``; ``timeout`` is the statement's.
    """
    values = {
        "connection": connection,
        "query": query,
        "params": dict(params or {}),
        "result": result,
        "max_rows": max_rows,
        "timeout": timeout,
    }
    return plugin(name, "sql", values, **options)


def _refuse_formatted_refs(col: Collector, value: Any, fail: Any) -> None:
    """A ref formatted into a string (``f"{day}"``) of a field the kind does not render
    would arrive as the literal ``{{ }}`` text."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            ref = col.formatted_in(node)
            if ref is not None:
                raise fail(f"{ref.expr} was formatted into the text")
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())


def container(
    name: str,
    image: str,
    *extra: Any,
    command: Sequence[Any] | None = None,
    entrypoint: Sequence[str] | None = None,
    env: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    result: str | Mapping[str, str] = "last-line",
    pull: str = "if-missing",
    work_dir: str = "/work",
    **options: Unpack[ShellOptions],
) -> TaskRef:
    """A task that runs ``command`` (argv; refs in it and in ``env`` become templates) in a
    fresh container of ``image`` on the worker's container engine.

    ``resources`` limits it (``{"cpus": 1.5, "memory": "512Mi"}``); ``result`` is
    ``"last-line"`` (of stdout, the default), ``"stdout"`` (parsed as JSON), ``"none"`` or
    ``{"file": "/out/result.json"}``; ``pull`` is ``"if-missing"``, ``"always"`` or
    ``"never"``. Secrets go in with ``secrets={"ENV_VAR": "secret-name"}``: that container's
    environment only, masked in what the task reports.
    """
    state, col = _start(name, "container", options, _SHELL_KEYS)
    _no_extra(state, name, "container(name, image)", "command=, env=, timeout=", extra)
    if isinstance(command, str):
        raise state.error(name, "command is a list of arguments; for a line use ['sh', '-c', ...]")
    command_t = None
    if command is not None:
        command_t = tuple(template_str(a, col, f"command[{i}]") for i, a in enumerate(command))
    env_t = {str(k): template_str(v, col, f"env[{k!r}]") for k, v in (env or {}).items()}
    limits = dict(resources or {})
    if isinstance(limits.get("memory"), int):
        limits["memory"] = str(limits["memory"])

    def build() -> Action:
        return ContainerAction.model_validate(
            {
                "image": image,
                "command": command_t,
                "entrypoint": None if entrypoint is None else tuple(entrypoint),
                "env": env_t,
                "resources": limits,
                "result": result if isinstance(result, str) else dict(result),
                "pull": pull,
                "work_dir": work_dir,
            }
        )

    return _finish(state, col, build, dict(options))


def _start(
    name: str, kind: str, options: Mapping[str, Any], allowed: frozenset[str]
) -> tuple[BuildState, Collector]:
    """The current build and a fresh collector; the explicit task name is claimed."""
    state = current_build()
    if state is None:
        raise_spec(f"{kind}({name!r}) can only be called inside a @workflow function")
    if not isinstance(name, str) or not is_valid_name(name):
        raise state.error(None, f"{kind} task name {name!r} is invalid: use letters, digits, _, -")
    check_keys(options, allowed, lambda problem: state.error(name, problem))
    state.claim_name(name, explicit=True)
    return state, Collector(state, name)


def _no_extra(
    state: BuildState, name: str, form: str, keywords: str, extra: tuple[Any, ...]
) -> None:
    """Refuse positional arguments past the ones a helper takes, naming the fix.

    Python would raise a TypeError ("takes 2 positional arguments") that names neither the
    task nor the keyword to use; a SpecError names both, like every other authoring error.
    """
    if extra:
        raise state.error(
            name,
            f"{form} takes 2 arguments by position, got {2 + len(extra)}: "
            f"pass the others by keyword ({keywords} ...)",
        )


def _finish(state: BuildState, col: Collector, build: Any, options: dict[str, Any]) -> TaskRef:
    try:
        action = build()
    except Invalid as exc:
        raise state.error(col.task, validation_message(exc)) from None
    record_task(state, col.task, col, action, options)
    return TaskRef(member_expr("tasks", col.task), state, col.task)

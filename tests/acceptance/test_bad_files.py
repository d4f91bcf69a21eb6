"""Malformed workflow files: every one is refused with exit code 2, and nothing is written.

For each file, ``orchestrion validate`` exits 2 and names the file (and, for YAML, the line),
and ``orchestrion run FILE --db X`` exits 2 leaving the database without a run or a
workflow. The bulk goes through the command in-process (click's CliRunner: the same code
path, without 0.4 s of interpreter start-up per call); a representative subset runs as real
subprocesses.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli, Result, db_rows


@dataclass(frozen=True)
class Bad:
    id: str
    suffix: str  # ".yaml", ".yml" or ".py" (or another, for the file type case)
    content: str | bytes
    #: The line the message must name (file:LINE), or None when there is no line to name.
    line: int | None
    #: Text the message must contain.
    message: str


def y(id: str, text: str, line: int | None, message: str) -> Bad:
    return Bad(id, ".yaml", textwrap.dedent(text).lstrip("\n"), line, message)


HEAD = "from orchestrion.spec.python import http, shell, task, workflow\n"


def p(id: str, text: str, line: int | None, message: str) -> Bad:
    """A Python file; ``HEAD + \"\"\"...\"\"\"`` keeps the blank line after the import (line 2)."""
    if text.startswith(HEAD):
        return Bad(id, ".py", HEAD + textwrap.dedent(text[len(HEAD) :]), line, message)
    return Bad(id, ".py", textwrap.dedent(text).lstrip("\n"), line, message)


# ---------------------------------------------------------------------------- YAML

YAML_CASES = [
    # --- not a workflow at all
    y("empty", "", None, "the file is empty"),
    y("only-comments", "# nothing here\n# at all\n", None, "the file is empty"),
    y("null-document", "~\n", None, "the file is empty"),
    y("top-level-list", "- name: wf\n- tasks: {}\n", 1, "top level must be a mapping"),
    y("top-level-scalar", "just some text\n", 1, "top level must be a mapping"),
    # --- YAML syntax
    y(
        "unclosed-flow-list",
        """
        name: wf
        tasks:
          a:
            shell: [echo, hi
        """,
        5,
        "YAML syntax error",
    ),
    y(
        "bad-indentation",
        """
        name: wf
        tasks:
          a:
            shell: [echo, hi]
           depends_on: b
        """,
        5,
        "YAML syntax error",
    ),
    y("tab-indentation", "name: wf\ntasks:\n\ta:\n\t\tshell: [echo]\n", 3, "YAML syntax error"),
    y(
        "unclosed-quote",
        """
        name: "wf
        tasks:
          a: {shell: [echo]}
        """,
        4,
        "YAML syntax error",
    ),
    y(
        "colon-in-plain-value",
        """
        name: wf
        tasks:
          a:
            shell: {script: echo a: b: c}
        """,
        4,
        "YAML syntax error",
    ),
    y(
        "unquoted-cron-is-an-alias",
        """
        name: wf
        schedule: * * * * *
        tasks:
          a: {shell: [echo]}
        """,
        2,
        "quote values that start with '*'",
    ),
    # --- YAML traps: anchors, aliases, tags, documents, keys
    y(
        "anchor-and-alias",
        """
        name: wf
        tasks:
          a: &base
            shell: [echo, a]
          b: *base
        """,
        3,
        "anchors and aliases are not allowed",
    ),
    y(
        "merge-key",
        """
        name: wf
        defaults: &d {retry: 3}
        tasks:
          a:
            <<: *d
            shell: [echo]
        """,
        2,
        "anchors and aliases are not allowed",
    ),
    y(
        "billion-laughs",
        """
        name: wf
        x: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
        y: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        z: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        tasks:
          a: {shell: [echo, "{{ params.z }}"]}
        """,
        2,
        "anchors and aliases are not allowed",
    ),
    y(
        "python-object-tag",
        """
        name: wf
        tasks:
          a:
            shell: !!python/object/apply:os.system ["echo pwned"]
        """,
        4,
        "YAML tags are not allowed",
    ),
    y(
        "str-tag",
        """
        name: !!str wf
        tasks:
          a: {shell: [echo]}
        """,
        1,
        "YAML tags are not allowed (found '!!str')",
    ),
    y(
        "custom-tag",
        """
        name: wf
        tasks:
          a: {shell: !cmd echo}
        """,
        3,
        "YAML tags are not allowed (found '!cmd')",
    ),
    y(
        "second-document",
        """
        name: wf
        tasks:
          a: {shell: [echo]}
        ---
        name: other
        """,
        4,
        "second document starts",
    ),
    y(
        "duplicate-task-name",
        """
        name: wf
        tasks:
          a: {shell: [echo, 1]}
          b: {shell: [echo, 2]}
          a: {shell: [echo, 3]}
        """,
        5,
        "duplicate task name 'a'",
    ),
    y(
        "duplicate-top-level-key",
        """
        name: wf
        tasks:
          a: {shell: [echo]}
        name: again
        """,
        4,
        "duplicate key 'name'",
    ),
    y(
        "markup-in-a-key",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            "[/oops] [bold]": 1
        """,
        5,
        "unknown field '[/oops] [bold]'",
    ),
    y(
        "integer-key",
        """
        name: wf
        tasks:
          1: {shell: [echo]}
        """,
        3,
        "mapping keys must be strings",
    ),
    y(
        "null-key",
        """
        name: wf
        tasks:
          ~: {shell: [echo]}
        """,
        3,
        "mapping keys must be strings",
    ),
    y(
        "complex-key",
        """
        name: wf
        tasks:
          ? [a, b]
          : {shell: [echo]}
        """,
        3,
        "mapping keys must be strings",
    ),
    # --- encoding, size, depth
    Bad(
        "invalid-utf8",
        ".yaml",
        b'name: wf\ntasks:\n  a: {shell: [echo, "\xff\xfe"]}\n',
        3,
        "not valid UTF-8",
    ),
    Bad(
        "control-character",
        ".yaml",
        "name: wf\x07\ntasks:\n  a: {shell: [echo]}\n",
        1,
        "a character YAML does not allow",
    ),
    Bad(
        "oversized",
        ".yaml",
        "name: wf\ndescription: " + "x" * (1024 * 1024 + 10) + "\ntasks:\n  a: {shell: [echo]}\n",
        None,
        "too large",
    ),
    Bad(
        "too-deep",
        ".yaml",
        "name: wf\ntasks:\n  a:\n    shell: [echo]\n    inputs:\n      x: "
        + "[" * 60
        + "]" * 60
        + "\n",
        6,
        "nesting is deeper than 50 levels",
    ),
    # --- workflow fields
    y("missing-name", "tasks:\n  a: {shell: [echo]}\n", 1, "missing required field 'name'"),
    y("missing-tasks", "name: wf\n", 1, "a workflow needs 'tasks'"),
    y("empty-tasks", "name: wf\ntasks: {}\n", 2, "a workflow needs 'tasks'"),
    y(
        "tasks-as-a-list",
        """
        name: wf
        tasks:
          - name: a
            shell: [echo]
        """,
        2,
        "'tasks' must be a mapping",
    ),
    y(
        "unknown-top-level-key",
        "name: wf\ntaks:\n  a: {shell: [echo]}\n",
        2,
        "did you mean 'tasks'",
    ),
    y(
        "bad-workflow-name",
        'name: "my workflow"\ntasks:\n  a: {shell: [echo]}\n',
        1,
        "invalid name",
    ),
    y(
        "workflow-name-too-long",
        "name: " + "w" * 101 + "\ntasks:\n  a: {shell: [echo]}\n",
        1,
        "invalid name",
    ),
    y("name-is-a-number", "name: 12\ntasks:\n  a: {shell: [echo]}\n", 1, "expected a string"),
    y(
        "bad-workflow-timeout",
        "name: wf\ntimeout: 5 minutes\ntasks:\n  a: {shell: [echo]}\n",
        2,
        "bad duration",
    ),
    y(
        "max-active-runs-zero",
        "name: wf\nmax_active_runs: 0\ntasks:\n  a: {shell: [echo]}\n",
        2,
        "must be at least 1",
    ),
    y(
        "tags-not-strings",
        "name: wf\ntags: [1, 2]\ntasks:\n  a: {shell: [echo]}\n",
        2,
        "expected a string",
    ),
    # --- schedules
    y(
        "bad-cron-minute",
        'name: wf\nschedule: "61 * * * *"\ntasks:\n  a: {shell: [echo]}\n',
        2,
        "bad cron expression",
    ),
    y(
        "bad-cron-fields",
        'name: wf\nschedule: "every day"\ntasks:\n  a: {shell: [echo]}\n',
        2,
        "bad cron expression",
    ),
    y(
        "bad-timezone",
        """
        name: wf
        schedules:
          - cron: "0 3 * * *"
            timezone: Mars/Olympus
        tasks:
          a: {shell: [echo]}
        """,
        4,
        "unknown time zone",
    ),
    y(
        "schedule-and-schedules",
        """
        name: wf
        schedule: "0 3 * * *"
        schedules: ["0 4 * * *"]
        tasks:
          a: {shell: [echo]}
        """,
        3,
        "use either 'schedule' or 'schedules'",
    ),
    y(
        "schedule-unknown-param",
        """
        name: wf
        schedule: {cron: "0 3 * * *", params: {dya: 1}}
        tasks:
          a: {shell: [echo]}
        """,
        2,
        "unknown parameter 'dya'",
    ),
    y(
        "schedule-misses-required-param",
        """
        name: wf
        params:
          day: {type: date, required: true}
        schedule: "0 3 * * *"
        tasks:
          a: {shell: [echo, "{{ params.day }}"]}
        """,
        4,
        "does not set required parameter 'day'",
    ),
    # --- parameters
    y(
        "param-default-wrong-type",
        """
        name: wf
        params:
          n: {type: integer, default: many}
        tasks:
          a: {shell: [echo]}
        """,
        3,
        "is not a valid integer",
    ),
    y(
        "param-required-with-default",
        """
        name: wf
        params:
          n: {type: integer, default: 3, required: true}
        tasks:
          a: {shell: [echo]}
        """,
        3,
        "a required parameter cannot have a default",
    ),
    y(
        "param-default-not-in-enum",
        """
        name: wf
        params:
          mode: {type: string, enum: [fast, slow], default: medium}
        tasks:
          a: {shell: [echo]}
        """,
        3,
        "not one of the enum values",
    ),
    y(
        "param-unknown-type",
        """
        name: wf
        params:
          n: {type: int}
        tasks:
          a: {shell: [echo]}
        """,
        3,
        "expected one of",
    ),
    y(
        "yaml11-boolean-word",
        """
        name: wf
        params:
          n: {type: string, required: yes}
        tasks:
          a: {shell: [echo]}
        """,
        3,
        "YAML 1.1 words like yes/no/on/off are plain strings here",
    ),
    y(
        "bad-param-name",
        """
        name: wf
        params:
          "2fast": string
        tasks:
          a: {shell: [echo]}
        """,
        3,
        "parameter name '2fast'",
    ),
    # --- graph
    y(
        "cycle",
        """
        name: wf
        tasks:
          a: {shell: [echo], depends_on: b}
          b: {shell: [echo], depends_on: a}
        """,
        3,
        "dependency cycle: a -> b -> a",
    ),
    y(
        "self-dependency",
        """
        name: wf
        tasks:
          a: {shell: [echo], depends_on: [a]}
        """,
        3,
        "dependency cycle: a -> a",
    ),
    y(
        "cycle-through-templates",
        """
        name: wf
        tasks:
          a: {shell: [echo, "{{ tasks.c }}"]}
          b: {shell: [echo, "{{ tasks.a }}"]}
          c: {shell: [echo, "{{ tasks.b }}"]}
        """,
        3,
        "dependency cycle",
    ),
    y(
        "unknown-dependency",
        """
        name: wf
        tasks:
          a: {shell: [echo]}
          b: {shell: [echo], depends_on: [a, extrct]}
        """,
        4,
        "unknown task 'extrct' in depends_on",
    ),
    y(
        "dependency-not-a-string",
        """
        name: wf
        tasks:
          a: {shell: [echo]}
          b:
            shell: [echo]
            depends_on: [1]
        """,
        6,
        "expected a task name",
    ),
    # --- tasks
    y("bad-task-name", 'name: wf\ntasks:\n  "bad name": {shell: [echo]}\n', 3, "invalid name"),
    y("task-without-action", "name: wf\ntasks:\n  a: {retry: 2}\n", 3, "needs an action"),
    y("task-is-null", "name: wf\ntasks:\n  a:\n", 3, "needs an action"),
    y(
        "two-actions",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            http: {url: "http://127.0.0.1/"}
        """,
        5,
        "more than one action",
    ),
    y(
        "unknown-task-field",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            retries: 3
        """,
        5,
        "did you mean 'retry'",
    ),
    y(
        "bad-trigger-rule",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            trigger_rule: sometimes
        """,
        5,
        "expected one of",
    ),
    y(
        "bad-task-timeout",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            timeout: 10 minutes
        """,
        5,
        "bad duration",
    ),
    y(
        "negative-timeout",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            timeout: -5
        """,
        5,
        "out of range",
    ),
    y(
        "zero-timeout",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            timeout: 0
        """,
        5,
        "must be greater than 0",
    ),
    y(
        "infinite-timeout",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            timeout: .inf
        """,
        5,
        "out of range",
    ),
    y(
        "retries-quoted",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            retry: {retries: "3"}
        """,
        5,
        "expected an integer",
    ),
    y(
        "retries-word",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            retry: {retries: three}
        """,
        5,
        "expected an integer, got 'three'",
    ),
    y(
        "retries-too-many",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            retry: 5000
        """,
        5,
        "must be at most 1000",
    ),
    y(
        "retry-unknown-field",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            retry: {retries: 2, backof: 1s}
        """,
        5,
        "did you mean 'backoff'",
    ),
    y(
        "bad-backoff",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            retry: {retries: 2, backoff: soon}
        """,
        5,
        "bad duration",
    ),
    y(
        "priority-leading-zero",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            priority: 0755
        """,
        5,
        "leading zero",
    ),
    y(
        "priority-out-of-range",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            priority: 5000
        """,
        5,
        "must be at most 1000",
    ),
    y(
        "concurrency-zero",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            concurrency: 0
        """,
        5,
        "must be at least 1",
    ),
    y(
        "bad-queue-name",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            queue: "io queue"
        """,
        5,
        "invalid name",
    ),
    # --- actions
    y(
        "shell-argv-and-script",
        """
        name: wf
        tasks:
          a:
            shell: {argv: [echo], script: echo}
        """,
        4,
        "either 'argv' or 'script'",
    ),
    y("shell-empty-argv", "name: wf\ntasks:\n  a: {shell: []}\n", 3, "'argv' must not be empty"),
    y(
        "shell-bad-env-name",
        """
        name: wf
        tasks:
          a:
            shell: {script: echo, env: {"MY-VAR": x}}
        """,
        4,
        "bad environment variable name",
    ),
    y(
        "shell-env-number",
        """
        name: wf
        tasks:
          a:
            shell: {script: echo, env: {N: 3}}
        """,
        4,
        "expected a string",
    ),
    y(
        "script-is-templated",
        """
        name: wf
        params:
          day: string
        tasks:
          a:
            shell:
              script: echo {{ params.day }}
        """,
        7,
        "scripts are not templated",
    ),
    y(
        "json-output-yes",
        """
        name: wf
        tasks:
          a:
            shell: {argv: [echo], json_output: "yes"}
        """,
        4,
        "expected true or false",
    ),
    y(
        "http-missing-url",
        """
        name: wf
        tasks:
          a:
            http: {method: GET}
        """,
        4,
        "missing required field 'url'",
    ),
    y(
        "http-bad-method",
        """
        name: wf
        tasks:
          a:
            http: {method: FETCH, url: "http://127.0.0.1/"}
        """,
        4,
        "expected one of",
    ),
    y(
        "http-status-string",
        """
        name: wf
        tasks:
          a:
            http: {url: "http://127.0.0.1/", expect_status: ["200"]}
        """,
        4,
        "expected an integer",
    ),
    y(
        "python-ref-malformed",
        """
        name: wf
        tasks:
          a:
            python: "not a reference"
        """,
        4,
        "expected 'module:function'",
    ),
    y(
        "workflow-action-bad-name",
        """
        name: wf
        tasks:
          a:
            workflow: "child flow"
        """,
        4,
        "invalid name",
    ),
    y(
        "undo-two-actions",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            undo: {shell: [echo], python: "m:f"}
        """,
        5,
        "more than one action",
    ),
    y(
        "undo-reads-a-downstream-task",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            undo: {shell: [echo, "{{ tasks.b }}"]}
          b: {shell: [echo], depends_on: a}
        """,
        5,
        "reads 'b'",
    ),
    # --- expressions and templates
    y(
        "when-syntax-error",
        """
        name: wf
        params:
          x: integer
        tasks:
          a:
            shell: [echo]
            when: params.x ==
        """,
        7,
        "bad expression",
    ),
    y(
        "when-calls-os-system",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            when: os.system('rm -rf /')
        """,
        5,
        "bad expression",
    ),
    y(
        "when-dunder",
        """
        name: wf
        params:
          x: string
        tasks:
          a:
            shell: [echo]
            when: params.x.__class__
        """,
        7,
        "bad expression",
    ),
    y(
        "when-lambda",
        """
        name: wf
        tasks:
          a:
            shell: [echo]
            when: "(lambda: 1)()"
        """,
        5,
        "bad expression",
    ),
    y(
        "when-comprehension",
        """
        name: wf
        params:
          xs: array
        tasks:
          a:
            shell: [echo]
            when: "[x for x in params.xs]"
        """,
        7,
        "comprehensions are not allowed",
    ),
    y(
        "power-operator",
        """
        name: wf
        params:
          n: integer
        tasks:
          a:
            shell: [echo]
            when: params.n ** 100 > 1
        """,
        7,
        "bad expression",
    ),
    y(
        "unknown-param-in-template",
        """
        name: wf
        params:
          day: date
        tasks:
          a: {shell: [echo, "{{ params.dya }}"]}
        """,
        5,
        "unknown parameter 'dya'; did you mean 'day'",
    ),
    y(
        "unknown-task-in-template",
        """
        name: wf
        tasks:
          extract: {shell: [echo]}
          load: {shell: [echo, "{{ tasks.extrat.rows }}"]}
        """,
        4,
        "unknown task 'extrat' in expression; did you mean 'extract'",
    ),
    y(
        "task-reads-itself",
        """
        name: wf
        tasks:
          a: {shell: [echo, "{{ tasks.a }}"]}
        """,
        3,
        "cannot use its own result",
    ),
    y(
        "item-outside-map",
        """
        name: wf
        tasks:
          a: {shell: [echo, "{{ item }}"]}
        """,
        3,
        "'item' is defined only in the fields of a task with 'map'",
    ),
    y(
        "item-in-map-itself",
        """
        name: wf
        tasks:
          a:
            map: "{{ item }}"
            shell: [echo]
        """,
        4,
        "'item' is defined only",
    ),
    y(
        "unclosed-template",
        """
        name: wf
        params:
          x: string
        tasks:
          a: {shell: [echo, "{{ params.x "]}
        """,
        5,
        "without a closing",
    ),
    y(
        "dynamic-task-index",
        """
        name: wf
        params:
          which: string
        tasks:
          a: {shell: [echo]}
          b: {shell: [echo, "{{ tasks[params.which] }}"]}
        """,
        6,
        "bad expression",
    ),
    Bad(
        "expression-too-long",
        ".yaml",
        "name: wf\nparams:\n  x: integer\ntasks:\n  a:\n    shell: [echo]\n    when: "
        + " + ".join(["params.x"] * 300)
        + " > 0\n",
        7,
        "too long",
    ),
    y(
        "inputs-bad-identifier",
        """
        name: wf
        tasks:
          a:
            python: "mod:fn"
            inputs: {"not-ok": 1}
        """,
        5,
        "is not a valid identifier",
    ),
    y(
        "map-not-a-string",
        """
        name: wf
        tasks:
          a:
            map: [1, 2, 3]
            shell: [echo, "{{ item }}"]
        """,
        4,
        "expected an expression string",
    ),
    Bad(
        "yml-suffix-syntax-error",
        ".yml",
        "name: wf\ntasks:\n  a: {shell: [echo}\n",
        3,
        "YAML syntax error",
    ),
]

# ---------------------------------------------------------------------------- Python

PY_CASES = [
    # --- the file does not import
    p("syntax-error", "def broken(:\n    pass\n", 1, "syntax error"),
    p("indentation-error", "x = 1\n    y = 2\n", 2, "syntax error"),
    p("unterminated-string", 'x = "never closed\n', 1, "syntax error"),
    p("unclosed-paren", HEAD + "print((1, 2)\n", 2, "syntax error"),
    Bad("null-byte", ".py", "x = 1\n\x00\n", None, "null bytes"),
    Bad("not-utf8", ".py", b"x = '\xff\xfe'\n", 1, "syntax error"),
    p("import-error", "import orchestrion_no_such_module\n", 1, "ModuleNotFoundError"),
    p("name-error-at-import", HEAD + "undefined_name + 1\n", 2, "NameError"),
    p(
        "exception-at-import",
        HEAD + "raise RuntimeError('config missing')\n",
        2,
        "RuntimeError: config missing",
    ),
    p("sys-exit-0-at-import", "import sys\nsys.exit(0)\n", 2, "SystemExit"),
    p("sys-exit-3-at-import", "raise SystemExit(3)\n", 1, "SystemExit"),
    p("recursion-at-import", "def f(n):\n    return f(n + 1)\n\nf(0)\n", None, "RecursionError"),
    p(
        "no-workflow",
        HEAD + "\n@task\ndef a() -> int:\n    return 1\n",
        None,
        "defines no workflow",
    ),
    # --- decoration errors
    p(
        "unknown-task-option",
        HEAD
        + """
        @task(retry=3)
        def a() -> int:
            return 1
        """,
        None,
        "unknown option 'retry'",
    ),
    p(
        "bad-task-timeout",
        HEAD
        + """
        @task(timeout="5 minutes")
        def a() -> int:
            return 1

        @workflow
        def wf():
            a()
        """,
        None,
        "bad duration",
    ),
    p(
        "negative-retries",
        HEAD
        + """
        @task(retries=-1)
        def a() -> int:
            return 1
        """,
        None,
        "bad retry option",
    ),
    p(
        "bad-trigger-rule",
        HEAD
        + """
        @task(trigger_rule="sometimes")
        def a() -> int:
            return 1

        @workflow
        def wf():
            a()
        """,
        None,
        "trigger_rule",
    ),
    p(
        "bad-when-callable-signature",
        HEAD
        + """
        def cond(day):
            return True

        @task(when=cond)
        def a() -> int:
            return 1
        """,
        None,
        "it may only take the keyword arguments 'params'",
    ),
    p(
        "unknown-workflow-setting",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow(retries=3)
        def wf():
            a()
        """,
        None,
        "unknown setting 'retries'",
    ),
    p(
        "bad-cron",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow(schedule="61 * * * *")
        def wf():
            a()
        """,
        None,
        "bad cron expression",
    ),
    p(
        "bad-timezone",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow(schedule="0 3 * * *", timezone="Mars/Olympus")
        def wf():
            a()
        """,
        None,
        "unknown time zone",
    ),
    p(
        "bad-workflow-timeout",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow(timeout="a while")
        def wf():
            a()
        """,
        None,
        "bad duration",
    ),
    p(
        "bad-workflow-name",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow(name="my workflow")
        def wf():
            a()
        """,
        None,
        "is invalid",
    ),
    p(
        "unsupported-param-type",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf(tags: set[str] = frozenset()):
            a()
        """,
        None,
        "is not supported",
    ),
    p(
        "param-default-wrong-type",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf(n: int = "many"):
            a()
        """,
        None,
        "is not of type integer",
    ),
    p(
        "varargs-param",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf(*days):
            a()
        """,
        None,
        "cannot be a workflow parameter",
    ),
    # --- build errors
    p(
        "no-tasks",
        HEAD
        + """
        @workflow
        def wf():
            pass
        """,
        None,
        "defines no tasks",
    ),
    p(
        "duplicate-explicit-names",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf():
            a.options(name="step")()
            a.options(name="step")()
        """,
        10,
        "duplicate task name",
    ),
    p(
        "duplicate-shell-names",
        HEAD
        + """
        @workflow
        def wf():
            shell("s", argv=["echo", "1"])
            shell("s", argv=["echo", "2"])
        """,
        6,
        "duplicate task name",
    ),
    p(
        "non-json-set-literal",
        HEAD
        + """
        @task
        def a(xs) -> int:
            return 1

        @workflow
        def wf():
            a({1, 2, 3})
        """,
        9,
        "not JSON-serialisable",
    ),
    p(
        "non-json-object-literal",
        HEAD
        + """
        import datetime

        @task
        def a(when) -> int:
            return 1

        @workflow
        def wf():
            a(datetime.datetime(2026, 1, 1))
        """,
        11,
        "not JSON-serialisable",
    ),
    p(
        "non-json-bytes",
        HEAD
        + """
        @task
        def a(data) -> int:
            return 1

        @workflow
        def wf():
            a(b"raw")
        """,
        9,
        "not JSON-serialisable",
    ),
    p(
        "non-json-nan",
        HEAD
        + """
        @task
        def a(x) -> int:
            return 1

        @workflow
        def wf():
            a(float("nan"))
        """,
        9,
        "is not a JSON number",
    ),
    p(
        "non-json-int-keys",
        HEAD
        + """
        @task
        def a(m) -> int:
            return 1

        @workflow
        def wf():
            a({1: "one"})
        """,
        9,
        "is not a string",
    ),
    p(
        "non-json-param-default",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf(limit: dict = {"max": float("inf")}):
            a()
        """,
        None,
        "is not a JSON number",
    ),
    p(
        "if-on-a-ref",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf():
            if a():
                a()
        """,
        9,
        "cannot be used in 'if'",
    ),
    p(
        "iterate-a-ref",
        HEAD
        + """
        @task
        def a() -> list:
            return [1]

        @workflow
        def wf():
            for x in a():
                pass
        """,
        9,
        "cannot be iterated",
    ),
    p(
        "compare-a-param",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf(day: str = "mon"):
            if day == "mon":
                a()
        """,
        9,
        "cannot be compared",
    ),
    p(
        "unknown-keyword-argument",
        HEAD
        + """
        @task
        def a(x: int) -> int:
            return x

        @workflow
        def wf():
            a(y=1)
        """,
        9,
        "unknown argument 'y'",
    ),
    p(
        "missing-argument",
        HEAD
        + """
        @task
        def a(x: int) -> int:
            return x

        @workflow
        def wf():
            a()
        """,
        9,
        "bad arguments",
    ),
    p(
        "ctx-passed-by-hand",
        HEAD
        + """
        @task
        def a(ctx) -> int:
            return 1

        @workflow
        def wf():
            a(ctx=None)
        """,
        9,
        "is passed by the worker",
    ),
    p(
        "formatted-ref-to-python-task",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @task
        def b(text: str) -> str:
            return text

        @workflow
        def wf():
            b(f"value={a()}")
        """,
        13,
        "was formatted into a string",
    ),
    p(
        "map-over-a-literal",
        HEAD
        + """
        @task
        def a(x: int) -> int:
            return x

        @workflow
        def wf():
            a.map([1, 2, 3])
        """,
        9,
        "must be a task result or an array parameter",
    ),
    p(
        "shell-argv-is-a-string",
        HEAD
        + """
        @workflow
        def wf():
            shell("s", argv="echo hi")
        """,
        5,
        "argv is a list of arguments",
    ),
    p(
        "shell-script-templated",
        HEAD
        + """
        @workflow
        def wf(day: str = "mon"):
            shell("s", script=f"echo {day}")
        """,
        5,
        "script must be plain text",
    ),
    p(
        "shell-bad-task-name",
        HEAD
        + """
        @workflow
        def wf():
            shell("bad name", argv=["echo"])
        """,
        5,
        "is invalid",
    ),
    p(
        "http-bad-method",
        HEAD
        + """
        @workflow
        def wf():
            http("h", "http://127.0.0.1/", method="FETCH")
        """,
        5,
        "method",
    ),
    p(
        "when-string-syntax-error",
        HEAD
        + """
        @task(when="params.x ==")
        def a() -> int:
            return 1

        @workflow
        def wf(x: int = 1):
            a()
        """,
        None,
        "bad expression",
    ),
    p(
        "when-string-unknown-param",
        HEAD
        + """
        @task(when="params.nope > 1")
        def a() -> int:
            return 1

        @workflow
        def wf(x: int = 1):
            a()
        """,
        None,
        "unknown parameter 'nope'",
    ),
    p(
        "when-string-reads-a-task-it-does-not-depend-on",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @task(when="tasks.a > 0")
        def b() -> int:
            return 2

        @workflow
        def wf():
            a()
            b()
        """,
        None,
        "does not depend on 'a'",
    ),
    p(
        "hand-written-template-unknown-name",
        HEAD
        + """
        @workflow
        def wf():
            shell("s", argv=["echo", "{{ os.environ }}"])
        """,
        None,
        "unknown name 'os'",
    ),
    p(
        "hand-written-template-unclosed",
        HEAD
        + """
        @workflow
        def wf(x: int = 1):
            http("h", "http://127.0.0.1/{{ params.x ")
        """,
        None,
        "without a closing",
    ),
    p(
        "workflow-returns-a-value",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf():
            a()
            return 42
        """,
        None,
        "returned 42",
    ),
    p(
        "workflow-calls-itself",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf():
            a()
            wf()
        """,
        10,
        "cannot run itself",
    ),
    p(
        "ref-from-another-workflow",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @task
        def b(x: int) -> int:
            return x

        leaked = []

        @workflow
        def first():
            leaked.append(a())

        @workflow
        def second():
            first.spec
            b(leaked[0])
        """,
        None,
        "belongs to workflow 'first'",
    ),
    p(
        "exception-in-workflow-body",
        HEAD
        + """
        @task
        def a() -> int:
            return 1

        @workflow
        def wf():
            a()
            {}["missing"]
        """,
        10,
        "KeyError",
    ),
    p(
        "sys-exit-in-workflow-body",
        HEAD
        + """
        import sys

        @task
        def a() -> int:
            return 1

        @workflow
        def wf():
            a()
            sys.exit(0)
        """,
        12,
        "SystemExit",
    ),
    p(
        "priority-out-of-range",
        HEAD
        + """
        @task(priority=5000)
        def a() -> int:
            return 1

        @workflow
        def wf():
            a()
        """,
        None,
        "priority",
    ),
    Bad(
        "unsupported-suffix",
        ".txt",
        "name: wf\ntasks:\n  a: {shell: [echo]}\n",
        None,
        "unsupported workflow file type",
    ),
]

CASES = YAML_CASES + PY_CASES

#: Run as real subprocesses too (the rest go through CliRunner only).
SUBPROCESS = {
    "unclosed-flow-list",
    "anchor-and-alias",
    "python-object-tag",
    "oversized",
    "cycle",
    "bad-cron-minute",
    "when-calls-os-system",
    "syntax-error",
    "sys-exit-0-at-import",
    "non-json-set-literal",
    "duplicate-explicit-names",
    "no-workflow",
}


def test_the_catalogue_is_big_and_distinct() -> None:
    ids = [case.id + case.suffix for case in CASES]
    assert len(set(ids)) == len(ids), "duplicate case ids"
    contents = [case.content for case in CASES]
    assert len(set(contents)) == len(contents), "two cases have the same file"
    assert len(CASES) >= 100
    assert len(YAML_CASES) >= 40 and len(PY_CASES) >= 40
    assert {case.id for case in CASES} >= SUBPROCESS


def write(tmp_path: Path, index: int, case: Bad) -> Path:
    # A unique stem per case: a Python file is imported under its stem as module name.
    stem = f"bad_{index:03d}_{case.id.replace('-', '_')}"
    path = tmp_path / "files" / f"{stem}{case.suffix}"
    path.parent.mkdir(exist_ok=True)
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_text(case.content, encoding="utf-8")
    return path


def check_refused(res: Result, path: Path, case: Bad) -> None:
    assert res.code == 2, res
    assert "Traceback" not in res.stderr, res
    text = res.stderr
    assert str(path) in text or path.name in text, f"the message does not name the file\n{res}"
    if case.line is not None:
        assert f"{path.name}:{case.line}" in text, f"no line {case.line} named\n{res}"
    assert case.message in text, f"expected {case.message!r}\n{res}"


def check_nothing_written(db: Path) -> None:
    rows = db_rows(db)
    assert rows.get("runs", 0) == 0 and rows.get("workflows", 0) == 0, rows


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id + c.suffix for c in CASES])
def test_bad_file_is_refused_in_process(cli: Cli, tmp_path: Path, index: int) -> None:
    case = CASES[index]
    path = write(tmp_path, index, case)
    check_refused(cli.inproc("validate", path), path, case)
    db = tmp_path / "bad.db"
    check_refused(cli.inproc("run", path, db=db), path, case)
    check_nothing_written(db)


SUBPROCESS_CASES = [i for i, case in enumerate(CASES) if case.id in SUBPROCESS]


@pytest.mark.parametrize("index", SUBPROCESS_CASES, ids=[CASES[i].id for i in SUBPROCESS_CASES])
def test_bad_file_is_refused_by_the_command(cli: Cli, tmp_path: Path, index: int) -> None:
    case = CASES[index]
    path = write(tmp_path, index, case)
    check_refused(cli("validate", path), path, case)
    db = tmp_path / "bad.db"
    check_refused(cli("run", path, "-p", "x=1", db=db), path, case)
    check_nothing_written(db)
    # validate -o json: the same verdict, for scripts
    res = cli("validate", path, "-o", "json")
    assert res.code == 2, res
    [entry] = res.json()
    assert entry["ok"] is False and case.message in entry["error"]


def test_several_files_one_bad(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\ntasks:\n  a: {shell: [echo, hi]}\n")
    bad = write(tmp_path, 0, YAML_CASES[5])
    res = cli("validate", good, bad)
    assert res.code == 2, res
    assert "ok" in res.stdout and str(good) in res.stdout
    assert bad.name in res.stderr

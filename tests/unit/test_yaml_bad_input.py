"""Malformed workflow files: each must fail with one SpecError that says where and why.

The table holds hand-written files, one problem each, with the message fragment and the line
the error must name. Hypothesis then throws garbage and mutations at the loader: whatever
comes in, the only exception that may come out is SpecError.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrion.errors import CycleError, SpecError
from orchestrion.spec.kinds import installed_kinds
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.yaml.loader import (
    ACTION_KEYS,
    TASK_KEYS,
    TOP_LEVEL_KEYS,
    load_yaml_file,
    load_yaml_text,
)

OK_TASK = "  a: {python: m:f}\n"


def case(text: str, message: str, line: int | None, name: str) -> pytest.ParameterSet:
    return pytest.param(textwrap.dedent(text).lstrip("\n"), message, line, id=name)


# fmt: off
CASES = [
    # ---------------------------------------------------------------- YAML itself
    case("", "the file is empty", None, "empty"),
    case("# only a comment\n", "the file is empty", None, "only-comment"),
    case("---\n", "the file is empty", None, "empty-document"),
    case("~\n", "the file is empty", None, "null-document"),
    case("- a\n- b\n", "the top level must be a mapping of workflow fields, got a list", 1,
         "top-level-list"),
    case("hello\n", "top level must be a mapping of workflow fields, got 'hello'", 1,
         "top-level-scalar"),
    case("42\n", "got 42", 1, "top-level-number"),
    case("name: w\ntasks:\n" + OK_TASK + "---\nname: x\n", "a second document starts", 4,
         "two-documents"),
    case("""
        name: w
        base: &b {python: m:f}
        tasks:
          a: *b
        """,
         "YAML anchors and aliases are not allowed", 2, "anchor"),
    case("name: w\ntasks: *t\n", "YAML anchors and aliases are not allowed", 2, "alias"),
    case("""
        name: w
        tasks:
          a:
            <<: *defaults
            python: m:f
        """,
         "YAML anchors and aliases are not allowed", 4, "merge-key"),
    case('!!python/object/apply:os.system ["echo hi"]\n', "found '!!python/object/apply:os.system'",
         1, "python-apply-tag"),
    case("name: !!python/name:os.system\ntasks:\n" + OK_TASK, "YAML tags are not allowed", 1,
         "python-name-tag"),
    case("name: w\ntasks:\n  a: !task {python: m:f}\n", "found '!task'", 3, "local-tag"),
    case("name: !!str w\ntasks:\n" + OK_TASK, "found '!!str'", 1, "str-tag"),
    case("!!map {name: w}\n", "found '!!map'", 1, "map-tag"),
    case("name: w\ndescription: !!binary aGk=\ntasks:\n" + OK_TASK, "found '!!binary'", 2,
         "binary-tag"),
    case("name: w\nname: x\ntasks:\n" + OK_TASK, "duplicate key 'name'", 2, "duplicate-key"),
    case("name: w\ntasks:\n  a: {python: m:f}\n  a: {python: m:g}\n", "duplicate task name 'a'", 4,
         "duplicate-task"),
    case("""
        name: w
        tasks:
          a:
            python: m:f
            python: m:g
        """,
         "duplicate key 'python'", 5, "duplicate-task-field"),
    case("name: w\n1: x\ntasks:\n" + OK_TASK, "mapping keys must be strings, got 1", 2, "int-key"),
    case("name: w\n~: x\n", "mapping keys must be strings, got null", 2, "null-key"),
    case("name: w\ntrue: x\n", "mapping keys must be strings, got true", 2, "bool-key"),
    case("? [a]\n: 1\n", "mapping keys must be strings, got a list", 1, "complex-key"),
    case("name: w\ntasks: [a\n", "YAML syntax error", 3, "unclosed-flow"),
    case("name: w\n tasks: x\n", "mapping values are not allowed", 2, "bad-indent"),
    case("name: w\ntasks:\n\ta: {python: m:f}\n", "YAML syntax error", 3, "tab-indent"),
    case('name: "w\ntasks: {}\n', "YAML syntax error", 3, "unclosed-quote"),
    case("name: w\nschedule: * * * * *\ntasks:\n" + OK_TASK,
         "quote values that start with '*', such as cron expressions", 2, "unquoted-cron"),
    case("name: w\x00\n", "character YAML does not allow", 1, "nul-character"),
    case("name: w\ndescription: \x07bell\n", "character YAML does not allow", 2, "control-char"),
    # ---------------------------------------------------------------- top level
    case("name: w\nversion: 2\ntasks:\n" + OK_TASK, "unknown field 'version' in the workflow", 2,
         "unknown-top-field"),
    case("name: w\ntask:\n" + OK_TASK, "did you mean 'tasks'?", 2, "typo-tasks"),
    case("tasks:\n" + OK_TASK, "name: missing required field 'name'", 1, "missing-name"),
    case("name: 5\ntasks:\n" + OK_TASK, "expected a string, got 5 (quote it", 1, "int-name"),
    case("name: my workflow\ntasks:\n" + OK_TASK, "invalid name 'my workflow'", 1, "bad-name"),
    case("name: " + "w" * 101 + "\ntasks:\n" + OK_TASK, "invalid name", 1, "long-name"),
    case("name: w\n", "a workflow needs 'tasks'", 1, "missing-tasks"),
    case("name: w\ntasks: {}\n", "a workflow needs 'tasks'", 2, "empty-tasks"),
    case("name: w\ntasks:\n", "got nothing", 2, "null-tasks"),
    case("name: w\ntasks:\n  - name: a\n    python: m:f\n", "not a list (write 'extract:'", 2,
         "tasks-as-list"),
    case("name: w\ntasks: run\n", "got 'run'", 2, "tasks-as-string"),
    case("name: w\ndescription: [1]\ntasks:\n" + OK_TASK, "description: expected a string", 2,
         "description-list"),
    case("name: w\ntimeout: forever\ntasks:\n" + OK_TASK, "bad duration 'forever'", 2,
         "bad-timeout"),
    case("name: w\ntimeout: -5\ntasks:\n" + OK_TASK, "out of range", 2, "negative-timeout"),
    case("name: w\ntimeout: 0\ntasks:\n" + OK_TASK, "must be greater than 0", 2, "zero-timeout"),
    case("name: w\ntimeout: 20y\ntasks:\n" + OK_TASK, "bad duration '20y'", 2, "timeout-years"),
    case("name: w\nmax_active_runs: 0\ntasks:\n" + OK_TASK, "must be at least 1, got 0", 2,
         "zero-max-runs"),
    case("name: w\nmax_active_runs: yes\ntasks:\n" + OK_TASK, "expected an integer, got 'yes'", 2,
         "yes-max-runs"),
    case("name: w\nmax_active_runs: '3'\ntasks:\n" + OK_TASK, "(remove the quotes)", 2,
         "quoted-max-runs"),
    case("name: w\ntags: etl\ntasks:\n" + OK_TASK, "tags: expected a list, got 'etl'", 2,
         "tags-string"),
    case("name: w\ntags: [1]\ntasks:\n" + OK_TASK, "tags[0]: expected a string, got 1", 2,
         "tags-int"),
    # ---------------------------------------------------------------- params
    case("name: w\nparams: [a]\ntasks:\n" + OK_TASK, "'params' must be a mapping", 2,
         "params-list"),
    case("name: w\nparams:\n  p: int\ntasks:\n" + OK_TASK, "params.p: expected one of", 3,
         "param-bad-type"),
    case("name: w\nparams:\n  p: {type: string, min: 1}\ntasks:\n" + OK_TASK,
         "unknown field 'min' in parameter 'p'", 3, "param-unknown-field"),
    case("name: w\nparams:\n  p: {type: integer, default: '3'}\ntasks:\n" + OK_TASK,
         "default '3' is not a valid integer", 3, "param-default-string"),
    case("name: w\nparams:\n  p: {type: boolean, default: NO}\ntasks:\n" + OK_TASK,
         "default 'NO' is not a valid boolean", 3, "param-default-NO"),
    case("name: w\nparams:\n  p: {type: integer, default: 0755}\ntasks:\n" + OK_TASK,
         "default '0755' is not a valid integer", 3, "param-default-0755"),
    case("name: w\nparams:\n  p: {type: number, default: true}\ntasks:\n" + OK_TASK,
         "default true is not a valid number", 3, "param-default-bool-number"),
    case("name: w\nparams:\n  p: {type: date, default: 2026-13-01}\ntasks:\n" + OK_TASK,
         "is not a valid date", 3, "param-bad-date"),
    case("name: w\nparams:\n  p: {type: datetime, default: yesterday}\ntasks:\n" + OK_TASK,
         "is not a valid datetime", 3, "param-bad-datetime"),
    case("name: w\nparams:\n  p: {type: string, required: yes}\ntasks:\n" + OK_TASK,
         "expected true or false, got 'yes' (YAML 1.1 words", 3, "param-required-yes"),
    case("name: w\nparams:\n  p: {type: string, required: true, default: x}\ntasks:\n" + OK_TASK,
         "a required parameter cannot have a default", 3, "param-required-default"),
    case("name: w\nparams:\n  p: {type: string, enum: []}\ntasks:\n" + OK_TASK,
         "enum must be a non-empty list", 3, "param-empty-enum"),
    case("name: w\nparams:\n  p: {type: integer, enum: [1, x]}\ntasks:\n" + OK_TASK,
         "enum value 'x' is not a valid integer", 3, "param-enum-type"),
    case("name: w\nparams:\n  p: {type: string, default: c, enum: [a, b]}\ntasks:\n" + OK_TASK,
         "default 'c' is not one of the enum values", 3, "param-default-not-in-enum"),
    case("name: w\nparams:\n  my param: string\ntasks:\n" + OK_TASK,
         "invalid parameter name 'my param'", 3, "param-bad-name"),
    case("name: w\nparams:\n  p: [string]\ntasks:\n" + OK_TASK,
         "expected a type name or a mapping, got a list", 3, "param-list"),
    case("name: w\nparams:\n  p: {description: 5}\ntasks:\n" + OK_TASK,
         "params.p.description: expected a string, got 5", 3, "param-description-int"),
    # ---------------------------------------------------------------- schedules
    case("name: w\nschedule: '0 * * * *'\nschedules: []\ntasks:\n" + OK_TASK,
         "use either 'schedule' or 'schedules'", 3, "schedule-and-schedules"),
    case("name: w\nschedules: '0 * * * *'\ntasks:\n" + OK_TASK, "'schedules' must be a list", 2,
         "schedules-string"),
    case("name: w\nschedule: {cron: '61 * * * *'}\ntasks:\n" + OK_TASK,
         "schedule.cron: bad cron expression '61 * * * *'", 2, "cron-bad-minute"),
    case("name: w\nschedules:\n  - cron: daily\ntasks:\n" + OK_TASK, "bad cron expression 'daily'",
         3, "cron-word"),
    case("name: w\nschedule: {cron: '* * * * *', timezone: Mars/Olympus}\ntasks:\n" + OK_TASK,
         "unknown time zone 'Mars/Olympus'", 2, "bad-timezone"),
    case("name: w\nschedule: {cron: '* * * * *', tz: UTC}\ntasks:\n" + OK_TASK,
         "unknown field 'tz' in the schedule", 2, "schedule-unknown-field"),
    case("name: w\nschedule: {timezone: UTC}\ntasks:\n" + OK_TASK,
         "schedule: a schedule needs exactly one of 'cron' or 'every'", 2, "schedule-no-cron"),
    case("name: w\nschedule: [a]\ntasks:\n" + OK_TASK, "must be a mapping, got a list", 2,
         "schedule-list"),
    case("name: w\nparams: {n: integer}\nschedule: {cron: '* * * * *', params: {x: 1}}\n"
        "tasks:\n" + OK_TASK,
         "unknown parameter 'x' (declared: n)", 3, "schedule-unknown-param"),
    case("name: w\nparams: {n: integer}\nschedule: {cron: '* * * * *', params: {n: '3'}}\n"
        "tasks:\n" + OK_TASK,
         "'3' is not a valid integer", 3, "schedule-param-type"),
    case("name: w\nparams: {n: {type: integer, required: true}}\nschedule: '* * * * *'\n"
        "tasks:\n" + OK_TASK,
         "does not set required parameter 'n'", 3, "schedule-missing-param"),
    case("name: w\nparams: {e: {enum: [a, b]}}\nschedule: {cron: '* * * * *', params: {e: c}}\n"
        "tasks:\n" + OK_TASK,
         "'c' is not one of the enum values", 3, "schedule-param-enum"),
    # ---------------------------------------------------------------- tasks
    case("name: w\ntasks:\n  a:\n", "task 'a' needs an action", 3, "null-task"),
    case("name: w\ntasks:\n  a: m:f\n", "task 'a' must be a mapping, got 'm:f'", 3, "scalar-task"),
    case("name: w\ntasks:\n  a: {queue: io}\n", "needs an action: one of python, shell, http", 3,
         "no-action"),
    case("name: w\ntasks:\n  a: {python: m:f, shell: [ls]}\n",
         "has more than one action (python, shell)", 3, "two-actions"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    enabled: NO\n",
         "unknown field 'enabled' in task 'a'", 5, "unknown-task-field"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    depend_on: [a]\n",
         "did you mean 'depends_on'?", 5, "typo-depends-on"),
    case("name: w\ntasks:\n  bad name: {python: m:f}\n", "tasks.bad name: invalid name", 3,
         "bad-task-name"),
    case("name: w\ntasks:\n  " + "t" * 101 + ": {python: m:f}\n", "invalid name", 3,
         "long-task-name"),
    case("name: w\ntasks:\n  a: {python: m:f, depends_on: [nope]}\n",
         "unknown task 'nope' in depends_on", 3, "unknown-dependency"),
    case("name: w\ntasks:\n  extract: {python: m:f}\n  b: {python: m:f, depends_on: extrct}\n",
         "did you mean 'extract'?", 4, "dependency-typo"),
    case("name: w\ntasks:\n  a: {python: m:f, depends_on: [3]}\n", "expected a task name, got 3", 3,
         "dependency-int"),
    case("name: w\ntasks:\n  a: {python: m:f, depends_on: {b: 1}}\n",
         "expected a task name or a list", 3, "dependency-mapping"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    depends_on: a\n", "dependency cycle: a -> a",
         5, "self-dependency"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    depends_on: [b]\n  b:\n    python: m:f\n"
        "    depends_on: [a]\n",
         "dependency cycle: a -> b -> a", 5, "two-cycle"),
    case("""
        name: w
        tasks:
          a:
            python: m:f
            inputs: {x: "{{ tasks.c.out }}"}
          b:
            python: m:f
            when: tasks.a.ok
          c:
            python: m:f
            depends_on: b
        """,
         "dependency cycle: a -> c -> b -> a", 5, "implied-cycle"),
    case("name: w\ntasks:\n  a: {python: m:f, trigger_rule: sometimes}\n",
         "expected one of 'all_success'", 3, "bad-trigger-rule"),
    case("name: w\ntasks:\n  a: {python: m:f, priority: 5000}\n", "must be at most 1000", 3,
         "priority-high"),
    case("name: w\ntasks:\n  a: {python: m:f, priority: true}\n", "expected an integer, got true",
         3, "priority-bool"),
    case("name: w\ntasks:\n  a: {python: m:f, concurrency: 0}\n", "must be at least 1", 3,
         "concurrency-zero"),
    case("name: w\ntasks:\n  a: {python: m:f, concurrency: on}\n", "expected an integer, got 'on'",
         3, "concurrency-on"),
    case("name: w\ntasks:\n  a: {python: m:f, concurrency: 1.5}\n", "expected an integer, got 1.5",
         3, "concurrency-float"),
    case("name: w\ntasks:\n  a: {python: m:f, queue: 5}\n", "expected a string, got 5", 3,
         "queue-int"),
    case("name: w\ntasks:\n  a: {python: m:f, queue: 'a b'}\n", "invalid name 'a b'", 3,
         "queue-bad-name"),
    case("name: w\ntasks:\n  a: {python: m:f, timeout: 1:30}\n", "bad duration '1:30'", 3,
         "timeout-sexagesimal"),
    case("name: w\ntasks:\n  a: {python: m:f, timeout: 5 minutes}\n", "bad duration", 3,
         "timeout-words"),
    case("name: w\ntasks:\n  a: {python: m:f, timeout: false}\n", "expected a duration", 3,
         "timeout-bool"),
    case("name: w\ntasks:\n  a: {python: m:f, description: [x]}\n", "expected a string", 3,
         "task-description-list"),
    # ---------------------------------------------------------------- retry
    case("name: w\ntasks:\n  a: {python: m:f, retry: three}\n",
         "expected a number of retries or a mapping, got 'three'", 3, "retry-word"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: true}\n",
         "expected a number of retries or a mapping, got true", 3, "retry-bool"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    retry:\n      retries: three\n",
         "tasks.a.retry.retries: expected an integer, got 'three'", 6, "retries-word"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    retry:\n      retries: 0755\n",
         "a number with a leading zero stays a string", 6, "retries-0755"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: {max_retries: 3}}\n",
         "unknown field 'max_retries' in retry", 3, "retry-unknown-field"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: {retries: -1}}\n", "must be at least 0", 3,
         "retries-negative"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: -2}\n", "tasks.a.retry: must be at least 0", 3,
         "retry-shorthand-negative"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: {factor: 0.5}}\n", "must be at least 1", 3,
         "retry-factor"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: {jitter: 2}}\n", "must be at most 1", 3,
         "retry-jitter"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: {backoff: soon}}\n", "bad duration 'soon'", 3,
         "retry-backoff"),
    case("name: w\ntasks:\n  a: {python: m:f, retry: {retry_on: ValueError}}\n",
         "expected a list, got 'ValueError'", 3, "retry-on-string"),
    # ---------------------------------------------------------------- actions
    case("name: w\ntasks:\n  a: {python: print}\n", "expected 'module:function'", 3,
         "python-no-colon"),
    case("name: w\ntasks:\n  a: {python: 'os:system; rm -rf /'}\n", "expected 'module:function'", 3,
         "python-injection"),
    case("name: w\ntasks:\n  a: {python: [m, f]}\n", "expected 'module:function'", 3,
         "python-list"),
    case("name: w\ntasks:\n  a: {python: '{{ params.f }}'}\n", "expected 'module:function'", 3,
         "python-template"),
    case("name: w\ntasks:\n  a:\n    shell: {argv: [ls], script: ls}\n",
         "either 'argv' or 'script', not both", 4, "shell-argv-and-script"),
    case("name: w\ntasks:\n  a:\n    shell: {env: {A: b}}\n", "needs 'argv'", 4, "shell-neither"),
    case("name: w\ntasks:\n  a:\n    shell: {argv: []}\n", "'argv' must not be empty", 4,
         "shell-empty-argv"),
    case("name: w\ntasks:\n  a:\n    shell: []\n", "'argv' must not be empty", 4,
         "shell-empty-shorthand"),
    case("name: w\ntasks:\n  a:\n    shell:\n      argv: [sleep, 5]\n",
         "tasks.a.shell.argv[1]: expected a string, got 5 (quote it", 5, "shell-int-arg"),
    case("name: w\ntasks:\n  a:\n    shell: ls -la\n", "must be a mapping, got 'ls -la'", 4,
         "shell-string"),
    case("name: w\ntasks:\n  a:\n    shell: {argv: [a], shell: true}\n",
         "unknown field 'shell' in the shell action", 4, "shell-unknown-field"),
    case("name: w\ntasks:\n  a:\n    shell:\n      argv: [a]\n      env: {1X: a}\n",
         "bad environment variable name '1X'", 6, "shell-bad-env-name"),
    case("name: w\ntasks:\n  a:\n    shell:\n      argv: [a]\n      env: {X: 1}\n",
         "tasks.a.shell.env.X: expected a string, got 1", 6, "shell-env-int"),
    case("name: w\ntasks:\n  a:\n    shell: {argv: [a], json_output: yes}\n",
         "expected true or false, got 'yes'", 4, "shell-json-output-yes"),
    case("name: w\nparams: {x: string}\ntasks:\n  a:\n    shell:\n"
         "      script: echo {{ params.x }}\n",
         "scripts are not templated", 6, "shell-templated-script"),
    case("name: w\nparams: {x: string}\ntasks:\n  a:\n    shell: [echo, '{{ params.x']\n",
         "'{{' without a closing '}}'", 5, "shell-unclosed-template"),
    case("name: w\ntasks:\n  a:\n    http: {method: GET}\n",
         "tasks.a.http.url: missing required field 'url'", 4, "http-no-url"),
    case("name: w\ntasks:\n  a:\n    http: {method: fetch, url: 'https://x'}\n",
         "expected one of 'GET', 'POST'", 4, "http-bad-method"),
    case("name: w\ntasks:\n  a:\n    http: {url: 'https://x', body: {}}\n",
         "unknown field 'body' in the http action", 4, "http-unknown-field"),
    case("name: w\ntasks:\n  a:\n    http: {url: 'https://x', timeout: 1:00}\n", "bad duration", 4,
         "http-bad-timeout"),
    case("name: w\ntasks:\n  a:\n    http: {url: 'https://x', expect_status: '200'}\n",
         "expected a list, got '200'", 4, "http-status-string"),
    case("name: w\ntasks:\n  a:\n    http: {url: 'https://x', headers: [a]}\n",
         "expected a mapping, got a list", 4, "http-headers-list"),
    case("name: w\ntasks:\n  a:\n    http: {url: ''}\n", "must not be empty", 4, "http-empty-url"),
    case("name: w\ntasks:\n  a:\n    http: https://x\n", "'http' must be a mapping", 4,
         "http-string"),
    case("name: w\ntasks:\n  a:\n    workflow: 'child flow'\n", "invalid name 'child flow'", 4,
         "workflow-bad-name"),
    case("name: w\ntasks:\n  a:\n    workflow: {params: {}}\n",
         "tasks.a.workflow.name: missing required field 'name'", 4, "workflow-no-name"),
    case("name: w\ntasks:\n  a:\n    workflow: {name: c, version: 2}\n",
         "unknown field 'version' in the workflow action", 4, "workflow-unknown-field"),
    case("name: w\ntasks:\n  a:\n    workflow: {name: c, params: [1]}\n",
         "expected a mapping, got a list", 4, "workflow-params-list"),
    # ---------------------------------------------------------------- expressions
    case("name: w\ntasks:\n  a: {python: m:f, inputs: [x]}\n", "'inputs' must be a mapping", 3,
         "inputs-list"),
    case("name: w\ntasks:\n  a: {python: m:f, inputs: {my-input: 1}}\n",
         "input name 'my-input' is not a valid identifier", 3, "input-bad-name"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    inputs:\n      x: '{{ params.__class__ }}'\n",
         "attribute '__class__' is not allowed", 6, "dunder-attribute"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    inputs:\n"
         "      x: \"{{ open('/etc/passwd') }}\"\n",
         "function 'open' is not allowed", 6, "open-call"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: ().__class__.__bases__\n",
         "attribute '__bases__' is not allowed", 5, "class-bases"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: '(lambda: 1)'\n",
         "lambda is not allowed", 5, "lambda"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: '[x for x in []]'\n",
         "comprehensions are not allowed", 5, "comprehension"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: (y := 1)\n",
         "assignment (:=) is not allowed", 5, "walrus"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: f'{1}'\n", "f-strings are not allowed",
         5, "f-string"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: 2 ** 64 > 1\n",
         "operator '**' is not allowed", 5, "power"),
    case("name: w\nparams: {n: integer}\ntasks:\n  a:\n    python: m:f\n    when: params.n >\n",
         "syntax error at column", 6, "syntax-error"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: foo.bar\n",
         "unknown name 'foo' (use params, tasks or item)", 5, "unknown-name"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    inputs: {x: '{{ tasks.nope.v }}'}\n",
         "unknown task 'nope' in expression", 5, "unknown-task-in-input"),
    case("name: w\ntasks:\n  extract: {python: m:f}\n  b:\n    python: m:f\n"
        "    when: tasks.extrac.ok\n",
         "did you mean 'extract'?", 6, "task-typo-in-when"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    inputs: {x: '{{ tasks.a.v }}'}\n",
         "task 'a' cannot use its own result", 5, "self-reference"),
    case("name: w\nparams: {region: string}\ntasks:\n  a:\n    python: m:f\n"
        "    when: params.reigon == 'eu'\n",
         "unknown parameter 'reigon'; did you mean 'region'?", 6, "param-typo"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    inputs: {x: '{{ item }}'}\n",
         "'item' is defined only in the fields of a task with 'map'", 5, "item-without-map"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    map: '[1]'\n    when: item > 0\n",
         "'item' is defined only", 6, "item-in-when"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    map: item\n", "'item' is defined only", 5,
         "item-in-map"),
    case("name: w\ntasks:\n  a: {python: m:f, when: true}\n",
         "expected an expression string, got true", 3, "when-bool"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: '{{ 1 }} and {{ 2 }}'\n",
         "write one expression", 5, "when-two-templates"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    map: '{{ tasks.nope }}'\n",
         "unknown task 'nope'", 5, "map-unknown-task"),
    case("name: w\nparams: {t: string}\ntasks:\n  a:\n    python: m:f\n    when: tasks[params.t]\n",
         "'tasks' must be followed by a task name", 6, "dynamic-task-lookup"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    when: " + "x or " * 500 + "x\n",
         "expression is too long", 5, "expression-too-long"),
    case("name: w\ntasks:\n  a:\n    http:\n      url: 'https://x/{{ tasks.b.id }}'\n",
         "unknown task 'b'", 5, "http-url-unknown-task"),
    case("name: w\ntasks:\n  a:\n    http:\n      url: 'https://x'\n"
         "      json: {k: ['{{ 1 +  }}']}\n",
         "tasks.a.http.json.k[0]: bad expression: syntax error", 6, "http-json-bad-template"),
    # ---------------------------------------------------------------- undo
    case("name: w\ntasks:\n  a: {python: m:f, undo: 'm:g'}\n", "'undo'", 3, "undo-string"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    undo: {python: m:g, shell: [x]}\n",
         "has more than one action (python, shell)", 5, "undo-two-actions"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    undo: {python: m:g, retry: 2}\n",
         "unknown field 'retry' in the undo of task 'a'", 5, "undo-unknown-field"),
    case("name: w\ntasks:\n  b: {python: m:f}\n  c: {python: m:f, depends_on: b}\n  a:\n"
         "    python: m:f\n    depends_on: c\n    undo: {shell: [x, '{{ tasks.b.id }}']}\n",
         "which 'a' does not depend on", 8, "undo-transitive-reference"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    undo: {}\n", "needs an action", 5,
         "undo-empty"),
    case("name: w\ntasks:\n  a:\n    python: m:f\n    undo:\n      shell: [x, '{{ tasks.b.id }}']\n"
        "  b: {python: m:f}\n",
         "the undo of 'a' reads 'b', which 'a' does not depend on", 6, "undo-downstream-reference"),
]
# fmt: on


@pytest.mark.parametrize(("text", "message", "line"), CASES)
def test_bad_file_fails_with_located_message(text: str, message: str, line: int | None) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, source="bad.yaml")
    error = info.value
    assert message in str(error)
    assert error.source == "bad.yaml"
    assert str(error).startswith("bad.yaml")
    assert error.line == line, str(error)


def test_there_are_enough_hand_written_cases() -> None:
    assert len(CASES) >= 100
    assert len({p.id for p in CASES}) == len(CASES)


def test_cycle_error_type_and_cycle() -> None:
    text = "name: w\ntasks:\n  a: {python: m:f, depends_on: b}\n  b: {python: m:f, depends_on: a}\n"
    with pytest.raises(CycleError) as info:
        load_yaml_text(text, source="c.yaml")
    assert info.value.cycle == ["a", "b", "a"]
    assert info.value.path == "tasks.a.depends_on"
    assert info.value.line == 3


def test_several_pydantic_errors_report_the_first_and_count() -> None:
    text = "name: w\ntasks:\n  a:\n    python: m:f\n    priority: x\n    concurrency: 0\n"
    with pytest.raises(SpecError) as info:
        load_yaml_text(text)
    assert info.value.path == "tasks.a.priority"
    assert info.value.line == 5
    assert "(and 1 more error)" in str(info.value)


def test_error_fields_are_set() -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text("name: w\ntasks:\n  a:\n    python: m:f\n    retry: {retries: x}\n")
    error = info.value
    assert (error.path, error.line, error.column) == ("tasks.a.retry.retries", 5, 22)
    assert error.detail == "expected an integer, got 'x'"


# --------------------------------------------------------------------------- resource limits


def test_billion_laughs_is_rejected_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.monotonic()
    with pytest.raises(SpecError, match="anchors and aliases are not allowed") as info:
        load_yaml_text("\n".join(lines) + "\n")
    assert time.monotonic() - start < 1.0
    assert info.value.line == 1


def test_size_cap() -> None:
    text = "name: w\ndescription: " + "x" * 2000 + "\ntasks:\n" + OK_TASK
    with pytest.raises(SpecError, match=r"too large \(2,0\d\d bytes; the limit is 1,000\)"):
        load_yaml_text(text, max_bytes=1000)
    with pytest.raises(SpecError, match="too large"):
        load_yaml_text(text.encode(), max_bytes=1000)
    load_yaml_text(text, max_bytes=len(text))
    with pytest.raises(SpecError, match="too large"):  # multi-byte characters count as bytes
        load_yaml_text("name: w\ndescription: " + "é" * 600 + "\n", max_bytes=1000)


def test_default_size_cap_is_one_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: w\ndescription: " + "x" * 1_048_576 + "\n")
    with pytest.raises(SpecError, match="the limit is 1,048,576") as info:
        load_yaml_file(path)
    assert info.value.source == str(path)


@pytest.mark.parametrize("depth", [51, 1_000, 100_000])
def test_depth_cap_without_recursion(depth: int) -> None:
    text = "name: w\ndescription: " + "[" * depth + "]" * depth + "\n"
    start = time.monotonic()
    with pytest.raises(
        SpecError, match=r"nesting is deeper than 50 levels|maximum nesting"
    ) as info:
        load_yaml_text(text)
    assert time.monotonic() - start < 2.0
    assert info.value.line == 2


def test_depth_cap_block_style_and_parameter() -> None:
    text = "name: w\ntasks:\n  a:\n    python: m:f\n    inputs:\n      x: {a: {b: {c: 1}}}\n"
    load_yaml_text(text, max_depth=7)
    with pytest.raises(SpecError, match="deeper than 6 levels") as info:
        load_yaml_text(text, max_depth=6)
    assert info.value.line == 6


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'!!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(SpecError, match="YAML tags are not allowed"):
        load_yaml_text(text)
    assert not marker.exists()


def test_non_utf8_bytes() -> None:
    with pytest.raises(SpecError, match=r"not valid UTF-8 \(byte 0xff\)") as info:
        load_yaml_text(b"name: w\ndescription: caf\xff\n")
    assert (info.value.line, info.value.column) == (2, 17)
    with pytest.raises(SpecError, match="not valid UTF-8"):
        load_yaml_text("name: w\n".encode("utf-16"))


# --------------------------------------------------------------------------- generated


VALID = textwrap.dedent(
    """
    name: w
    params:
      n: {type: integer, default: 2}
    schedule: {cron: "0 3 * * *", timezone: UTC}
    tasks:
      a:
        python: m:f
        retry: {retries: 2, backoff: 5s}
      b:
        shell: [echo, "{{ tasks.a.out }}"]
        when: params.n > 1
      c:
        depends_on: [a, b]
        http: {url: "https://x.example/{{ params.n }}", method: POST}
    """
).lstrip()


def load_or_spec_error(text: str | bytes) -> WorkflowSpec | None:
    """Load; a SpecError is fine, any other exception fails the test."""
    try:
        return load_yaml_text(text, source="fuzz.yaml")
    except SpecError as exc:
        assert exc.source == "fuzz.yaml"
        return None


def test_valid_base_loads() -> None:
    assert load_or_spec_error(VALID) is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_binary_garbage_is_a_spec_error(data: bytes) -> None:
    with pytest.raises(SpecError):
        load_yaml_text(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_text_garbage_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError):
        load_yaml_text(text)


_GARBAGE = st.sampled_from(
    ["", ":", "- ", "{", "}", "[", "]", "&x ", "*x", "!!str ", "? ", "|", ">", "'", '"', "#",
     "{{", "}}", "\t", "  ", "\n", "%YAML 1.1\n", "---\n", "...\n", "NO", "0755", "1:30", "~",
     "__class__", "tasks.a", "{{ tasks.zz }}", "\x00", "é", "\ufeff"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_valid_file_loads_or_fails_cleanly(data: st.DataObject) -> None:
    text = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            text = text[:position] + data.draw(_GARBAGE) + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + data.draw(st.integers(1, 20)) :]
        else:
            text = text[:position] + data.draw(_GARBAGE) + text[position + 1 :]
    load_or_spec_error(text)


_LINES = VALID.splitlines(keepends=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=25))
def test_shuffled_lines_load_or_fail_cleanly(lines: list[str]) -> None:
    load_or_spec_error("".join(lines))


#: (text in VALID, replacement template, values that make the field invalid)
_FIELDS = [
    ("name: w", "name: {}",
     ["'a b'", "1:30", "0755", "[]", "{}", "~", "x" * 120, "!!str x", "&a x", "1", "true"]),
    ("default: 2", "default: {}",
     ["NO", "yes", "0755", "1:30", "'3'", "[]", "{}", "1.5", "true", "!!int 3", "*a"]),
    ('cron: "0 3 * * *"', "cron: {}",
     ["NO", "'61 * * * *'", "'* * *'", "[]", "{}", "~", "1", "'@never'"]),
    ("timezone: UTC", "timezone: {}", ["NO", "Mars/Olympus", "'UTC+25'", "[]", "1", "~", "true"]),
    ("retries: 2", "retries: {}",
     ["NO", "yes", "'3'", "0755", "1:30", "-1", "1.5", "[]", "1001", "true", "~"]),
    ("backoff: 5s", "backoff: {}", ["NO", "1:30", "-1", "1e999", "[]", "{}", "~", "true", "'5 s'"]),
    ("python: m:f", "python: {}",
     ["NO", "m", "'m:'", "':f'", "[]", "{}", "~", "1", "'{{{{ x }}}}'", "'a b:c'"]),
    ("method: POST", "method: {}", ["NO", "yes", "FETCH", "[]", "1", "~", "true"]),
    ("depends_on: [a, b]", "depends_on: {}", ["NO", "[a, zz]", "[c]", "{}", "1", "[1]", "true"]),
    ("when: params.n > 1", "when: {}",
     ["NO", "true", "1", "~", "'{{{{ ().__class__ }}}}'", "'{{{{ tasks.nope }}}}'", "[]", "{}",
      "'__import__(\"os\")'", "'x +'", "'params.zz'"]),
    ("type: integer", "type: {}", ["NO", "int", "yes", "[]", "{}", "1", "string"]),
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_bad_value_in_any_field_is_a_spec_error(data: st.DataObject) -> None:
    original, template, values = data.draw(st.sampled_from(_FIELDS))
    text = VALID.replace(original, template.format(data.draw(st.sampled_from(values))), 1)
    assert text != VALID
    with pytest.raises(SpecError):
        load_yaml_text(text)


_SECTIONS = [("", ""), ("tasks:\n  a:\n", "    "), ("  b:\n", "    ")]
# The loader's own key lists and the installed kinds' names: a hand-kept copy fell behind
# when fields were added (`wait_for`, `approval`, `cache`...), and the random keys below
# then found one as a false failure.
_KNOWN = {*TOP_LEVEL_KEYS, *TASK_KEYS, *ACTION_KEYS, *installed_kinds().names()}


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(_SECTIONS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12),
)
def test_unknown_field_anywhere_is_a_spec_error(section: tuple[str, str], key: str) -> None:
    if key in _KNOWN or key in ("true", "false", "null"):
        return  # a real field, or a key YAML reads as a non-string
    head, indent = section
    assert head in VALID
    text = VALID.replace(head, head + f"{indent}{key}: 1\n", 1) if head else f"{key}: 1\n" + VALID
    with pytest.raises(SpecError, match=f"unknown field '{key}'"):
        load_yaml_text(text)

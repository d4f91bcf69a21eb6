"""Task secret references in the spec: YAML ``secrets:``, ``@task(secrets=...)``, checks,
and unchanged version hashes for tasks without secrets."""

from __future__ import annotations

import pytest

from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import Secret
from orchestrion.errors import OrchestrionError, SecretError, SpecError
from orchestrion.spec.model import PythonAction, ShellAction, TaskSpec, WorkflowSpec
from orchestrion.spec.python import shell, task, workflow
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.worker.context import TaskContext
from tests.helpers import task_context


def _yaml(secrets: str) -> WorkflowSpec:
    return load_yaml_text(f"name: wf\ntasks:\n  t:\n    shell: [env]\n    secrets: {secrets}\n")


def test_yaml_secrets_are_references() -> None:
    spec = _yaml("{DB_PASSWORD: db-password, API_KEY: api.key}")
    assert spec.tasks[0].secrets == {"DB_PASSWORD": "db-password", "API_KEY": "api.key"}


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ("{1BAD: x}", "invalid environment variable name"),
        ("{'A-B': x}", "invalid environment variable name"),
        ("{A: other/x}", "no '/'"),
        ("{A: '{{ params.x }}'}", "expected a secret name"),
        ("{A: 3}", "expected a secret name"),
        ("[a, b]", "secrets"),
    ],
    ids=["digit", "dash", "slash", "template", "number", "list"],
)
def test_yaml_bad_secret_references(secrets: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _yaml(secrets)


def test_env_and_secrets_may_not_set_the_same_variable() -> None:
    with pytest.raises(ValueError, match="both by 'env' and by 'secrets'"):
        TaskSpec(name="t", action=ShellAction(argv=("env",), env={"A": "1"}), secrets={"A": "x"})


def test_no_secrets_keeps_the_version_hash() -> None:
    plain = WorkflowSpec(name="w", tasks=(TaskSpec(name="t", action=PythonAction(ref="m:f")),))
    assert '"secrets"' not in plain.to_json()
    with_one = WorkflowSpec(
        name="w",
        tasks=(TaskSpec(name="t", action=PythonAction(ref="m:f"), secrets={"A": "a"}),),
    )
    assert with_one.version != plain.version
    assert WorkflowSpec.from_json(with_one.to_json()) == with_one


def test_python_task_secrets_by_name_and_by_mapping() -> None:
    @task(secrets=["db-password", "api.key"])
    def uses(ctx: TaskContext) -> None:
        return None

    @workflow
    def flow() -> None:
        uses()
        shell("s", argv=["env"], secrets={"TOKEN": "token"})

    spec = flow.spec
    assert spec.task("uses").secrets == {"DB_PASSWORD": "db-password", "API_KEY": "api.key"}
    assert spec.task("s").secrets == {"TOKEN": "token"}


def test_ctx_secret_reads_declared_secrets_only() -> None:
    ctx = task_context(secret_values={"a": Secret("value-a")})
    assert ctx.secret("a") == "value-a"
    assert "value-a" not in repr(ctx)
    with pytest.raises(SecretError, match="did not declare the secret 'b'"):
        ctx.secret("b")


def test_settings_read_the_key_ring_and_allow_list_from_the_environment() -> None:
    assert Settings.from_env({}).key_ring is None
    dev = Settings.from_env({"ORCHESTRION_DEV_MODE": "1"})
    assert dev.dev_mode and dev.key_ring is not None and dev.key_ring.is_dev
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    ring = Settings.from_env({"ORCHESTRION_MASTER_KEY": f"main:{key}"}).key_ring
    assert ring is not None and ring.current_id == "main"
    with pytest.raises(SecretError, match="not valid base64"):
        Settings.from_env({"ORCHESTRION_MASTER_KEY": "nope!"})
    allow = Settings.from_env({"ORCHESTRION_HTTP_ALLOW": "10.0.0.0/8, internal.example"})
    assert allow.http_allow.allows_host("internal.example")
    with pytest.raises(OrchestrionError, match="ORCHESTRION_HTTP_ALLOW"):
        Settings.from_env({"ORCHESTRION_HTTP_ALLOW": "a/b/c"})


@pytest.mark.parametrize("expr", ["secrets.token", "env.TOKEN", "ctx.secret", "secret('token')"])
def test_templates_have_no_way_to_read_a_secret(expr: str) -> None:
    text = (
        "name: w\ntasks:\n  t:\n"
        f'    shell: [echo, "{{{{ {expr} }}}}"]\n'
        "    secrets: {TOKEN: token}\n"
    )
    with pytest.raises(SpecError):
        load_yaml_text(text)

"""Concurrency keys in YAML and Python, and the ``orchestrion queues`` commands."""

from __future__ import annotations

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.python import task, workflow
from orchestrion.spec.yaml.loader import load_yaml_text

_KEYED = (
    "name: g\nparams: {customer: {type: string}}\ntasks:\n  a:\n    shell: [echo]\n"
    '    concurrency_key: "customer-{{ params.customer }}"\n    key_limit: 2\n'
)


def test_yaml_concurrency_key() -> None:
    (a,) = load_yaml_text(_KEYED).tasks
    assert (a.concurrency_key, a.key_limit) == ("customer-{{ params.customer }}", 2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('concurrency_key: "k"', "go together"),
        ("key_limit: 2", "go together"),
        ('concurrency_key: "k"\n    key_limit: 0', "key_limit"),
    ],
    ids=["no-limit", "no-key", "zero"],
)
def test_yaml_concurrency_key_errors(body: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_yaml_text(f"name: g\ntasks:\n  a:\n    shell: [echo]\n    {body}\n")


def test_python_concurrency_key() -> None:
    @task(concurrency_key="customer-{{ params.customer }}", key_limit=1)
    def sync(customer: str) -> None: ...

    @workflow
    def per_customer(customer: str) -> None:
        sync(customer)

    (t,) = per_customer.spec.tasks
    assert (t.concurrency_key, t.key_limit) == ("customer-{{ params.customer }}", 1)


def test_unset_keys_keep_the_canonical_json() -> None:
    # Versions of workflows registered before slots existed must not change.
    text = load_yaml_text("name: g\ntasks:\n  a:\n    shell: [echo]\n").to_json()
    assert "concurrency_key" not in text and "key_limit" not in text
    assert "key_limit" in load_yaml_text(_KEYED).to_json()

"""Declared assets and asset triggers in the spec (YAML and Python), and the pure
decisions of the assets duty: which partitions fire, and an asset's freshness."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrion import asset, asset_metadata, assets_updated
from orchestrion.errors import SpecError
from orchestrion.spec.model import TriggerSpec
from orchestrion.spec.python import task, workflow
from orchestrion.spec.structs import Invalid as ValidationError
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.store.asset_records import AssetEvent
from orchestrion.triggers.assets import asset_state, plan_fires

CONSUMER = """
name: consumer
params: {day: {type: string}}
triggers:
  - assets: [warehouse.sales, warehouse.refunds]
    when: all_updated
    params: {day: "{{ partition }}"}
tasks:
  load:
    shell: [echo, hi]
    consumes: [warehouse.sales]
    produces:
      - warehouse.mart
      - {asset: "s3://bucket/daily", partition: "{{ params.day }}", max_age: 26h}
"""


def test_yaml_declares_assets_and_an_asset_trigger() -> None:
    spec = load_yaml_text(CONSUMER)
    (load,) = spec.tasks
    assert [r.key for r in load.produces] == ["warehouse.mart", "s3://bucket/daily"]
    assert load.produces[1].partition == "{{ params.day }}"
    assert load.produces[1].max_age == 26 * 3600
    assert [r.key for r in load.consumes] == ["warehouse.sales"]
    (trigger,) = spec.triggers
    assert trigger.assets == ("warehouse.sales", "warehouse.refunds")
    assert trigger.key("consumer") == (
        "consumer/assets:all_updated:warehouse.refunds,warehouse.sales"
    )


def test_python_declares_the_same() -> None:
    @task(produces=[asset("warehouse.mart"), "warehouse.extra"], consumes=["warehouse.sales"])
    def load(day: str) -> str:
        return day

    @workflow(triggers=[assets_updated(["warehouse.sales"], params={"day": "{{ partition }}"})])
    def consumer(day: str = "x"):  # type: ignore[no-untyped-def]
        load(day)

    spec = consumer.spec
    assert [r.key for r in spec.tasks[0].produces] == ["warehouse.mart", "warehouse.extra"]
    assert spec.triggers[0].when == "all_updated"
    assert asset_metadata(rows=3) == {"__orchestrion_asset_metadata__": {"rows": 3}}


def test_a_spec_without_assets_keeps_its_version() -> None:
    plain = load_yaml_text("name: p\ntasks:\n  t: {shell: [echo]}\n")
    assert "produces" not in plain.to_json() and "assets" not in plain.to_json()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("produces: ['bad key']", "produces"),
        ("produces: [{asset: a, partition: '{{ params.nope }}'}]", "nope"),
        ("produces: [{asset: a, max_age: soon}]", "max_age"),
    ],
)
def test_bad_asset_declarations_are_refused(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_yaml_text(f"name: p\ntasks:\n  t:\n    shell: [echo]\n    {text}\n")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"assets": ["a", "a"]}, "twice"),
        ({"assets": ["bad key"]}, "bad asset key"),
        ({"event": "x", "when": "all_updated"}, "asset triggers only"),
        ({"assets": ["a"], "params": {"p": "{{ event.id }}"}}, "unknown name"),
        ({"assets": []}, "at least 1"),
    ],
)
def test_bad_asset_triggers_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TriggerSpec.model_validate(fields)


def test_asset_helper_names_the_problem() -> None:
    with pytest.raises(SpecError, match="asset 'no spaces'"):
        asset("no spaces")


def _event(i: int, key: str, partition: str | None) -> AssetEvent:
    return AssetEvent(
        id=i, namespace="default", asset=key, partition=partition, workflow="w",
        run_id=f"r{i}", task_name="t", task_run_id=i, attempt=1, metadata=None, created_at=0.0,
    )  # fmt: skip


def test_all_updated_fires_a_partition_once_every_asset_has_an_event_in_it() -> None:
    trigger = TriggerSpec(assets=("s", "r"), when="all_updated")
    events = [
        _event(1, "s", "d1"),
        _event(2, "r", "d2"),
        _event(3, "s", "d1"),
        _event(4, "r", "d1"),
    ]
    (fire,) = plan_fires(trigger, events)
    assert fire.partition == "d1" and fire.event_ids == (1, 3, 4)
    assert fire.scope["partition"] == "d1"
    assert fire.scope["assets"]["s"]["id"] == 3  # the newest of each asset
    assert plan_fires(trigger, events[:3]) == []


def test_any_updated_fires_each_partition_with_any_event() -> None:
    trigger = TriggerSpec(assets=("s", "r"), when="any_updated")
    fires = plan_fires(trigger, [_event(1, "s", None), _event(2, "r", "d2")])
    assert [(f.partition, f.event_ids) for f in fires] == [(None, (1,)), ("d2", (2,))]


def test_freshness() -> None:
    assert asset_state(None, 10.0, 100.0) == "missing"
    assert asset_state(95.0, None, 100.0) == "unknown"
    assert asset_state(95.0, 10.0, 100.0) == "fresh"
    assert asset_state(80.0, 10.0, 100.0) == "stale"

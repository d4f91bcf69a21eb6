"""`orchestrion.store.record`: the records' base and the helpers the edges use on them."""

from __future__ import annotations

import dataclasses
import pickle
from collections import namedtuple

import pytest
from rich.pretty import pretty_repr

from orchestrion.states import RunState
from orchestrion.store.record import as_dict, field_names, is_record, replace
from orchestrion.store.records import (
    CacheKey,
    PruneCounts,
    RunRecord,
    SessionRecord,
    TokenRecord,
    UserRecord,
)

USER = UserRecord(
    id="u1",
    name="ana",
    password_hash="$argon2id$SECRET-HASH",
    bindings={"*": "admin"},
    disabled=False,
    auth_epoch=1,
    created_at=1.0,
    updated_at=1.0,
)
TOKEN = TokenRecord(
    id="t1",
    name="ci",
    token_hash="SECRET-TOKEN-HASH",
    bindings={"*": "viewer"},
    created_by="u1",
    created_at=1.0,
    expires_at=None,
    revoked_at=None,
)
SESSION = SessionRecord(
    id_hash="SECRET-SESSION-HASH",
    user_id="u1",
    csrf="SECRET-CSRF",
    auth_epoch=1,
    created_at=1.0,
    expires_at=2.0,
    revoked_at=None,
)


@pytest.mark.parametrize("record", [USER, TOKEN, SESSION], ids=lambda r: type(r).__name__)
def test_a_record_that_hides_a_secret_hides_it_from_rich_too(record: object) -> None:
    """msgspec gives a Struct a ``__rich_repr__`` listing every field; records drop it, so
    rich (pretty output, a traceback's locals) shows the record's own ``repr``."""
    for shown in (repr(record), str(record), pretty_repr(record), pretty_repr({"r": [record]})):
        assert "SECRET" not in shown, shown
    assert pretty_repr(record) == repr(record)


def test_records_are_frozen_values() -> None:
    with pytest.raises(AttributeError):
        USER.name = "eve"  # type: ignore[misc]
    same = UserRecord(**as_dict(USER))
    assert same == USER and hash(TOKEN.id) == hash(TOKEN.id)
    assert same is not USER and replace(USER, name="eve") != USER
    assert pickle.loads(pickle.dumps(USER)) == USER
    assert CacheKey("ns", "wf", "task", "key") == CacheKey(
        namespace="ns", workflow="wf", task_name="task", key="key"
    )  # a record that was not keyword-only still takes its fields by position


def test_replace_and_field_names_take_records_and_dataclasses() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int
        b: str = "x"

    assert replace(PruneCounts(runs=1), events=2) == PruneCounts(runs=1, events=2)
    assert replace(Plain(1), b="y") == Plain(1, "y")
    assert field_names(Plain) == ("a", "b") == field_names(Plain(1))
    assert field_names(RunRecord)[:3] == ("id", "workflow", "version")
    assert field_names(USER) == field_names(UserRecord)
    assert is_record(USER) and is_record(Plain(1))
    assert not is_record(UserRecord) and not is_record(Plain) and not is_record({"a": 1})


def test_as_dict_converts_records_at_any_depth_and_keeps_the_rest() -> None:
    Pair = namedtuple("Pair", "left right")

    @dataclasses.dataclass(frozen=True)
    class Holder:
        records: list[object]
        by_name: dict[str, object]
        pair: object
        state: RunState

    held = Holder([PruneCounts(runs=3)], {"t": TOKEN}, Pair(SESSION, 1), RunState.RUNNING)
    out = as_dict(held)
    assert out["records"] == [as_dict(PruneCounts(runs=3))] and out["records"][0]["runs"] == 3
    assert out["by_name"]["t"]["token_hash"] == TOKEN.token_hash
    assert isinstance(out["pair"], Pair) and out["pair"].left["user_id"] == "u1"
    assert out["state"] is RunState.RUNNING  # not converted: as dataclasses.asdict
    with pytest.raises(TypeError, match="not a record"):
        as_dict([USER])


def test_replace_checks_the_copy_as_the_class_checks_a_new_one() -> None:
    """msgspec's own replace skips ``__post_init__``; a dataclass's did not, and a
    principal's bindings and a master key are checked there."""
    from types import MappingProxyType

    from orchestrion.auth.principals import Principal, PrincipalKind, Role
    from orchestrion.auth.secret_box import MasterKey
    from orchestrion.errors import OrchestrionError

    ana = Principal(kind=PrincipalKind.USER, id="u1", name="ana")
    granted = replace(ana, bindings={"finance": Role.VIEWER})
    assert isinstance(granted.bindings, MappingProxyType)  # read-only again
    with pytest.raises(OrchestrionError):
        replace(ana, bindings={"Not A Namespace!": Role.VIEWER})
    with pytest.raises(OrchestrionError, match="32 bytes"):
        replace(MasterKey("k1", b"\x01" * 32), key=b"short")

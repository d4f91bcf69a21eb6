"""Sealed secrets: AES-GCM bound to namespace/name, key ids, rotation, refusal without a key."""

from __future__ import annotations

import base64
import os
import pickle
from pathlib import Path

import pytest
from msgspec.structs import replace

from orchestrion.auth.secret_box import (
    DEV_KEY_ID,
    KeyRing,
    MasterKey,
    Sealed,
    Secret,
    decrypt,
    encrypt,
    generate_key_text,
    load_key_ring,
    rotate,
)
from orchestrion.errors import SecretError

VALUE = "sentinel-7f3a-warehouse-password"


def key(key_id: str) -> MasterKey:
    return MasterKey(key_id, os.urandom(32))


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([key("k1")])


def test_round_trip(ring: KeyRing) -> None:
    sealed = encrypt(ring, "finance", "warehouse-password", VALUE)
    assert sealed.key_id == "k1" and len(sealed.nonce) == 12
    assert VALUE.encode() not in sealed.ciphertext
    opened = decrypt(ring, "finance", "warehouse-password", sealed)
    assert opened.reveal() == VALUE
    assert decrypt(ring, "finance", "x", encrypt(ring, "finance", "x", Secret(""))).reveal() == ""


def test_fresh_nonce_every_time(ring: KeyRing) -> None:
    seals = [encrypt(ring, "finance", "pw", VALUE) for _ in range(50)]
    assert len({s.nonce for s in seals}) == 50
    assert len({s.ciphertext for s in seals}) == 50


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("marketing", "warehouse-password"), ("finance", "other"), ("finance", "warehouse-passwor")],
)
def test_moved_ciphertext_does_not_open(ring: KeyRing, namespace: str, name: str) -> None:
    sealed = encrypt(ring, "finance", "warehouse-password", VALUE)
    with pytest.raises(SecretError, match=f"{namespace}/{name}") as info:
        decrypt(ring, namespace, name, sealed)
    assert VALUE not in str(info.value)


def test_aad_is_unambiguous(ring: KeyRing) -> None:
    with pytest.raises(SecretError, match="namespace"):
        encrypt(ring, "fin/ance", "pw", VALUE)


@pytest.mark.parametrize("field", ["nonce", "ciphertext"])
@pytest.mark.parametrize("position", [0, -1])
def test_tampering_fails(ring: KeyRing, field: str, position: int) -> None:
    sealed = encrypt(ring, "finance", "pw", VALUE)
    data = bytearray(getattr(sealed, field))
    data[position] ^= 0x01
    if field == "nonce":
        tampered = replace(sealed, nonce=bytes(data))
    else:
        tampered = replace(sealed, ciphertext=bytes(data))
    with pytest.raises(SecretError, match="altered"):
        decrypt(ring, "finance", "pw", tampered)


def test_truncated_nonce_fails(ring: KeyRing) -> None:
    sealed = encrypt(ring, "finance", "pw", VALUE)
    with pytest.raises(SecretError, match="nonce"):
        decrypt(ring, "finance", "pw", replace(sealed, nonce=sealed.nonce[:8]))


def test_unknown_key_id(ring: KeyRing) -> None:
    sealed = encrypt(KeyRing([key("k0")]), "finance", "pw", VALUE)
    with pytest.raises(SecretError, match="unknown master key id 'k0'"):
        decrypt(ring, "finance", "pw", sealed)


def test_wrong_key_with_same_id(ring: KeyRing) -> None:
    sealed = encrypt(ring, "finance", "pw", VALUE)
    with pytest.raises(SecretError, match="wrong"):
        decrypt(KeyRing([key("k1")]), "finance", "pw", sealed)


def test_rotation_reencrypts_and_old_key_still_opens_old_data() -> None:
    old = key("k1")
    before = KeyRing([old])
    sealed_old = encrypt(before, "finance", "pw", VALUE)
    after = KeyRing([key("k2"), old])
    assert after.current_id == "k2" and after.key_ids == ("k2", "k1")
    assert decrypt(after, "finance", "pw", sealed_old).reveal() == VALUE
    rotated = rotate(after, "finance", "pw", sealed_old)
    assert rotated.key_id == "k2" and rotated.nonce != sealed_old.nonce
    assert decrypt(after, "finance", "pw", rotated).reveal() == VALUE
    assert rotate(after, "finance", "pw", rotated) is rotated
    with pytest.raises(SecretError, match="unknown master key id 'k2'"):
        decrypt(before, "finance", "pw", rotated)


# ---------------------------------------------------------------------------- loading


def test_missing_key_refuses_outside_dev_mode() -> None:
    with pytest.raises(SecretError, match="ORCHESTRION_MASTER_KEY") as info:
        load_key_ring({})
    assert "ORCHESTRION_MASTER_KEY_FILE" in str(info.value)
    assert "ORCHESTRION_DEV_MODE" in str(info.value)
    with pytest.raises(SecretError):
        load_key_ring({"ORCHESTRION_DEV_MODE": "0"})
    with pytest.raises(SecretError):
        load_key_ring({"ORCHESTRION_DEV_MODE": "1"}, dev_mode=False)


def test_dev_mode_uses_a_marked_stable_key() -> None:
    first = load_key_ring({"ORCHESTRION_DEV_MODE": "1"})
    second = load_key_ring({}, dev_mode=True)
    assert first.current_id == DEV_KEY_ID and first.is_dev
    sealed = encrypt(first, "finance", "pw", VALUE)
    assert decrypt(second, "finance", "pw", sealed).reveal() == VALUE


def test_key_from_env_with_derived_id() -> None:
    text = generate_key_text()
    ring = load_key_ring({"ORCHESTRION_MASTER_KEY": text, "ORCHESTRION_DEV_MODE": "1"})
    assert not ring.is_dev
    assert ring.current_id.startswith("k") and len(ring.current_id) == 13
    assert load_key_ring({"ORCHESTRION_MASTER_KEY": text}).current_id == ring.current_id


def test_several_keys_newest_first() -> None:
    new, old = generate_key_text(), generate_key_text()
    ring = load_key_ring({"ORCHESTRION_MASTER_KEY": f"k2:{new}, k1:{old}"})
    assert ring.key_ids == ("k2", "k1")


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(f"# rotated 2026-01\nk2:{generate_key_text()}\nk1:{generate_key_text()}\n")
    ring = load_key_ring({"ORCHESTRION_MASTER_KEY_FILE": str(path)})
    assert ring.key_ids == ("k2", "k1")
    with pytest.raises(SecretError, match="cannot read"):
        load_key_ring({"ORCHESTRION_MASTER_KEY_FILE": str(tmp_path / "missing")})
    with pytest.raises(SecretError, match="not both"):
        load_key_ring({"ORCHESTRION_MASTER_KEY_FILE": str(path), "ORCHESTRION_MASTER_KEY": "x"})


@pytest.mark.parametrize(
    "text",
    ["not base64!!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(33)).decode()],
)
def test_bad_key_text_is_refused_without_echo(text: str) -> None:
    with pytest.raises(SecretError) as info:
        load_key_ring({"ORCHESTRION_MASTER_KEY": text})
    assert text not in str(info.value)


def test_duplicate_ids_refused() -> None:
    with pytest.raises(SecretError, match="duplicate"):
        KeyRing([key("k1"), key("k1")])
    with pytest.raises(SecretError, match="no master key"):
        KeyRing([])
    with pytest.raises(SecretError, match="32 bytes"):
        MasterKey("k1", b"x" * 16)
    with pytest.raises(SecretError, match="key id"):
        MasterKey("bad id", bytes(32))


# ---------------------------------------------------------------------------- masking


def test_reprs_and_strings_are_masked(ring: KeyRing) -> None:
    secret = Secret(VALUE)
    raw = bytes(range(32))
    master = MasterKey("k9", raw)
    texts = [repr(secret), str(secret), f"{secret}", repr(master), repr(KeyRing([master]))]
    for text in texts:
        assert VALUE not in text and repr(raw) not in text and raw.hex() not in text
    assert str(secret) == "***"
    sealed = encrypt(ring, "finance", "pw", secret)
    assert isinstance(sealed, Sealed)
    assert VALUE not in repr(sealed)


def test_secret_equality_and_no_pickle() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert Secret(VALUE) != VALUE
    assert len({Secret(VALUE), Secret(VALUE)}) == 1
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(Secret(VALUE))

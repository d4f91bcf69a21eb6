"""The streaming encoder of large results writes exactly the store's canonical JSON, its
hot-path estimate is an upper bound, and the cap and the threshold are kept (a real
folder as the object store)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrion.store.objects import LocalObjects, ObjectRef, ObjectsSettings
from orchestrion.store.sql.jsontext import dumps
from orchestrion.worker import large_results
from orchestrion.worker.large_results import ResultFiles, ResultTooLarge, _chunks, _estimate

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(), inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_the_stream_is_the_canonical_json_and_the_estimate_bounds_it(value: Any) -> None:
    expected = dumps(value)
    assert "".join(_chunks(value, set())) == expected
    bound = _estimate(value, 10**12)
    assert bound is None or bound >= len(expected.encode())


def test_large_strings_are_sliced_and_still_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(large_results, "_SLICE", 7)
    monkeypatch.setattr(large_results, "_PIECE", 16)
    value = {"text": 'é"\n\\' * 40, "rows": [{"k": "v" * 30}] * 5}
    pieces = list(_chunks(value, set()))
    assert max(len(p) for p in pieces) < 40
    assert "".join(pieces) == dumps(value)


def test_what_is_not_json_is_refused_like_json_dumps() -> None:
    loop: list[Any] = ["x" * 100_000]
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        list(_chunks(loop, set()))
    with pytest.raises(TypeError, match="not JSON serializable"):
        list(_chunks(["x" * 100_000, object()], set()))


def _files(tmp_path: Path, **kw: Any) -> ResultFiles:
    return ResultFiles(LocalObjects((tmp_path / "objects").as_uri()), ObjectsSettings(**kw))


def test_small_values_stay_and_large_ones_are_stored_whole(tmp_path: Path) -> None:
    files = _files(tmp_path, threshold=10_000)
    many_small = list(range(1000))  # walked as "maybe large", encoded in memory: no file
    assert files.prepare(many_small, "t") == (many_small, None)
    assert files.prepare({"a": 1}, "t") == ({"a": 1}, None)
    value = {"rows": ["r" * 50] * 300}
    stored, ref = files.prepare(value, "t")
    assert ref is not None and ObjectRef.of(stored) == ref
    body = files.objects.local_path(ref.uri, tmp_path).read_bytes()
    assert body == dumps(value).encode() and hashlib.sha256(body).hexdigest() == ref.sha256
    assert files.values({"up": stored}) == {"up": value}
    staging = tmp_path / "objects" / ".staging"
    assert list(staging.iterdir()) == []


def test_the_cap_names_the_task_the_size_and_the_cap(tmp_path: Path) -> None:
    files = _files(tmp_path, threshold=100, max_bytes=10_000)
    with pytest.raises(ResultTooLarge) as caught:
        files.prepare(["x" * 1000] * 50, "export")
    message = str(caught.value)
    assert "task 'export'" in message and "cap of 10,000 bytes" in message
    assert list((tmp_path / "objects" / ".staging").iterdir()) == []  # the part file went


def test_an_artifacts_text_is_masked_like_the_rest_of_an_outcome() -> None:
    from orchestrion.auth.masking import Masker
    from orchestrion.store.artifact_records import ArtifactRecord
    from orchestrion.store.records import Outcome
    from orchestrion.worker.secrets import masked_outcome

    outcome = Outcome(
        task_run_id=1,
        epoch=1,
        status="succeeded",
        artifacts=(ArtifactRecord(kind="markdown", title="pw hunter2", body="# hunter2 here"),),
    )
    [masked] = masked_outcome(outcome, Masker(["hunter2"])).artifacts
    assert "hunter2" not in f"{masked.title} {masked.body}"
    assert masked.body is not None and masked.body.startswith("# ")

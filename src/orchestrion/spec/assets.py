"""Data assets: what a task produces and consumes, named by URI-like keys.

An `AssetRef` names an asset (``warehouse.sales``, ``s3://bucket/sales``) and, optionally,
a partition: a template over ``params`` (and ``item`` in a mapped task) that the worker
renders when the attempt succeeds (``"{{ params.day }}"``). A producer's ref may also
declare ``max_age``: the asset is stale when its newest event is older than that.

An asset trigger (``triggers: [{assets: [a, b], when: all_updated}]``, a `TriggerSpec`)
starts a run once every listed asset (``all_updated``) or any of them (``any_updated``)
has an event the trigger has not consumed yet, per partition; see
`orchestrion.triggers.assets`.
"""

from typing import TYPE_CHECKING, Annotated, Any

from msgspec import Meta

from orchestrion.spec.structs import Check, Duration, Invalid, Pattern, Range, SpecModel, Str

__all__ = [
    "ASSET_KEY_PATTERN",
    "METADATA_KEY",
    "AssetRef",
    "AssetRefs",
    "asset",
    "asset_metadata",
]

#: An asset key: URI-like (letters, digits and ``_ . : / - @ + =``), up to 300 characters.
ASSET_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+=\-]{0,299}$"

#: The key of a Python task's dict result that carries its asset events' metadata; the
#: worker takes it out of the result (`asset_metadata` builds it).
METADATA_KEY = "__orchestrion_asset_metadata__"


class AssetRef(SpecModel, frozen=True, kw_only=True):
    """One asset a task produces or consumes; a plain string is a key without a partition
    (`asset_refs` reads the short forms)."""

    key: Annotated[Str, Pattern(ASSET_KEY_PATTERN)]
    #: A template over ``params`` (and ``item``) rendered to the partition's name.
    partition: Annotated[Str, Meta(min_length=1, max_length=500)] | None = None
    #: A producer's freshness promise: stale when the newest event is older than this.
    max_age: Annotated[Duration, Range(gt=0)] | None = None


def _ref(value: Any) -> AssetRef:
    """An element of ``produces`` or ``consumes``: a ref, a plain key (a ref without a
    partition), or a mapping where ``asset:`` is another name for ``key:``."""
    if isinstance(value, AssetRef):
        return value
    if isinstance(value, str):
        value = {"key": value}
    elif isinstance(value, dict) and "asset" in value and "key" not in value:
        value = {("key" if k == "asset" else k): v for k, v in value.items()}
    return AssetRef.model_validate(value)


if TYPE_CHECKING:
    AssetRefs = tuple[AssetRef, ...]
else:
    #: A task's ``produces`` or ``consumes``, short forms taken (`_ref`).
    AssetRefs = tuple[Annotated[Any, Check(_ref)], ...]


def asset(
    key: str, *, partition: str | None = None, max_age: float | str | None = None
) -> AssetRef:
    """An asset for ``@task(produces=[...], consumes=[...])``: ``asset("warehouse.sales",
    partition="{{ params.day }}", max_age="26h")``."""
    from orchestrion.errors import SpecError

    try:
        return AssetRef.model_validate({"key": key, "partition": partition, "max_age": max_age})
    except Invalid as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else str(e["msg"])
            for e in exc.errors()
        )
        raise SpecError(f"asset {key!r}: {problems}") from None


def asset_metadata(**metadata: Any) -> dict[str, Any]:
    """What a Python task adds to its dict result to attach metadata (row counts, a
    checksum) to the asset events of its success: ``return {"total": 3,
    **asset_metadata(rows=1200)}``. The worker takes the key out of the stored result."""
    return {METADATA_KEY: metadata}

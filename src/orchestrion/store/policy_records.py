"""The records of admission policies: a stored version of a policy, and (re-exported
from the pure core, `orchestrion.spec.policies`) the findings and decision of an
evaluation, so that edges import every policy record from here. Pure, like `records`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrion.store.record import Record

if TYPE_CHECKING:
    from orchestrion.spec.policies.evaluation import Decision, Finding

__all__ = ["Decision", "Finding", "PolicyRecord"]


class PolicyRecord(Record, frozen=True, kw_only=True):
    """One version of a policy. Each change writes a new version (1, 2, ...); a deletion
    is a version too (`deleted`, keeping the last document), so the history stays whole
    and a policy deleted and written again continues its numbering."""

    name: str
    version: int
    #: The policy document as written (YAML or a dict), as JSON data.
    document: Mapping[str, Any]
    #: SHA-256 of the canonical JSON of `document`: an unchanged put writes nothing.
    digest: str
    deleted: bool
    created_at: float
    #: Who wrote this version (``user:ana``, ``cli:ana``), when known.
    created_by: str | None

    def to_wire(self) -> dict[str, Any]:
        """This version as the API sends it (and the CLI prints it): the record, and its
        document as YAML too."""
        import yaml  # only where a policy is shown

        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "deleted": self.deleted,
            "digest": self.digest,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "document": dict(self.document),
            "yaml": yaml.safe_dump(dict(self.document), sort_keys=False, allow_unicode=True),
        }

    @property
    def description(self) -> str:
        """The document's description (empty when it has none)."""
        text = self.document.get("description", "")
        return text if isinstance(text, str) else ""


def __getattr__(name: str) -> Any:
    """`Decision` and `Finding`, imported on first use: the store reads policy versions on
    every deploy and trigger, and needs the evaluation core only when there are some."""
    if name in ("Decision", "Finding"):
        from orchestrion.spec.policies import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

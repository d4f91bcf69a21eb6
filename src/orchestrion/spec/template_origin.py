"""Where a task came from: the template reference and digest recorded in the spec."""

from typing import Annotated, Final

from orchestrion.spec.structs import Pattern, SpecModel

__all__ = ["REF_PATTERN", "TemplateOrigin"]

#: ``library/template@version``: the version (a positive integer) is required.
REF_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_-]{0,99}/[A-Za-z_][A-Za-z0-9_-]{0,99}@[1-9][0-9]{0,8}$"


class TemplateOrigin(SpecModel, frozen=True, kw_only=True):
    """The template a task was expanded from. The spec holds the expanded task; this record
    says which template at which version made it, and the digest of that template's text, so
    that a deployed version never depends on the library staying as it was."""

    ref: Annotated[str, Pattern(REF_PATTERN)]
    digest: Annotated[str, Pattern(r"^sha256:[0-9a-f]{64}$")]

"""Admission policies: rules checked when a workflow is deployed and when a run is
triggered, written as data over the sandboxed expression language.

`model` parses and checks a policy document, `views` is what its expressions see of a
workflow and of the time, `evaluation` is the pure core (spec, request, principal, now ->
findings), `loading` reads YAML files and folders. The store keeps versions of them and
`orchestrion.app.policies` enforces them; nothing here touches either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrion.spec.policies.evaluation import (
        Decision,
        Finding,
        PolicyRequest,
        applies,
        evaluate,
    )
    from orchestrion.spec.policies.loading import load_policies, parse_policy_text, policy_documents
    from orchestrion.spec.policies.model import EFFECTS, ON, AppliesTo, Policy, Rule, parse_policy

__all__ = [
    "EFFECTS", "ON", "AppliesTo", "Decision", "Finding", "Policy", "PolicyRequest", "Rule",
    "applies", "evaluate", "load_policies", "parse_policy", "parse_policy_text",
    "policy_documents",
]  # fmt: skip

# Each name from its module, imported on first use (PEP 562): the store and the engine
# import one module of this package, and a run without policies none of it.
_HOME = {
    "Decision": "evaluation", "Finding": "evaluation", "PolicyRequest": "evaluation",
    "applies": "evaluation", "evaluate": "evaluation", "load_policies": "loading",
    "parse_policy_text": "loading", "policy_documents": "loading", "EFFECTS": "model",
    "ON": "model", "AppliesTo": "model", "Policy": "model", "Rule": "model",
    "parse_policy": "model",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

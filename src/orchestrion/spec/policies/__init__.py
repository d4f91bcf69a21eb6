"""Admission policies: rules checked when a workflow is deployed and when a run is
triggered, written as data over the sandboxed expression language.

`model` parses and checks a policy document, `views` is what its expressions see of a
workflow and of the time, `evaluate` is the pure core (spec, request, principal, now ->
findings), `loading` reads YAML files and folders. The store keeps versions of them and
`orchestrion.app.policies` enforces them; nothing here touches either.
"""

from __future__ import annotations

from orchestrion.spec.policies.evaluate import (
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

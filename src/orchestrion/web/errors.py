"""The JSON error body of the HTTP edge: what the guard's refusals and the API's error
handlers send, so a client reads every failure the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["error_response", "finding_json", "findings_header", "note_findings"]

#: What the header carries at most: clients refuse huge headers (httpx: 16 KiB in all).
_HEADER_FINDINGS = 20
_HEADER_TEXT = 300


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """``{"error": {"code": ..., "message": ...}}`` with this status, marked ``nosniff``
    here as well as by `headers.AlwaysHeaders`: Starlette answers an unexpected error (500)
    from outside every middleware the application adds."""
    body = {"error": {"code": code, "message": message, **(extra or {})}}
    return JSONResponse(
        body,
        status_code=status,
        headers={"X-Content-Type-Options": "nosniff", **(headers or {})},
    )


def finding_json(finding: Any) -> dict[str, Any]:
    """A policy finding (`orchestrion.store.policy_records.Finding`) as the API sends it,
    in error bodies and in the ``X-Policy-Findings`` header."""
    return {
        "policy": finding.policy,
        "rule": finding.rule,
        "effect": finding.effect,
        "field": finding.field,
        "message": finding.message,
        "text": str(finding),
    }


def findings_header(findings: Sequence[Any]) -> dict[str, str]:
    """``X-Policy-Findings``: the warnings (and approvals) of an accepted deploy or trigger,
    as a JSON list (ASCII, so any message fits a header; the first 20, texts cut at 300
    characters); nothing when there are none."""
    if not findings:
        return {}
    shown = [
        {k: v[:_HEADER_TEXT] for k, v in finding_json(f).items()}
        for f in findings[:_HEADER_FINDINGS]
    ]
    return {"X-Policy-Findings": json.dumps(shown)}


def note_findings(state: Any, findings: Sequence[Any]) -> None:
    """Add the findings of an accepted deploy or trigger to the request's audit record
    (`state`: the request's state, whose ``audit`` the guard filled): warnings are on file
    whoever reads the response."""
    audit = getattr(state, "audit", None)
    if findings and isinstance(audit, dict):
        audit.setdefault("params", {})["policy_findings"] = [str(f) for f in findings]

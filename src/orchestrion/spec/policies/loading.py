"""Policies from YAML: a file holds one policy, or several under ``policies:``; a folder
holds such files (``*.yaml``, ``*.yml``, read in name order)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from orchestrion.errors import PolicyError, SpecError
from orchestrion.spec.policies.model import Policy, parse_policy
from orchestrion.spec.yaml.reader import decode_text, read_document

__all__ = ["load_policies", "parse_policy_text", "policy_documents"]

_MAX_BYTES: Final = 262_144
_MAX_DEPTH: Final = 20


def policy_documents(text: str | bytes, *, source: str = "policy") -> list[dict[str, Any]]:
    """The policy documents of one YAML text (a policy, or ``policies:`` and a list of
    them), each checked by `parse_policy` (`PolicyError` names the file and field)."""
    try:
        decoded = decode_text(text, source, _MAX_BYTES)
        data, _, _ = read_document(decoded, source, _MAX_DEPTH)
    except SpecError as exc:  # the YAML's own syntax: a policy error all the same
        raise PolicyError(
            exc.detail, source=exc.source, path=exc.path, line=exc.line, column=exc.column
        ) from None
    many = isinstance(data, dict) and set(data) == {"policies"}
    items = data["policies"] if many else [data]
    if not isinstance(items, list):
        raise PolicyError("`policies` holds a list of policies", source=source, path="policies")
    if not items:
        raise PolicyError("the file holds no policy", source=source)
    for index, item in enumerate(items):
        where = f"{source}: policies[{index}]" if many else source
        parse_policy(item, source=where)
    return items


def parse_policy_text(text: str | bytes, *, source: str = "policy") -> list[Policy]:
    """The policies of one YAML text."""
    return [parse_policy(d, source=source) for d in policy_documents(text, source=source)]


def load_policies(path: str | os.PathLike[str]) -> list[Policy]:
    """The policies of a YAML file, or of every YAML file of a folder."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml"))
    elif root.is_file():
        files = [root]
    else:
        raise PolicyError("no such file or folder", source=str(root))
    found: list[Policy] = []
    for file in files:
        found.extend(parse_policy_text(file.read_bytes(), source=str(file)))
    names = [p.name for p in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PolicyError(f"policies named twice: {', '.join(twice)}", source=str(root))
    return found

"""Whether a workflow's Python references import, checked where a worker would import them.

`check_references` runs this module as a child process (``python -P -m``: the current
folder is not put on the import path, as for a worker), hands it each reference with the
version's code on stdin, and reads back what failed. The child imports user code, so the
process that asks (``orchestrion validate``) never does; the import goes through the same
snapshot loader as a worker's (`orchestrion.worker.snapshots`), so what passes here
resolves there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrion.spec.bundle import CodeBundle

__all__ = ["RefCheck", "check_references"]

#: How long the imports of one `validate` may take: user code that hangs on import must
#: not hang the command.
_TIMEOUT = 120.0


@dataclass(frozen=True)
class RefCheck:
    """One reference to check, in the version's code (None: from the environment)."""

    ref: str
    code: CodeBundle | None


def check_references(checks: Sequence[RefCheck], *, timeout: float = _TIMEOUT) -> list[str | None]:
    """For each check, None if its reference resolves to a callable, else why not."""
    if not checks:
        return []
    bundles = {c.code.digest: c.code.to_wire() for c in checks if c.code is not None}
    payload = {
        "bundles": bundles,
        "refs": [[c.ref, None if c.code is None else c.code.digest] for c in checks],
    }
    try:
        done = subprocess.run(
            [sys.executable, "-P", "-m", "orchestrion.worker.refcheck"],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [f"importing the code took over {timeout:.0f}s" for _ in checks]
    try:
        answers: list[str | None] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (done.stderr or done.stdout).strip()[-500:]
        return [f"the check could not run: {tail}" for _ in checks]
    return answers


def _main() -> None:
    from orchestrion.errors import OrchestrionError
    from orchestrion.worker.code import CodeRegistry
    from orchestrion.worker.snapshots import load_snapshot

    payload: dict[str, Any] = json.load(sys.stdin)
    bundles = {d: CodeBundle.from_wire(w) for d, w in payload["bundles"].items()}
    answers: list[str | None] = []
    registry = CodeRegistry()
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # what user code prints on import must not garble the answer
    for ref, digest in payload["refs"]:
        try:
            if digest is None:
                registry.resolve(ref)
            else:
                load_snapshot(bundles[digest]).resolve(ref)
            answers.append(None)
        except BaseException as exc:
            known = isinstance(exc, OrchestrionError)
            answers.append(str(exc) if known else f"{type(exc).__name__}: {exc}")
    sys.stdout = real_stdout
    print(json.dumps(answers), flush=True)


if __name__ == "__main__":
    _main()

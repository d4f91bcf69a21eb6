"""The ``container`` action: run one command in a container image through a Docker Engine
compatible API (Docker, or Podman's compatible socket).

Like a shell action it is data whose string fields may be templates: the command's
elements and the environment values are rendered by the worker; the image, the resources
and where the result comes from are fixed when the workflow is registered. Secrets are not
here: a container task declares them like any task (`TaskSpec.secrets`, ``{ENV: name}``;
YAML also takes them inside the ``container:`` block), and the worker hands them to that
container's environment only.
"""

import re
from typing import Annotated, Final, Literal

from msgspec import Meta

from orchestrion.spec.rules import ENV_NAME_PATTERN
from orchestrion.spec.structs import ActionModel, FieldProblem, Float, Pattern, SpecModel, Str

__all__ = [
    "PULL_POLICIES",
    "RESULT_FORMS",
    "ContainerAction",
    "ContainerResources",
    "ResultFile",
    "memory_bytes",
]

#: When the worker pulls the image: only when the engine does not have it (default), before
#: every attempt, or never (the image must be there: built or loaded by hand).
PULL_POLICIES: Final = ("if-missing", "always", "never")

#: Where the result comes from when it is not a file: the last non-empty stdout line
#: (default, like a shell task), stdout parsed as JSON, or nothing (None).
RESULT_FORMS: Final = ("last-line", "stdout", "none")

_MEMORY_RE: Final = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?|[kmgt]|B|b)?$")
_UNITS: Final = {
    None: 1,
    "B": 1,
    "b": 1,
    "K": 1000,
    "k": 1000,
    "M": 1000**2,
    "m": 1000**2,
    "G": 1000**3,
    "g": 1000**3,
    "T": 1000**4,
    "t": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
_ABSOLUTE_FILE: Final = re.compile(r"^/.*[^/]$", re.DOTALL)
#: Less than this cannot even start a container runtime's init: refused at load time.
_MIN_MEMORY: Final = 6 * 1024**2


def memory_bytes(text: str) -> int:
    """Bytes of a memory size as Kubernetes writes it (``512Mi``, ``1Gi``, ``1.5G``,
    ``300M``, or a plain number of bytes); `ValueError` naming the forms otherwise."""
    match = _MEMORY_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"bad memory size {text!r}: a number with an optional unit (Ki, Mi, Gi, Ti, K,"
            " M, G, T), like 512Mi"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


class ContainerResources(SpecModel, frozen=True, kw_only=True):
    """Limits the engine enforces on the container: CPU time in cores (``1.5``) and memory
    (``512Mi``); past its memory limit the container is killed and the task fails saying so."""

    cpus: Annotated[Float, Meta(gt=0, le=1024)] | None = None
    memory: Str | None = None

    def check(self) -> None:
        """A memory limit a container can start with."""
        try:
            if self.memory is not None and memory_bytes(self.memory) < _MIN_MEMORY:
                raise ValueError(f"memory {self.memory!r} is too little: at least 6Mi")
        except ValueError as exc:
            raise FieldProblem("memory", str(exc)) from None


class ResultFile(SpecModel, frozen=True, kw_only=True):
    """The result is a file the container wrote, read after it exits and parsed as JSON."""

    #: An absolute path inside the container (``/out/result.json``; the work folder is
    #: mounted at `ContainerAction.work_dir`, so ``/work/result.json`` is also kept there).
    file: Annotated[Str, Meta(min_length=2, max_length=4096)]

    def check(self) -> None:
        """An absolute file path."""
        if not _ABSOLUTE_FILE.fullmatch(self.file):
            raise FieldProblem(
                "file", f"the result file must be an absolute file path, not {self.file!r}"
            )


class ContainerAction(ActionModel, frozen=True, kw_only=True, tag="container"):
    """Run `command` (or the image's own) in a fresh container of `image`; its exit status
    decides the outcome, its output streams into the task's log, and it is removed
    afterwards, whatever ended it."""

    #: An image reference (``ghcr.io/acme/transform:1.4``, ``localhost/tools/x:1``).
    image: Annotated[Str, Pattern(r"^[^\s{}]+$", min_length=1, max_length=1024)]
    #: The command (argv; each element a template); None runs the image's default command.
    command: tuple[Str, ...] | None = None
    #: Replaces the image's entrypoint (argv, not templated); None keeps it.
    entrypoint: tuple[Str, ...] | None = None
    #: Environment variables of the container; values are templates.
    env: dict[str, Str] = {}
    resources: ContainerResources = ContainerResources()
    #: Where the result comes from: ``last-line`` (of stdout), ``stdout`` (parsed as
    #: JSON), ``none``, or ``{file: /path}`` (a JSON file the container wrote).
    result: Literal["last-line", "stdout", "none"] | ResultFile = "last-line"
    pull: Literal["if-missing", "always", "never"] = "if-missing"
    #: Where the attempt's work folder is mounted in the container (read and write): it
    #: holds ``inputs.json`` (params, upstream results, item) when the container starts.
    work_dir: Annotated[Str, Pattern(r"^/[^\s:]*$", max_length=4096)] = "/work"

    def check(self) -> None:
        """Non-empty argvs, valid environment names, a work folder that is not '/'."""
        for field, argv in (("command", self.command), ("entrypoint", self.entrypoint)):
            if argv is not None and not argv:
                raise ValueError(f"{field!r} must not be empty (leave it out for the image's)")
        for key in self.env:
            if not re.fullmatch(ENV_NAME_PATTERN, key):
                raise ValueError(f"bad environment variable name {key!r}")
        if self.work_dir == "/":
            raise ValueError("'work_dir' cannot be the container's root")

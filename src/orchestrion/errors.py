"""Every error Orchestrion raises on purpose descends from one root.

The tree::

    OrchestrionError
    ├── SpecError                 a workflow definition is invalid (file, line, field path)
    │   ├── CycleError            the task graph has a cycle (names it)
    │   └── PolicyError           a policy document is invalid (names the field)
    ├── ExpressionError           a `when` expression is malformed or failed to evaluate
    ├── ParameterError            run parameters do not fit the workflow's parameter schema
    │   ├── UnsupportedMediaType  a body's Content-Type is not one the endpoint takes (415)
    │   └── InvalidValue          a namespace, name or text field is malformed (also a ValueError)
    ├── StoreError                the database refused or failed an operation
    │   └── NotFound              a run, task run or workflow does not exist
    ├── IllegalTransition         a state change the transition table does not allow
    ├── ResultTooLarge            a task result is over the configured size cap
    ├── TaskError                 a task failed (raised by runners for non-Python task kinds)
    │   ├── TaskTimeout           a task ran past its timeout
    │   └── UnsafeURL             an HTTP task's URL is refused (scheme, or a private address)
    ├── AuthError                 no valid credentials: missing, malformed, expired, revoked (401)
    ├── BadSignature              a signed request (a webhook) is not authentic (401)
    ├── Forbidden                 the principal may not do this action here (403)
    ├── PolicyDenied              an admission policy refused a deploy or a run (403; its findings)
    ├── NotifyError               a notification was not delivered (retried by the outbox)
    ├── SecretError               a secret cannot be sealed or opened, or no master key is set
    └── ClientError               a server refused a client's request (status, problem detail)
        └── ServerUnreachable     no answer from the server's URL (connection, timeout)

    BaseException
    └── CancelRequested           cooperative cancellation inside task code

`CancelRequested` derives from `BaseException` on purpose: a task's own
``except Exception:`` must not swallow a cancellation.

Each class's docstring is its default message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExists",
    "AuthError",
    "BadSignature",
    "CancelRequested",
    "ClientError",
    "CycleError",
    "ExpressionError",
    "Forbidden",
    "IllegalTransition",
    "InvalidValue",
    "NotFound",
    "NotifyError",
    "OrchestrionError",
    "ParameterError",
    "PolicyDenied",
    "PolicyError",
    "ResultTooLarge",
    "SecretError",
    "ServerUnreachable",
    "SpecError",
    "StoreError",
    "TaskError",
    "TaskTimeout",
    "UnsafeURL",
    "UnsupportedMediaType",
]


class OrchestrionError(Exception):
    """An Orchestrion error occurred."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        """The message the error was raised with; its class's docstring when none was given."""
        return str(self.args[0]) if self.args else ""


class SpecError(OrchestrionError):
    """The workflow definition is invalid."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.source = source
        self.path = path
        self.line = line
        self.column = column
        self.detail = message
        #: Further problems found in the same pass (``validate`` lists them all).
        self.more: tuple[SpecError, ...] = ()
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = f"{where}: " if where else ""
        field = f"{self.path}: " if self.path else ""
        return f"{prefix}{field}{self.detail}"


class CycleError(SpecError):
    """The task graph has a cycle."""

    def __init__(self, cycle: list[str], *, source: str | None = None) -> None:
        self.cycle = cycle
        super().__init__(
            "dependency cycle: " + " -> ".join(cycle),
            source=source,
            path="tasks",
        )


class PolicyError(SpecError):
    """The policy document is invalid."""


class ExpressionError(OrchestrionError):
    """The expression is invalid."""


class ParameterError(OrchestrionError):
    """The run parameters are invalid."""


class UnsupportedMediaType(ParameterError):
    """The request body's Content-Type is not one this endpoint accepts."""


class InvalidValue(ParameterError, ValueError):
    """The value is malformed.

    Raised by the checks every edge shares (a namespace, a name, a text without control
    characters). It is a `ParameterError`, so the API answers 422 wherever it surfaces (also
    from an authorisation target reading a request body), and a `ValueError`, so a pydantic
    validator that calls the same check reports it as that field's error.
    """


class StoreError(OrchestrionError):
    """The store failed."""


class NotFound(StoreError):
    """The object does not exist."""


class AlreadyExists(StoreError):
    """An object with that name or key exists already."""


class IllegalTransition(OrchestrionError):
    """The state transition is not allowed."""


class ResultTooLarge(OrchestrionError):
    """The task result is larger than the configured cap."""


class TaskError(OrchestrionError):
    """The task failed."""


class TaskTimeout(TaskError):
    """The task ran past its timeout."""


class UnsafeURL(TaskError):
    """The URL is refused: only http(s) to public addresses, unless allow-listed."""


class AuthError(OrchestrionError):
    """Authentication failed: the credentials are missing, malformed, expired or revoked.

    Messages say which of these it was, never the credential itself.
    """


class BadSignature(OrchestrionError):
    """The request's signature is missing, stale or does not match its body."""


class Forbidden(OrchestrionError):
    """The principal is not allowed to do this."""


class PolicyDenied(OrchestrionError):
    """An admission policy refused this.

    `findings` holds every finding of the decision (the denials first); each names its
    policy, rule, effect, field and message, so an edge can show them one by one.
    """

    def __init__(self, message: str, *, findings: tuple[Any, ...] = ()) -> None:
        self.findings = findings
        super().__init__(message)


class NotifyError(OrchestrionError):
    """A notification could not be delivered (the receiver refused it, was down or is not
    allowed); the outbox tries again later."""


class SecretError(OrchestrionError):
    """The secret could not be sealed or opened.

    Messages name the key id, namespace and secret name, never the value.
    """


class CancelRequested(BaseException):
    """The run or task was canceled; task code should stop."""


class ClientError(OrchestrionError):
    """The server refused the request.

    Raised by `orchestrion.client.Client`: `status` is the HTTP status, `code` the API's
    error code (``not_found``, ``conflict``, ``forbidden``, ``unauthenticated``,
    ``invalid``...), `detail` the server's whole problem object, `url` what was asked.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: dict[str, Any] | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail or {}
        self.url = url
        super().__init__(message)


class ServerUnreachable(ClientError):
    """The server cannot be reached."""

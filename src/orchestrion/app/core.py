"""What every part of the `App` facade shares: settings, clock, actor, loaded code, the store.

`Core` opens and closes the store and writes App's own audit records; each sub-facade
(`Facet`) is a small group of App's methods over one `Core`. The audit context lives here,
not in a module of its own, because it is the one thing besides the store that every
sub-facade uses, and it needs the core's actor, accounts and store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Self

import msgspec

from orchestrion.app.audit import append_audit
from orchestrion.app.settings import Settings
from orchestrion.clock import Clock, SystemClock
from orchestrion.errors import NotFound, OrchestrionError
from orchestrion.store import open_store
from orchestrion.store.stores import Stores
from orchestrion.worker.code import CodeRegistry

if TYPE_CHECKING:
    from orchestrion.app.accounts import Accounts
    from orchestrion.app.known_secrets import KnownSecrets
    from orchestrion.auth.masking import Masker
    from orchestrion.store.retention import RetentionStore
    from orchestrion.worker.large_results import ResultFiles

__all__ = ["Actor", "Core", "Facet"]


class Actor(msgspec.Struct, frozen=True):
    """Who acts through this App when no request does: a local CLI user (``cli:ana``).
    With an actor set, every mutating App method appends its own audit record; an App
    behind the API has none, because the API audits each request itself."""

    name: str
    kind: str = "cli"


class Core:
    """Settings, clock, actor, the code registry of loaded workflow files, and the store
    (opened by `open`, or `with`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        clock: Clock | None = None,
        *,
        actor: Actor | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.actor = actor
        # Workers read a version's code from the store the first time they run it.
        self.code = CodeRegistry(fetch=lambda digest: self.store.workflows.get_code(digest))
        self._store: Stores | None = None
        self._accounts: Accounts | None = None
        self._known: KnownSecrets | None = None
        self._result_files: ResultFiles | None = None

    def open(self) -> Self:
        """Open the store (applying missing migrations); a second call does nothing."""
        if self._store is None:
            self._store = open_store(self.settings.database_url)
        return self

    def close(self) -> None:
        """Close the store; the App may be opened again."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Stores:
        """The open store, or `OrchestrionError` saying how to open it."""
        if self._store is None:
            raise OrchestrionError("the App is not open: use `with App(...) as app` or app.open()")
        return self._store

    def known(self) -> Masker:
        """The masker of every stored secret's value, for audit records (cached until the
        secrets change; empty without a master key)."""
        if self._known is None:
            from orchestrion.app.known_secrets import KnownSecrets

            self._known = KnownSecrets(self.store.secrets, self.settings.key_ring)
        return self._known.masker()

    def result_files(self) -> ResultFiles:
        """The object store of large results and file artifacts (opened once; boto3 is
        imported only for an ``s3://`` store)."""
        if self._result_files is None:
            from orchestrion.store.objects import open_objects
            from orchestrion.worker.large_results import ResultFiles

            wanted = self.settings.results
            objects = open_objects(wanted, self.settings.database_url)
            self._result_files = ResultFiles(objects, wanted)
        return self._result_files

    def pruning(self) -> RetentionStore:
        """The store's retention, deleting the objects of the runs it prunes as well."""
        from orchestrion.app.object_retention import ObjectRetention

        return ObjectRetention(self.store.retention, self.result_files().objects)

    @property
    def accounts(self) -> Accounts:
        """Users, tokens, sessions and the audit log (one per App: the login limiter
        remembers failures across requests)."""
        if self._accounts is None:
            # Imported on first use: it brings argon2 and the token code (~8 ms of start-up).
            from orchestrion.app.accounts import Accounts

            self._accounts = Accounts(self.store.accounts, self.clock, known_secrets=self.known)
        return self._accounts

    @contextlib.contextmanager
    def audited(
        self,
        action: str,
        obj: str,
        *,
        workflow: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """One audit record for the action in the block, with its outcome, when this App
        acts for someone (`actor`); nothing otherwise (the API audits its own requests)."""
        if self.actor is None:
            yield
            return
        outcome, detail = "ok", None
        try:
            yield
        except OrchestrionError as exc:
            outcome, detail = "failed", str(exc)
            raise
        finally:
            namespace = None
            if workflow is not None:
                with contextlib.suppress(NotFound):
                    namespace = self.store.workflows.get_workflow(workflow).namespace
            # Not through `accounts`: auditing needs none of what signing in imports.
            append_audit(
                self.store.accounts,
                self.clock,
                actor=self.actor.name,
                actor_kind=self.actor.kind,
                action=action,
                object=obj,
                namespace=namespace,
                params=params,
                outcome=outcome,
                detail=detail,
                source="local",
                known=self.known(),
            )


class Facet:
    """One sub-facade: a group of App's methods over the `Core` it shares with the others."""

    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def store(self) -> Stores:
        """The App's open store."""
        return self._core.store

    @property
    def clock(self) -> Clock:
        """The App's clock (every time a verb records comes from it)."""
        return self._core.clock

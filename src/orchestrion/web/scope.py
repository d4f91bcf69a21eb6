"""What a principal may see: the read filter that list routes and streams apply.

A list route's rule (`targets.anywhere`) lets it through when the principal may read
*some* namespace; the handler then keeps only the items of namespaces it may read. A
principal bound on ``*`` sees everything and pays nothing for the check.
"""

from __future__ import annotations

from starlette.requests import Request

from orchestrion.app import App
from orchestrion.auth.principals import ALL_NAMESPACES, Action, Principal, Resource, authorize
from orchestrion.errors import NotFound
from orchestrion.web.request import app_of, principal_of

__all__ = ["Scope", "scope_of"]


class Scope:
    """Namespace checks for one request's principal, with the workflow→namespace map read
    once (one query) when first needed."""

    def __init__(self, app: App, principal: Principal, action: Action = Action.READ) -> None:
        self.app = app
        self.principal = principal
        self.action = action
        self.everything = bool(authorize(principal, action, Resource(ALL_NAMESPACES, "list")))
        self._allowed: dict[str, bool] = {}
        self._workflows: dict[str, str] | None = None
        self._runs: dict[str, bool] = {}
        self._missing: set[str] = set()

    def namespace(self, namespace: str) -> bool:
        """May the principal act on `namespace`? Decided once per namespace per request."""
        if self.everything:
            return True
        if namespace not in self._allowed:
            decision = authorize(self.principal, self.action, Resource(namespace, "object"))
            self._allowed[namespace] = bool(decision)
        return self._allowed[namespace]

    def namespaces(self) -> frozenset[str] | None:
        """The namespaces the principal may act on by its bindings; None: all of them (a
        ``*`` binding that allows the action)."""
        if self.everything:
            return None
        return frozenset(
            ns for ns in self.principal.bindings if ns != ALL_NAMESPACES and self.namespace(ns)
        )

    def workflow(self, name: str) -> bool:
        """May the principal see this workflow (and its runs)? A workflow that is gone
        belongs to no namespace: only ``*`` holders see its leftovers."""
        if self.everything:
            return True
        if self._workflows is None or (
            name not in self._workflows and name not in self._missing
        ):  # a name first seen re-reads once (a long stream sees new workflows); then cached
            self._workflows = {r.name: r.namespace for r in self.app.workflows.list_workflows()}
            if name not in self._workflows:
                self._missing.add(name)
        found = self._workflows.get(name)
        return found is not None and self.namespace(found)

    def visible_workflows(self) -> frozenset[str] | None:
        """The workflows whose runs the principal may see, for a query to filter on (so a
        page holds as many of them as asked); None: all, leftovers of removed ones included."""
        if self.everything:
            return None
        return frozenset(
            w.name for w in self.app.workflows.list_workflows() if self.namespace(w.namespace)
        )

    def run(self, run_id: str | None) -> bool:
        """May the principal see this run (and its events)? Cached per run id."""
        if self.everything:
            return True
        if run_id is None:
            return False
        if run_id not in self._runs:
            try:
                self._runs[run_id] = self.workflow(self.app.runs.get_run(run_id).workflow)
            except NotFound:
                self._runs[run_id] = False
        return self._runs[run_id]


def scope_of(request: Request, action: Action = Action.READ) -> Scope:
    """The filter of this request's principal, for `action` (reading, by default)."""
    return Scope(app_of(request), principal_of(request), action)

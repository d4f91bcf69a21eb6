"""What happens inside the transaction that records a state change, shared by every dialect.

`Advance` runs within one open write transaction (`tx`). Every status write is a
compare-and-set whose guard comes from `orchestrion.states`, and every one appends an event
row (the primitives are `orchestrion.store.sql.guarded`'s). The decisions themselves
(readiness, retries, run outcome, compensation order) are the pure functions of
`orchestrion.planner`; this module only reads the few rows a decision needs and
applies it.

Readiness is event-driven: finishing a task run decrements counters on its downstream rows
(`waiting`, `up_ok`, `up_failed`, `up_skipped`) and decides only the rows whose counter hit
zero. A run completes when its `unfinished` counter hits zero. Nothing scans a whole run on
the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orchestrion import planner
from orchestrion.errors import ExpressionError, PolicyDenied
from orchestrion.spec.expressions import compile_expression
from orchestrion.spec.model import TaskSpec, WorkflowSpec
from orchestrion.spec.waits import ApprovalAction, WaitAction
from orchestrion.states import RunEvent, RunState, TaskEvent, TaskState
from orchestrion.store.sql.guarded import Guarded, Tx, dumps, loads
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q
from orchestrion.store.sql.routing import requirement_key
from orchestrion.store.sql.slot_keys import conc_key, slot_key
from orchestrion.store.sql.wait_steps import enter_wait

__all__ = ["MAX_RESULT_BYTES", "Advance", "Tx", "dumps", "loads"]

#: Results above this size are refused with a clear error rather than bloating the database.
MAX_RESULT_BYTES = 1_048_576


class Advance(Guarded):
    """One transaction's worth of state changes: the decisions, over `Guarded`'s writes."""

    # ------------------------------------------------------------------ readiness

    def make_ready(self, row: Any, *, held: bool = False) -> None:
        """A pending task run whose upstreams allow it to run: evaluate `when` and `map`
        where they are expressions, then queue it (or expand it into items). `held`: this
        transaction holds the row locked (`cas_held`)."""
        spec, run = self.spec_for_run(row["run_id"])
        if row["kind"] in ("undo", "item"):
            self._queue(row, held=held)
            return
        task = spec.task(row["task_name"])
        scope: dict[str, Any] | None = None
        if (
            (task.when and task.when.expr)
            or (task.map_over and row["kind"] == "group")
            or task.concurrency_key is not None
        ):
            scope = {
                "params": loads(run["params"]),
                "tasks": self.results_of(row["run_id"], task.depends_on),
            }
        try:
            when = task.when.expr if task.when is not None else None
            if (
                when is not None
                and scope is not None
                and not compile_expression(when).evaluate(scope)
            ):
                self.cas_task(
                    row, TaskEvent.SKIP, {"reason": "condition false"}, finished_at=self.now
                )
                self.on_finished(self.task_row(row["id"]))
                return
            if row["kind"] == "group" and task.map_over is not None and scope is not None:
                items = compile_expression(task.map_over).evaluate(scope)
                self._expand(row, task, items, scope)
                return
            slot = slot_key(task, scope)
        except (ExpressionError, PolicyDenied) as exc:
            self.cas_task(
                row, TaskEvent.FAIL, {"error": str(exc)}, error=str(exc), finished_at=self.now
            )
            self.on_finished(self.task_row(row["id"]))
            return
        if slot is None:
            self._queue(row, held=held)
        elif self.cas_task(
            row, TaskEvent.READY, ready_at=self.now, slot_key=slot, slot_limit=task.key_limit
        ):
            self.newly_ready += 1

    def _queue(self, row: Any, *, held: bool = False) -> None:
        if row["kind"] == "task":
            action = self.spec_for_run(row["run_id"])[0].task(row["task_name"]).action
            if isinstance(action, ApprovalAction | WaitAction):
                # No queue: it waits in the store until resolved (`store.sql.waits`).
                enter_wait(self, row, action, held=held)
                return
        if held:
            self.cas_held(row, TaskEvent.READY, ready_at=self.now)
            self.newly_ready += 1
        elif self.cas_task(row, TaskEvent.READY, ready_at=self.now):
            self.newly_ready += 1

    def _expand(
        self, row: Any, task: TaskSpec, items: Any, scope: dict[str, Any] | None = None
    ) -> None:
        spec, _ = self.spec_for_run(row["run_id"])
        if not isinstance(items, list):
            raise ExpressionError(
                f"map expression {task.map_over!r} gave {type(items).__name__}, not a list"
            )
        self._admit_mapped(row, spec, task, len(items), scope)
        # Rendered before the group moves, so that a failing key fails the group instead.
        slots = [slot_key(task, {**(scope or {}), "item": item}) for item in items]
        self.cas_task(row, TaskEvent.EXPAND, {"items": len(items)}, waiting=len(items))
        requires = requirement_key(task.requires)
        if not items:
            group = self.task_row(row["id"])
            self.cas_task(group, TaskEvent.SUCCEED, result=dumps([]), finished_at=self.now)
            self.on_finished(self.task_row(row["id"]))
            return
        self.tx.executemany(
            Q.insert_items,
            [
                (
                    row["run_id"],
                    row["task_name"],
                    i,
                    row["id"],
                    row["queue"],
                    row["priority"],
                    self.now,
                    conc_key(spec.name, task),
                    task.concurrency,
                    requires,
                    dumps(item),
                    slots[i],
                    task.key_limit,
                )
                for i, item in enumerate(items)
            ],
        )
        self.tx.execute(Q.add_unfinished, (len(items), row["run_id"]))
        self.event(row["run_id"], row["id"], "task.mapped", data={"items": len(items)})
        self.newly_ready += len(items)

    def _admit_mapped(
        self,
        row: Any,
        spec: WorkflowSpec,
        task: TaskSpec,
        width: int,
        scope: dict[str, Any] | None,
    ) -> None:
        """The admission policies (``on: task``) of a mapped task, now that its width is
        known: `PolicyDenied` fails the group before any item exists; warnings are
        recorded on it. Read in this transaction, so a policy written before the items
        exist applies to them."""
        # Imported here, and the policies' core only once a policy applies: a run without
        # mapped tasks, or a store without policies, never loads their models.
        from orchestrion.store.sql.policy_rows import policies_in_force

        policies = [
            p for p in policies_in_force(lambda sql: self.tx.execute(sql).fetchall())
            if "task" in p.applies_to.on
        ]  # fmt: skip
        if not policies:
            return
        from orchestrion.spec.policies.evaluation import PolicyRequest, evaluate

        request = PolicyRequest(
            on="task",
            namespace=spec.namespace,
            params=(scope or {}).get("params"),
            task=task.name,
            map_width=width,
        )
        decision = evaluate(policies, spec, request, principal=None, now=self.now)
        if decision.denied:
            raise PolicyDenied("; ".join(str(f) for f in decision.denials))
        if decision.warnings:
            data = {"warnings": [str(f) for f in decision.warnings]}
            self.event(row["run_id"], row["id"], "policy.warned", data=data)

    # ------------------------------------------------------------------ outcomes

    def on_finished(self, row: Any) -> None:
        """A task run reached a finished state: tell its group or downstream tasks, then the
        run."""
        kind = row["kind"]
        if kind == "item":
            self._item_finished(row)
        elif kind == "undo":
            self._undo_finished(row)
        else:
            self._propagate(row)
        self.count_finished(row["run_id"], 1)

    def count_finished(self, run_id: str, finished: int) -> None:
        """`finished` task runs of the run finished: once none is left, finalize it."""
        left = self.tx.execute(Q.count_finished, (finished, run_id)).fetchone()
        if left is not None and left["unfinished"] == 0:
            self.finalize_run(run_id)

    def _propagate(self, row: Any) -> None:
        spec, _ = self.spec_for_run(row["run_id"])
        downstream = spec.downstream().get(row["task_name"], ())
        if not downstream:
            return
        bucket = planner.upstream_bucket(TaskState(row["state"]))
        rows = self.tx.execute(
            Q.count_downstream.fill(names=marks(len(downstream))),
            (
                1,
                int(bucket == "ok"),
                int(bucket == "failed"),
                int(bucket == "skipped"),
                row["run_id"],
                *downstream,
            ),
        ).fetchall()
        self.decide_counted(spec, rows)

    def decide_counted(
        self, spec: WorkflowSpec, rows: Iterable[Any], *, held: bool = False
    ) -> None:
        """Downstream task runs whose upstream counters were just updated (as returned by
        that update): decide those that have no unfinished upstream left. `held`: the
        rows were updated by this transaction, so it holds them locked."""
        for child in rows:
            if child["waiting"] == 0 and child["state"] == TaskState.PENDING.value:
                self._decide(spec.task(child["task_name"]), child, held=held)

    def _decide(self, task: TaskSpec, row: Any, *, held: bool = False) -> None:
        counts = planner.UpstreamCounts(
            total=len(task.depends_on),
            succeeded=row["up_ok"],
            failed=row["up_failed"],
            skipped=row["up_skipped"],
        )
        decision = planner.readiness(task.trigger_rule, counts)
        if decision is TaskEvent.READY:
            self.make_ready(row, held=held)
            return
        self.cas_task(row, decision, {"rule": task.trigger_rule.value}, finished_at=self.now)
        self.on_finished(self.task_row(row["id"]))

    def _item_finished(self, row: Any) -> None:
        bucket = planner.upstream_bucket(TaskState(row["state"]))
        group = self.tx.execute(
            Q.count_item,
            (
                1,
                int(bucket == "ok"),
                int(bucket == "failed"),
                int(bucket == "skipped"),
                row["group_id"],
            ),
        ).fetchone()
        self.group_counted(group)

    def group_counted(self, group: Any) -> None:
        """A mapped task's group row whose item counters were just updated (as returned by
        that update, or None): once no item is left, finish the group from its items."""
        if group is None or group["waiting"] != 0 or group["state"] != TaskState.WAITING.value:
            return
        items = self.tx.execute(Q.group_items, (group["id"],)).fetchall()
        states = [TaskState(i["state"]) for i in items]
        if planner.group_outcome(states) is TaskEvent.SUCCEED:
            result = "[" + ",".join(i["result"] or "null" for i in items) + "]"
            self.cas_task(group, TaskEvent.SUCCEED, result=result, finished_at=self.now)
        else:
            failed = sum(1 for s in states if planner.upstream_bucket(s) == "failed")
            first = next((i["error"] for i in items if i["error"]), None)
            error = f"{failed} of {len(items)} mapped items failed; first error: {first}"
            self.cas_task(
                group, TaskEvent.FAIL, {"error": error}, error=error, finished_at=self.now
            )
        self.on_finished(self.task_row(group["id"]))

    def _undo_finished(self, row: Any) -> None:
        if row["state"] == TaskState.SUCCEEDED.value:
            original = self.tx.execute(
                Q.undone_task, (row["run_id"], row["task_name"].removeprefix("undo:"))
            ).fetchone()
            if original is not None and original["state"] == TaskState.SUCCEEDED.value:
                self.cas_task(original, TaskEvent.COMPENSATE, {"undo": row["id"]})
        # The next step still pending: the next in order, or after a retried step the next
        # one that failed (the steps between them succeeded before).
        nxt = self.tx.execute(Q.next_undo_step, (row["run_id"], row["map_index"])).fetchone()
        if nxt is not None:
            self.make_ready(nxt)

    # ------------------------------------------------------------------ runs

    def finalize_run(self, run_id: str) -> None:
        """Every task run of the run finished: succeed, fail, or start compensating."""
        self._run_cache.pop(run_id, None)
        spec, run = self.spec_for_run(run_id)
        self._run_cache.pop(run_id, None)
        rows = self.tx.execute(Q.run_outcomes, (run_id,)).fetchall()
        state = RunState(run["state"])
        if state is RunState.COMPENSATING:
            self._end_run(run, RunEvent.FAIL, spec, rows)
            return
        if state is not RunState.RUNNING:
            return
        succeeded = {r["task_name"]: r["state"] == TaskState.SUCCEEDED.value for r in rows}
        undo = [] if run["compensated"] else planner.compensation_order(spec, succeeded)
        outcome = planner.run_outcome((TaskState(r["state"]) for r in rows), bool(undo))
        if outcome is RunEvent.COMPENSATE:
            self._start_compensation(run, spec, undo)
        else:
            self._end_run(run, outcome, spec, rows)

    def _end_run(self, run: Any, event: RunEvent, spec: WorkflowSpec, rows: Sequence[Any]) -> None:
        leaves = spec.leaves()
        result = {
            r["task_name"]: loads(r["result"])
            for r in rows
            if r["task_name"] in leaves and r["state"] == TaskState.SUCCEEDED.value
        }
        error = None
        if event is RunEvent.FAIL:
            failed = [r for r in rows if r["state"] == TaskState.FAILED.value]
            names = ", ".join(r["task_name"] for r in failed) or "unknown"
            first = failed[0]["error"] if failed else None
            error = f"task(s) failed: {names}" + (f": {first}" if first else "")
        if not self.cas_run(run, event, finished_at=self.now, result=dumps(result), error=error):
            return
        self.after_run_finished(run["id"])

    def after_run_finished(self, run_id: str) -> None:
        """Wake whatever waited on this run: a parent task, or a queued run of the workflow.
        Its own steps' wait rows go (their task runs were canceled with it)."""
        self.tx.execute(Q.delete_waits_of_run, (run_id,))
        run = self.tx.execute(Q.finished_run, (run_id,)).fetchone()
        if run["parent_task_run_id"] is not None:
            parent = self.task_row(run["parent_task_run_id"])
            if parent is not None and parent["state"] == TaskState.WAITING.value:
                if run["state"] == RunState.SUCCEEDED.value:
                    self.cas_task(
                        parent,
                        TaskEvent.SUCCEED,
                        {"child_run": run_id},
                        result=run["result"],
                        finished_at=self.now,
                    )
                else:
                    error = f"child run {run_id} {run['state']}: {run['error'] or ''}".rstrip(": ")
                    self.cas_task(
                        parent,
                        TaskEvent.FAIL,
                        {"child_run": run_id},
                        error=error,
                        finished_at=self.now,
                    )
                self.on_finished(self.task_row(parent["id"]))
        self.admit_queued(run["workflow"], run["version"])

    def admit_queued(self, workflow: str, version: str) -> None:
        """Start the oldest queued run of `workflow` if it is under its max active runs."""
        spec = self.spec_of(workflow, version)
        limit = spec.max_active_runs
        if limit is not None:
            self.lock_admission(workflow)
        # A queued run locked by another transaction is being canceled: pass it over.
        queued = self.tx.execute(
            Q.next_queued_run + self.for_update(skip_locked=True), (workflow,)
        ).fetchone()
        if queued is None:
            return
        active = self.tx.execute(Q.active_runs, (workflow,)).fetchone()["n"]
        if limit is None or active < limit:
            self.start_run(queued)

    def start_run(self, run: Any) -> None:
        """Start `run` (if queued) and decide its task runs that wait on no upstream."""
        if RunState(run["state"]) is RunState.QUEUED:
            self.cas_run(run, RunEvent.START, started_at=self.now)
        roots = self.tx.execute(Q.run_roots, (run["id"],)).fetchall()
        for row in roots:
            self.make_ready(row)

    def _start_compensation(self, run: Any, spec: WorkflowSpec, order: list[str]) -> None:
        self.cas_run(run, RunEvent.COMPENSATE, compensated=1)
        self.tx.executemany(
            Q.insert_undo_steps,
            [
                (
                    run["id"],
                    f"undo:{name}",
                    i,
                    spec.task(name).queue,
                    run["priority"] + 1000,
                    self.now,
                    int(i > 0),
                    requirement_key(spec.task(name).requires),
                )
                for i, name in enumerate(order)
            ],
        )
        self.tx.execute(Q.add_unfinished, (len(order), run["id"]))
        self.event(run["id"], None, "run.compensation_planned", data={"order": order})
        first = self.tx.execute(Q.undo_step, (run["id"], 0)).fetchone()
        self.make_ready(first)

"""``example-greet``: a small task kind that shows every part of Orchestrion's plugin
interface (`orchestrion.spec.kinds.TaskKind`).

* options checked at load time (a pydantic model, plus `check` across fields);
* a templated field (``who``) that the worker renders before `run`;
* `run` uses its context: the run's parameters, a declared secret, the log, cancellation
  and the attempt's deadline, and returns JSON or raises a typed error.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from orchestrion.errors import TaskError, TaskTimeout
from orchestrion.spec.durations import parse_duration
from orchestrion.spec.kinds import KindContext, TaskKind

__all__ = ["GreetKind", "GreetOptions"]


class GreetOptions(BaseModel):
    """The options of an ``example-greet`` task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    who: str = Field(description="Whom to greet; may hold {{ }} templates.")
    greeting: str = Field(default="Hello", max_length=50, description="The greeting word.")
    #: How long to wait before greeting, in slices that watch for cancel and the deadline.
    pause: Annotated[float, BeforeValidator(parse_duration)] = Field(
        default=0.0, ge=0, le=3600, description="Seconds to wait first (or '2s')."
    )
    #: The name of a declared secret whose value is appended (to show masking).
    sign_with: str | None = Field(default=None, description="A declared secret to sign with.")


class GreetKind(TaskKind[GreetOptions]):
    """Greets someone, after an optional pause."""

    name = "example-greet"
    options = GreetOptions
    templated = ("who",)
    summary = "Greets someone (an example plugin)."

    def check(self, options: GreetOptions) -> None:
        """A greeting is one word: checked when the workflow is loaded."""
        if not options.greeting.isalpha():
            raise ValueError("'greeting' is one word of letters")

    def run(self, options: GreetOptions, ctx: KindContext) -> Any:
        """Wait `pause` (stopping on cancel or at the deadline), then greet."""
        if not options.who.strip():
            raise TaskError("nobody to greet: 'who' is empty")
        end = time.monotonic() + options.pause
        while (left := end - time.monotonic()) > 0:
            ctx.check_cancel()
            budget = ctx.time_left()
            if budget is not None and budget <= 0:
                raise TaskTimeout("the pause outlasted the task's timeout")
            ctx.cancel_event.wait(min(0.05, left))
        message = f"{options.greeting}, {options.who}!"
        if options.sign_with is not None:
            message += f" ({ctx.secret(options.sign_with)})"
        ctx.log(f"greeting {options.who} in run {ctx.run_id}")
        return {"message": message, "attempt": ctx.attempt}

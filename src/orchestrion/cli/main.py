"""The ``orchestrion`` command: a group whose subcommands are imported when they are used.

Importing a command module pulls in what it needs (the App, the store, pydantic, rich,
httpx...), about 0.2 s of imports in all. ``orchestrion --version`` needs none of it and
``orchestrion run`` only part of it, so this module imports click alone and `LazyGroup`
imports the one module the command line names (all of them only to list them in
``--help``). docs/performance.md has the measurements.

Exit codes: 0 success, 1 the run failed or was canceled, 2 bad input (invalid workflow
file, bad parameters, unknown run).
"""

from __future__ import annotations

import importlib
import os

import click

from orchestrion.version import VERSION

__all__ = ["COMMANDS", "LazyGroup", "main"]

# Command name -> the module defining it; the attribute is the name with "-" as "_".
COMMANDS: dict[str, str] = {
    "apply": "projects_cmd",
    "approve": "waits_cmd",
    "assets": "assets_cmd",
    "audit": "accounts_cmd",
    "backfill": "triggers_cmd",
    "cache": "cache_cmd",
    "cancel": "runs_cmd",
    "completion": "tools_cmd",
    "connections": "connections_cmd",
    "db": "db_cmd",
    "deploy": "services",
    "events": "triggers_cmd",
    "init": "tools_cmd",
    "kinds": "kinds_cmd",
    "logs": "runs_cmd",
    "notifications": "notifications_cmd",
    "plan": "projects_cmd",
    "projects": "projects_cmd",
    "policy": "policies_cmd",
    "queues": "queues_cmd",
    "reject": "waits_cmd",
    "rerun": "run_cmd",
    "retention": "retention_cmd",
    "retry": "run_cmd",
    "run": "run_cmd",
    "runs": "runs_cmd",
    "scheduler": "services",
    "schedules": "ops_cmd",
    "schema": "run_cmd",
    "secrets": "secrets_cmd",
    "server": "services",
    "signal": "waits_cmd",
    "sync": "sync_cmd",
    "tasks": "ops_cmd",
    "templates": "templates_cmd",
    "tokens": "accounts_cmd",
    "trigger": "triggers_cmd",
    "users": "accounts_cmd",
    "validate": "run_cmd",
    "waits": "waits_cmd",
    "worker": "services",
    "workers": "ops_cmd",
    "workflows": "workflows_cmd",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that command is used."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, the lazy ones included, sorted as click lists them."""
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called `cmd_name`, importing its module on first use."""
        known = super().get_command(ctx, cmd_name)
        if known is not None or cmd_name not in self._lazy:
            return known
        module = importlib.import_module(f"orchestrion.cli.{self._lazy[cmd_name]}")
        command = getattr(module, cmd_name.replace("-", "_"))
        if not isinstance(command, click.Command):  # a wrong COMMANDS entry: a bug, not input
            raise TypeError(f"orchestrion.cli.{self._lazy[cmd_name]}.{cmd_name} is no command")
        self.add_command(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Click's, with a mistyped name's suggestions taken among every command (click
        suggests among the loaded ones only)."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand:
            raise click.exceptions.NoSuchCommand(
                click.utils.make_str(args[0]), possibilities=self.list_commands(ctx), ctx=ctx
            ) from None


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(version=VERSION, prog_name="orchestrion")
@click.option(
    "--templates",
    "template_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder of template libraries, searched before ORCHESTRION_TEMPLATE_PATH and the"
    " templates/ folder beside a workflow file (repeatable; docs/templates.md).",
)
def main(template_dirs: tuple[str, ...]) -> None:
    """Orchestrion: define, run and watch workflows."""
    if template_dirs:
        # Put first on the search path through the variable, so that every command (and the
        # workers and deploy children it starts) searches the same folders in the same order.
        env = "ORCHESTRION_TEMPLATE_PATH"
        rest = [os.environ[env]] if os.environ.get(env) else []
        os.environ[env] = os.pathsep.join([*(os.path.abspath(d) for d in template_dirs), *rest])


if __name__ == "__main__":  # pragma: no cover
    # The variable `orchestrion completion` scripts set, also under ``python -m`` (whose
    # program name would otherwise make it ``_PYTHON__M_ORCHESTRION.CLI.MAIN_COMPLETE``).
    main(complete_var="_ORCHESTRION_COMPLETE")

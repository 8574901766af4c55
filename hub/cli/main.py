"""The ``hub`` command: one group, each sub-command in a module of its own."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click

from hub.cli.context import EXIT_USER_ERROR, CliContext
from hub.errors import UserError

#: every sub-command: name -> (module, attribute). Modules are imported only when their command
#: runs (or for --help), so `hub db current` does not pay for spaCy, the web app or GnuPG.
COMMANDS: dict[str, tuple[str, str]] = {
    "answer": ("hub.cli.answer_cmd", "answer"),
    "audit": ("hub.cli.audit_cmd", "audit"),
    "classify": ("hub.cli.classify_cmd", "classify"),
    "creditor": ("hub.cli.creditor_cmd", "creditor"),
    "db": ("hub.cli.db_cmd", "db"),
    "debtor": ("hub.cli.debtor_cmd", "debtor"),
    "demo": ("hub.cli.demo_cmd", "demo"),
    "fetch": ("hub.cli.fetch_cmd", "fetch"),
    "gdpr": ("hub.cli.gdpr_cmd", "gdpr"),
    "import": ("hub.cli.import_cmd", "import_"),
    "ingest": ("hub.cli.ingest_cmd", "ingest"),
    "inspect": ("hub.cli.inspect_cmd", "inspect"),
    "keys": ("hub.cli.keys_cmd", "keys"),
    "nlp": ("hub.cli.nlp_cmd", "nlp"),
    "payments": ("hub.cli.payments_cmd", "payments"),
    "remind": ("hub.cli.remind_cmd", "remind"),
    "reminder": ("hub.cli.remind_cmd", "reminder"),
    "serve": ("hub.cli.serve_cmd", "serve"),
    "thread": ("hub.cli.thread_cmd", "thread"),
    "train": ("hub.cli.train_cmd", "train_command"),
    "user": ("hub.cli.user_cmd", "user"),
    "worker": ("hub.cli.worker_cmd", "worker"),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command = getattr(importlib.import_module(target[0]), target[1])
        if not isinstance(command, click.Command):
            raise TypeError(f"{target[0]}.{target[1]} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HUB_CONFIG",
    help="TOML configuration file (default: built-in settings plus HUB_* variables).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """The hub: one secure conversation per debt-collection case."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliContext(config_path=config_path)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except UserError as exc:  # raised while loading settings outside run()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)

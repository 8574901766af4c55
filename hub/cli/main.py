"""The ``hub`` command: one group, each sub-command in a module of its own."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from hub.cli import (
    answer_cmd,
    audit_cmd,
    classify_cmd,
    creditor_cmd,
    db_cmd,
    debtor_cmd,
    demo_cmd,
    fetch_cmd,
    gdpr_cmd,
    import_cmd,
    ingest_cmd,
    inspect_cmd,
    keys_cmd,
    nlp_cmd,
    payments_cmd,
    remind_cmd,
    serve_cmd,
    signing_cmd,
    thread_cmd,
    train_cmd,
    user_cmd,
    worker_cmd,
)
from hub.cli.context import EXIT_USER_ERROR, CliContext
from hub.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(db_cmd.db)
cli.add_command(keys_cmd.keys)
cli.add_command(audit_cmd.audit)
cli.add_command(creditor_cmd.creditor)
cli.add_command(import_cmd.import_)
cli.add_command(worker_cmd.worker)
cli.add_command(fetch_cmd.fetch)
cli.add_command(classify_cmd.classify)
cli.add_command(debtor_cmd.debtor)
cli.add_command(remind_cmd.remind)
cli.add_command(remind_cmd.reminder)
keys_cmd.keys.add_command(signing_cmd.init_signing)
cli.add_command(demo_cmd.demo)
cli.add_command(inspect_cmd.inspect)
cli.add_command(ingest_cmd.ingest)
cli.add_command(payments_cmd.payments)
cli.add_command(thread_cmd.thread)
cli.add_command(serve_cmd.serve)
cli.add_command(user_cmd.user)
cli.add_command(answer_cmd.answer)
cli.add_command(gdpr_cmd.gdpr)
cli.add_command(nlp_cmd.nlp)
cli.add_command(train_cmd.train_command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except UserError as exc:  # raised while loading settings outside run()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)

"""``hub fetch --once``: drain the configured IMAP mailboxes once and print the counts."""

from __future__ import annotations

import click

from hub.cli.context import CliContext, pass_context, run
from hub.inbound.fetch import fetch_once


async def _fetch(ctx: CliContext) -> str:
    settings = ctx.settings()
    async with ctx.database() as database:
        counts = await fetch_once(settings, database)
    return counts.summary()


@click.command()
@click.option("--once", is_flag=True, required=True, help="One pass over every mailbox.")
@pass_context
def fetch(ctx: CliContext, once: bool) -> None:
    """Fetch new mail from the [imap] mailboxes, store it, then flag or move it."""
    click.echo(run(_fetch(ctx)))

"""``hub answer approve|discard ENTRY_ID``: decide an answer draft that waits for a collector.

A creditor whose answers need approval gets each of the hub's answers as an internal
``answer_draft`` entry on the case's thread; ``approve`` sends it (once, however often it is
run), ``discard`` drops it. The collector's name is recorded on the draft.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from datetime import UTC, datetime

import click

from hub.cli.context import EXIT_USER_ERROR, CliContext, pass_context, run
from hub.services.answer_send import AnswerOutcome
from hub.services.conversation import approve_answer, discard_answer
from hub.services.reminder_mail import open_mailer

_COLLECTOR = click.option(
    "--collector",
    default=getpass.getuser,
    show_default="the login name",
    help="Who decides (recorded on the draft).",
)


@click.group()
def answer() -> None:
    """Decide the hub's answers that wait for a collector's approval."""


@answer.command("approve")
@click.argument("entry_id", type=int)
@_COLLECTOR
@pass_context
def approve(ctx: CliContext, entry_id: int, collector: str) -> None:
    """Send the answer draft ENTRY_ID (a thread entry id)."""
    settings = ctx.settings()

    async def go() -> AnswerOutcome:
        async with ctx.database() as database:
            mailer = await open_mailer(settings)
            try:
                return await approve_answer(
                    database, settings, mailer, entry_id, collector, datetime.now(UTC)
                )
            finally:
                await asyncio.to_thread(mailer.close)

    outcome = run(go())
    if outcome.status == "queued":
        click.echo(
            f"draft {entry_id}: queued ({outcome.protection}, outbox {outcome.outbox_id}, "
            f"Message-ID {outcome.message_id})"
        )
    elif outcome.status == "duplicate":
        click.echo(f"draft {entry_id}: already decided ({outcome.reason}); nothing sent")
    else:
        click.echo(f"draft {entry_id}: not sent ({outcome.reason})", err=True)
        sys.exit(EXIT_USER_ERROR)


@answer.command("discard")
@click.argument("entry_id", type=int)
@_COLLECTOR
@pass_context
def discard(ctx: CliContext, entry_id: int, collector: str) -> None:
    """Drop the answer draft ENTRY_ID without sending it."""

    async def go() -> bool:
        async with ctx.database() as database:
            return await discard_answer(database, entry_id, collector, datetime.now(UTC))

    if run(go()):
        click.echo(f"draft {entry_id}: discarded")
    else:
        click.echo(f"draft {entry_id}: already decided; nothing changed")

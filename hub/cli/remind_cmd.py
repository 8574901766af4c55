"""``hub remind`` queues the reminders that are due; ``hub reminder render`` shows the next one.

``hub remind`` is one pass of what the ``dunning`` loop of ``hub worker`` does every few
minutes; ``--dry-run`` decides without building or storing anything. ``hub reminder render``
writes the exact MIME message (after protection) that the case's next reminder would be, for
checking with one's own tools; nothing is queued and the case is not changed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click

from hub.cli.context import CliContext, pass_context, run
from hub.services.dunning import DunningSummary, queue_due_reminders, render_next_reminder
from hub.services.reminder_mail import open_mailer


@click.command()
@click.option("--dry-run", is_flag=True, help="Decide and count, but build and store nothing.")
@click.option(
    "--case", "case_refs", multiple=True, metavar="REF", help="Only this case (repeatable)."
)
@pass_context
def remind(ctx: CliContext, dry_run: bool, case_refs: tuple[str, ...]) -> None:
    """Queue every reminder that is due now, and print what was done."""
    settings = ctx.settings()

    async def go() -> DunningSummary:
        async with ctx.database() as database:
            if dry_run:
                return await queue_due_reminders(
                    database,
                    settings,
                    datetime.now(UTC),
                    mailer=None,
                    case_refs=case_refs or None,
                    dry_run=True,
                )
            mailer = await open_mailer(settings)
            try:
                return await queue_due_reminders(
                    database,
                    settings,
                    datetime.now(UTC),
                    mailer=mailer,
                    case_refs=case_refs or None,
                )
            finally:
                await asyncio.to_thread(mailer.close)

    summary = run(go())
    if case_refs:
        for reference, outcome in summary.cases:
            click.echo(f"{reference}: {outcome}")
    click.echo(summary.summary() + (" (dry run: nothing stored)" if dry_run else ""))


@click.group()
def reminder() -> None:
    """Inspect reminders."""


@reminder.command("render")
@click.argument("case_ref")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the message (.eml).",
)
@click.option("--creditor", "creditor_code", metavar="CODE", help="The case's creditor.")
@pass_context
def render(ctx: CliContext, case_ref: str, out: Path, creditor_code: str | None) -> None:
    """Write the exact message the next reminder of CASE_REF would be (nothing is queued)."""
    settings = ctx.settings()

    async def go() -> tuple[str, str, int]:
        async with ctx.database() as database:
            mailer = await open_mailer(settings)
            try:
                built = await render_next_reminder(
                    database,
                    settings,
                    mailer,
                    case_ref,
                    datetime.now(UTC),
                    creditor_code=creditor_code,
                )
            finally:
                await asyncio.to_thread(mailer.close)
        await asyncio.to_thread(out.write_bytes, built.raw)
        return built.protection.value, built.message_id, len(built.raw)

    protection, message_id, size = run(go())
    click.echo(f"wrote {out} ({size} bytes, {protection}, Message-ID {message_id})")

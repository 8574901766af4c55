"""``hub gdpr``: data subjects' rights (export, erase), retention and records of processing."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from hub.cli.context import CliContext, pass_context, run
from hub.services.gdpr_erase import ErasureReport, erase_person
from hub.services.gdpr_export import ExportResult, export_person
from hub.services.processing_records import ProcessingRecord, find_case, records_for_case
from hub.services.retention import RetentionReport, run_retention_pass

CREDITOR_HELP = "The creditor's code, when DEBTOR names debtors of several creditors."


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


@click.group()
def gdpr() -> None:
    """Data protection: export or erase a person's data, retention, records of processing."""


@gdpr.command()
@click.argument("debtor")
@click.option("--creditor", "creditor_code", metavar="CODE", help=CREDITOR_HELP)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ZIP file to write (mode 0600).",
)
@pass_context
def export(ctx: CliContext, debtor: str, creditor_code: str | None, out: Path) -> None:
    """Write everything held about DEBTOR to a ZIP file (Art. 15/20 GDPR).

    DEBTOR is the creditor's debtor reference, a case reference or an email address.
    """
    settings = ctx.settings()

    async def go() -> ExportResult:
        async with ctx.database() as database:
            return await export_person(
                database,
                debtor,
                out,
                creditor_code=creditor_code,
                actor=_actor(),
                hub_name=settings.hub.name,
            )

    result = run(go())
    click.echo(
        f"wrote {result.path}: debtor {result.debtor_id}, {result.cases} case(s), "
        f"{result.files} files, {result.size} bytes, sha256 {result.sha256}"
    )


@gdpr.command()
@click.argument("debtor")
@click.option("--creditor", "creditor_code", metavar="CODE", help=CREDITOR_HELP)
@click.option("--dry-run", is_flag=True, help="Show what would be anonymized; change nothing.")
@click.option(
    "--reason",
    default="data subject's request (Art. 17 GDPR)",
    show_default=True,
    help="Why (kept in the audit log: no names or addresses here).",
)
@pass_context
def erase(
    ctx: CliContext, debtor: str, creditor_code: str | None, dry_run: bool, reason: str
) -> None:
    """Anonymize DEBTOR, keeping only what the claims still need.

    A case under legal hold refuses the erasure and nothing changes.
    """

    async def go() -> ErasureReport:
        async with ctx.database() as database:
            return await erase_person(
                database,
                debtor,
                creditor_code=creditor_code,
                actor=_actor(),
                reason=reason,
                dry_run=dry_run,
            )

    click.echo(run(go()).summary())


@gdpr.command()
@click.option("--dry-run", is_flag=True, help="List what is due; change nothing.")
@pass_context
def retention(ctx: CliContext, dry_run: bool) -> None:
    """Anonymize finished cases past their creditor's retention period."""
    settings = ctx.settings()

    async def go() -> RetentionReport:
        async with ctx.database() as database:
            return await run_retention_pass(database, settings, dry_run=dry_run, actor=_actor())

    report = run(go())
    for case in report.due:
        mark = "HELD " if case.legal_hold else ("due  " if dry_run else "done ")
        click.echo(
            f"{mark}{case.creditor}/{case.reference}  {case.state:<9} last activity "
            f"{case.last_activity.date().isoformat()}  ({case.retention_days} days)"
        )
    for refusal in report.refused:
        click.echo(f"refused: {refusal}")
    click.echo(report.summary())


def format_records(records: list[ProcessingRecord]) -> str:
    lines = []
    for r in records:
        how = "auto  " if r.automated else "person"
        lines.append(f"{r.at.isoformat(timespec='seconds')}  {how}  {r.what}  [{r.actor}]")
        lines.append(f"    basis: {r.basis}  (from {r.source})")
    return "\n".join(lines)


@gdpr.command()
@click.argument("case_ref")
@click.option("--creditor", "creditor_code", metavar="CODE", help="Narrow CASE_REF to a creditor.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def records(ctx: CliContext, case_ref: str, creditor_code: str | None, as_json: bool) -> None:
    """List every step that processed the person's data in case CASE_REF, with its basis."""

    async def go() -> list[ProcessingRecord]:
        async with ctx.database() as database, database.sessions() as session:
            case = await find_case(session, case_ref, creditor_code)
            return await records_for_case(session, case)

    found = run(go())
    if as_json:
        click.echo(json.dumps([r.as_json() for r in found], indent=2, ensure_ascii=False))
    else:
        click.echo(format_records(found) or "no records")

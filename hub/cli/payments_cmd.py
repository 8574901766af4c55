"""``hub payments import FILE``: record the payments of a CSV file or a camt.053 statement."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from hub.cli.context import EXIT_USER_ERROR, CliContext, pass_context, run
from hub.services.payment_files import CSV_COLUMNS, CSV_REQUIRED, parse_payment_file
from hub.services.payment_import import PaymentImportReport, import_payments

_HELP = f"""Record the payments in FILE: a CSV file or an ISO 20022 camt.053 bank statement.

\b
CSV: the first line names the columns (comma or semicolon separated, UTF-8):
  required: {", ".join(c for c in CSV_COLUMNS if c in CSV_REQUIRED)}
  optional: {", ".join(c for c in CSV_COLUMNS if c not in CSV_REQUIRED)} (remittance text)
camt.053: booked credit entries; debits and pending entries are left out.
Each payment is matched to its case by reference (exactly, else a case reference
found in the remittance text); unmatched payments are listed and not recorded.
Importing a file again records nothing twice (the external id / bank reference).
Invalid rows are listed and the valid ones recorded; exit status 2 when any row
was invalid (fix it and import the file again).
"""


def _format(file: Path, given: str | None) -> str:
    if given is not None:
        return given
    return "camt053" if file.suffix.lower() == ".xml" else "csv"


@click.group()
def payments() -> None:
    """Payments received for cases."""


@payments.command("import", help=_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "camt053"]),
    help="The file's format (default: camt053 for .xml files, else csv).",
)
@click.option(
    "--creditor", "creditor_code", metavar="CODE", help="Match this creditor's cases only."
)
@click.option("--dry-run", is_flag=True, help="Match and count, record nothing.")
@pass_context
def import_payments_cmd(
    ctx: CliContext, file: Path, file_format: str | None, creditor_code: str | None, dry_run: bool
) -> None:
    chosen = _format(file, file_format)

    async def go() -> PaymentImportReport:
        data = await asyncio.to_thread(file.read_bytes)
        parsed = await asyncio.to_thread(parse_payment_file, data, chosen)
        async with ctx.database() as database:
            return await import_payments(
                database,
                parsed,
                source=chosen,
                actor=f"import:{chosen}",
                now=datetime.now(UTC),
                creditor_code=creditor_code,
                dry_run=dry_run,
            )

    report = run(go())
    for problem in report.errors:
        click.echo(f"invalid: {problem}")
    for problem in report.unmatched:
        click.echo(f"unmatched: {problem}")
    for problem in report.overpaid:
        click.echo(f"overpaid: {problem}")
    for problem in report.ignored:
        click.echo(f"ignored: {problem}")
    click.echo(report.summary() + (" (dry run: nothing recorded)" if dry_run else ""))
    if report.errors:
        sys.exit(EXIT_USER_ERROR)

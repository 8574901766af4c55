"""``hub import FILE``: import the cases a creditor handed over as CSV."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from tqdm import tqdm

from hub.cli.context import EXIT_USER_ERROR, CliContext, pass_context, run
from hub.errors import UserError
from hub.services import validation
from hub.services.case_import import ImportReport, import_cases
from hub.services.case_rows import RowDefaults
from hub.services.csv_rows import COLUMNS, REQUIRED, parse_case_file

_HELP = f"""Import the cases in the CSV file FILE.

\b
The first line names the columns (comma or semicolon separated, UTF-8):
  required: {", ".join(c for c in COLUMNS if c in REQUIRED)}
  optional: {", ".join(c for c in COLUMNS if c not in REQUIRED)}
Every row is checked first; a file with any invalid row imports nothing unless
--skip-invalid is given. Cases already imported (same creditor and reference) are
skipped, so importing the same file twice changes nothing.
Exit status 2 when there were errors and nothing was imported.
"""


@click.command("import", help=_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--creditor",
    "creditor_code",
    metavar="CODE",
    help="Creditor of every row (the file's creditor column may then be left out).",
)
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows, list the others.")
@click.option("--dry-run", is_flag=True, help="Check and count, store nothing.")
@pass_context
def import_(
    ctx: CliContext, file: Path, creditor_code: str | None, skip_invalid: bool, dry_run: bool
) -> None:
    settings = ctx.settings()

    async def go() -> ImportReport:
        code = None
        if creditor_code is not None:
            try:
                code = validation.check_creditor_code(creditor_code)
            except ValueError as exc:
                raise UserError(f"--creditor: {exc}") from None
        defaults = RowDefaults(
            language=settings.import_.default_language,
            timezone=settings.hub.default_timezone,
            creditor=code,
        )
        data = await asyncio.to_thread(file.read_bytes)
        parsed = await asyncio.to_thread(parse_case_file, data, defaults)
        async with ctx.database() as database:
            with tqdm(
                total=len(parsed.rows),
                unit="row",
                file=sys.stderr,
                disable=not sys.stderr.isatty(),
            ) as bar:
                return await import_cases(
                    database,
                    parsed,
                    source=file.name,
                    batch_size=settings.import_.batch_size,
                    skip_invalid=skip_invalid,
                    dry_run=dry_run,
                    progress=bar.update,
                )

    report = run(go())
    for error in report.errors:
        click.echo(f"invalid: {error}")
    for conflict in report.conflicts:
        click.echo(f"conflict: {conflict}")
    for note in report.debtor_notes:
        click.echo(f"note: {note}")
    if report.errors and not skip_invalid:
        click.echo(
            "nothing imported: the file has errors; fix them, or give --skip-invalid "
            "to import the valid rows",
            err=True,
        )
    click.echo(report.summary() + (" (dry run: nothing stored)" if dry_run else ""))
    if report.aborted:
        sys.exit(EXIT_USER_ERROR)

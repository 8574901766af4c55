"""``hub nlp export-corrections --out FILE.jsonl``: collectors' labels as training records.

Each reply a collector confirmed or corrected in the triage queue becomes one line in the
LABELS.md format (:mod:`hub.services.corrections_export`). The file holds debtors' words: it is
written with mode 0600 and the export is audited.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import click

from hub.cli.context import CliContext, pass_context, run
from hub.services.corrections_export import correction_records


@click.group()
def nlp() -> None:
    """The intent model's data: labels collected from collectors' decisions."""


@nlp.command("export-corrections")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The JSON-lines file to write (replaced).",
)
@pass_context
def export_corrections(ctx: CliContext, out: Path) -> None:
    """Write every confirmed or corrected classification to OUT (LABELS.md records)."""

    async def go() -> tuple[int, int]:
        written = corrected = 0
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            async with ctx.database() as database:
                async for record in correction_records(database, f"cli:{getpass.getuser()}"):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                    written += 1
                    corrected += int(bool(record["corrected"]))
        return written, corrected

    written, corrected = run(go())
    click.echo(f"{written} labelled replies written to {out} ({corrected} corrected)")

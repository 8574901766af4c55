"""``hub train``: retrain the reply classifier on the corpus plus collectors' labels.

Reads every reply a collector confirmed or corrected (as ``hub nlp export-corrections`` does),
retrains in a temporary copy of ``nlp_models/`` and keeps, per language, the old model when the
new one has a lower macro-F1 on the evaluation split (:mod:`hub.nlp.training`).
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any

import click

from hub.cli.context import CliContext, pass_context, run
from hub.nlp.language import SUPPORTED
from hub.nlp.training import TrainingError, default_project_dir, format_report, train
from hub.services.corrections_export import correction_records


@click.command("train")
@click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="The spaCy project (default: nlp_models of this checkout).",
)
@click.option(
    "--lang",
    "languages",
    type=click.Choice(SUPPORTED),
    multiple=True,
    help="Retrain only these languages (repeatable; default: all).",
)
@click.option(
    "--corrections/--no-corrections",
    default=True,
    help="Add the labelled replies stored in the database (default: yes).",
)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Training steps.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="Use the first N records per file."
)
@pass_context
def train_command(
    ctx: CliContext,
    project: Path | None,
    languages: tuple[str, ...],
    corrections: bool,
    max_steps: int | None,
    limit: int | None,
) -> None:
    """Retrain, evaluate on the evaluation split, keep the better model per language."""
    records: list[dict[str, Any]] = []
    if corrections:

        async def collect() -> None:
            async with ctx.database() as database:
                async for record in correction_records(database, f"cli:{getpass.getuser()}"):
                    records.append(record)

        run(collect())
    try:
        report = run(
            asyncio.to_thread(
                train,
                records,
                project=project or default_project_dir(),
                languages=languages or SUPPORTED,
                max_steps=max_steps,
                limit=limit,
            )
        )
    except TrainingError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in format_report(report):
        click.echo(line)

"""``hub demo``: the whole loop on the embedded default (SQLite under ./var/demo)."""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli.context import run
from hub.demo.run import run_demo


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/demo"),
    show_default=True,
    help="Where the demo keeps its database, keys and mailboxes (wiped at each start).",
)
def demo(data_dir: Path) -> None:
    """Run the hub on SQLite with a local SMTP relay and simulated debtors, and narrate it."""

    def say(line: str) -> None:
        click.echo(f"[demo] {line}")

    report = run(run_demo(data_dir, say))
    if report.plaintext_leaks:
        raise SystemExit(1)

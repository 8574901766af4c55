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
@click.option(
    "--once",
    is_flag=True,
    help="Run the loop once and exit, instead of then serving the web pages until Ctrl-C.",
)
def demo(data_dir: Path, once: bool) -> None:
    """Run the hub on SQLite with a local SMTP relay and simulated debtors, and narrate it.

    Afterwards the web pages are served (the demo logins are printed) until Ctrl-C, unless
    --once is given.
    """

    def say(line: str) -> None:
        click.echo(f"[demo] {line}")

    try:
        report = run(run_demo(data_dir, say, serve=not once))
    except KeyboardInterrupt:
        click.echo("[demo] stopped")
        return
    if report.plaintext_leaks:
        raise SystemExit(1)

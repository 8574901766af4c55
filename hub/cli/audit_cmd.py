"""``hub audit``: check that the audit log's hash chain is intact."""

from __future__ import annotations

import click

from hub.cli.context import CliContext, pass_context, run
from hub.errors import PermanentError
from hub.security.audit import chain_status


@click.group()
def audit() -> None:
    """Inspect the append-only audit log."""


@audit.command()
@pass_context
def verify(ctx: CliContext) -> None:
    """Recompute every entry's hash and link; exit 1 at the first broken entry."""

    async def go() -> None:
        async with ctx.database() as database, database.sessions() as session:
            status = await chain_status(session)
        if status.first_broken_id is not None:
            raise PermanentError(
                f"audit log broken at entry id {status.first_broken_id} "
                f"({status.entries - 1} entries before it verified)"
            )
        click.echo(f"audit log intact: {status.entries} entries, head {status.head_hash}")

    run(go())

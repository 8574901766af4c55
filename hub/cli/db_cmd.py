"""``hub db``: create, upgrade and downgrade the schema."""

from __future__ import annotations

import click

from hub.cli.context import CliContext, pass_context, run
from hub.storage import migrate


@click.group()
def db() -> None:
    """Manage the database schema (Alembic migrations)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_context
def upgrade(ctx: CliContext, revision: str) -> None:
    """Create or upgrade the schema."""

    async def go() -> None:
        async with ctx.database(require_current_schema=False) as database:
            await migrate.upgrade(database.engine, revision)
            click.echo(f"database at revision {await migrate.current_revision(database.engine)}")

    run(go())


@db.command()
@click.argument("revision")
@pass_context
def downgrade(ctx: CliContext, revision: str) -> None:
    """Downgrade the schema to REVISION ('base' removes every table)."""

    async def go() -> None:
        async with ctx.database(require_current_schema=False) as database:
            await migrate.downgrade(database.engine, revision)
            current = await migrate.current_revision(database.engine)
            click.echo(f"database at revision {current or 'base'}")

    run(go())


@db.command()
@pass_context
def current(ctx: CliContext) -> None:
    """Print the schema revision of the database and the newest one known."""

    async def go() -> None:
        async with ctx.database(require_current_schema=False) as database:
            now = await migrate.current_revision(database.engine)
            click.echo(f"current: {now or 'base (empty)'}\nhead: {migrate.head_revision()}")

    run(go())

"""What every CLI command shares: the settings, loaded once, and a way to run a coroutine."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from hub.config import Settings, load_settings
from hub.errors import HubError, TemporaryError, UserError
from hub.storage import migrate
from hub.storage.db import Database, open_database

T = TypeVar("T")

EXIT_USER_ERROR = 2
EXIT_TEMPORARY = 75  # EX_TEMPFAIL: try again later


@dataclass
class CliContext:
    config_path: Path | None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            logging.getLogger().setLevel(self._settings.logging.level)
        return self._settings

    @asynccontextmanager
    async def database(self, *, require_current_schema: bool = True) -> AsyncIterator[Database]:
        """Open the database, check it is reachable (and migrated), close it afterwards."""
        db = open_database(self.settings())
        try:
            await db.check()
            if require_current_schema and not await migrate.is_up_to_date(db.engine):
                raise UserError("the database schema is not up to date: run 'hub db upgrade' first")
            yield db
        finally:
            await db.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning the hub's errors into a message and an exit code."""
    try:
        return asyncio.run(coro)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except TemporaryError as exc:
        click.echo(f"error (temporary, try again): {exc}", err=True)
        sys.exit(EXIT_TEMPORARY)
    except HubError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


pass_context = click.make_pass_decorator(CliContext)

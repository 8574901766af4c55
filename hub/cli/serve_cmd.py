"""``hub serve``: run the web application, over TLS itself or behind a trusted proxy."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import click
from aiohttp import web

from hub.cli.context import CliContext, pass_context, run
from hub.web.app import init_app, tls_context

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default=None, help="Listen address (default: web.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: web.port).")
@pass_context
def serve(ctx: CliContext, host: str | None, port: int | None) -> None:
    """Serve the web pages and the JSON API until interrupted."""
    settings = ctx.settings()

    async def go() -> None:
        ssl_context = tls_context(settings)
        async with ctx.database() as database:
            app = init_app(settings, database)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(
                runner,
                host or settings.web.host,
                settings.web.port if port is None else port,
                ssl_context=ssl_context,
            )
            await site.start()
            for address in runner.addresses:
                scheme = "https" if ssl_context else "http"
                click.echo(f"serving on {scheme}://{address[0]}:{address[1]}", err=True)
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        run(go())

"""The one stylesheet (CSP allows styles from 'self' only, never inline)."""

from __future__ import annotations

from aiohttp import web

from hub.web import keys


async def stylesheet(request: web.Request) -> web.StreamResponse:
    path = request.app[keys.CONFIG].settings.outbound.default_template_dir / "web/static/hub.css"
    return web.FileResponse(path, headers={"Content-Type": "text/css; charset=utf-8"})

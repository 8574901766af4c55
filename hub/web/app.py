"""The application factory: ``init_app(settings, database)`` and the TLS context for serving.

The settings and the open database are passed in and held under typed ``AppKey``s; a
``cleanup_ctx`` runs the purge of expired sessions for the application's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator

from aiohttp import web

from hub.config import Settings
from hub.errors import ConfigError
from hub.security.tokens import decode_secret
from hub.services.login_throttle import ThrottlePolicy
from hub.services.portal_access import purge_expired as purge_portal
from hub.services.web_login import LoginPolicy
from hub.services.web_sessions import SessionPolicy, purge_expired
from hub.storage.db import Database
from hub.web import keys, mailer
from hub.web.client import TrustedProxies
from hub.web.middleware import auth_middleware, error_middleware, proxy_middleware
from hub.web.render import make_environment
from hub.web.routes import ROUTES
from hub.web.security_headers import add_security_headers

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 600.0


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A server TLS context (1.2 minimum, 1.3 preferred by OpenSSL) when cert and key are set."""
    web_settings = settings.web
    if web_settings.tls_cert_file is None and web_settings.tls_key_file is None:
        return None
    if web_settings.tls_cert_file is None or web_settings.tls_key_file is None:
        raise ConfigError("web.tls_cert_file and web.tls_key_file must be given together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(web_settings.tls_cert_file, web_settings.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"web.tls_cert_file/tls_key_file: cannot load: {exc}") from None
    return context


def _web_config(settings: Settings) -> keys.WebConfig:
    secret = settings.web.session_secret
    if secret is None:
        raise ConfigError(
            "web.session_secret: missing; set HUB_WEB_SESSION_SECRET or web.session_secret_file "
            "(generate one with: hub keys generate)"
        )
    return keys.WebConfig(
        settings=settings,
        csrf_secret=decode_secret(secret.get_secret_value()),
        login_policy=LoginPolicy(
            sessions=SessionPolicy.from_settings(settings.web),
            throttle=ThrottlePolicy.from_settings(settings.web),
        ),
        cookie_secure=settings.web.cookie_secure,
        tls=settings.web.tls_cert_file is not None,
    )


async def _purge_sessions(app: web.Application) -> AsyncIterator[None]:
    database = app[keys.DATABASE]
    policy = app[keys.CONFIG].login_policy.sessions

    async def loop() -> None:
        while True:
            try:
                ended = await purge_expired(database, policy)
                ended += await purge_portal(database)
                if ended:
                    log.info("purged %d expired sessions", ended)
            except Exception:  # a failed purge must not stop the next one
                log.exception("session purge failed")
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def init_app(settings: Settings, database: Database) -> web.Application:
    config = _web_config(settings)
    proxies = TrustedProxies.parse(settings.web.trusted_proxies)
    app = web.Application(
        middlewares=[proxy_middleware(proxies), error_middleware, auth_middleware],
        client_max_size=settings.web.max_upload_bytes,
    )
    app[keys.SETTINGS] = settings
    app[keys.DATABASE] = database
    app[keys.CONFIG] = config
    app[keys.TEMPLATES] = make_environment(settings.outbound.default_template_dir / "web")
    app[keys.ROUTES] = {route.name: route for route in ROUTES}
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
    app.on_response_prepare.append(add_security_headers)
    app.cleanup_ctx.append(_purge_sessions)
    mailer.install(app, settings)
    return app

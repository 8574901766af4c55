"""Typed keys for what the application and each request carry (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
from aiohttp import web

from hub.config import Settings
from hub.security.roles import Principal
from hub.services.web_login import LoginPolicy
from hub.services.web_sessions import SessionInfo
from hub.storage.db import Database
from hub.web.route_table import Route


@dataclass(frozen=True)
class WebConfig:
    """What the handlers need besides the database, decided once in ``init_app``."""

    settings: Settings
    csrf_secret: bytes
    login_policy: LoginPolicy
    cookie_secure: bool
    #: True when the hub itself terminates TLS (then HSTS is always sent)
    tls: bool


SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
CONFIG = web.AppKey("config", WebConfig)
TEMPLATES = web.AppKey("templates", jinja2.Environment)

#: the caller, once authenticated (None for anonymous requests)
PRINCIPAL = web.RequestKey("principal", Principal)
#: the browser session (absent for API tokens and anonymous visitors)
SESSION = web.RequestKey("session", SessionInfo)
#: what CSRF tokens of this request are bound to (session token or pre-session cookie)
CSRF_BINDING = web.RequestKey("csrf_binding", str)
#: a pre-session cookie made for this request, to be set on the response
NEW_PRESESSION = web.RequestKey("new_presession", str)

#: the declared routes by name: what the auth middleware checks every request against
ROUTES = web.AppKey("routes", dict[str, Route])
#: set on the original request when a trusted proxy says the client came over https
FORWARDED_HTTPS = web.RequestKey("forwarded_https", bool)

"""The shape of a route declaration: method, path, handler and the one permission it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web

from hub.security.roles import Permission

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Kind(StrEnum):
    PAGE = "page"  # HTML for browsers: anonymous callers are sent to the login page
    API = "api"  # JSON: anonymous callers get 401; bearer tokens are accepted


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    permission: Permission
    name: str
    kind: Kind = Kind.PAGE
    #: one line for the OpenAPI document
    summary: str = ""

    @property
    def changes_state(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

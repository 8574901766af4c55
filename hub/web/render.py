"""Server-rendered pages: one jinja2 environment (autoescape on) and a render helper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from hub.security.roles import Permission
from hub.security.tokens import csrf_token
from hub.web import keys


def make_environment(template_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=True,  # every page: a value is text unless marked otherwise
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty_json"] = lambda value: json.dumps(
        value, indent=2, sort_keys=True, ensure_ascii=False, default=str
    )
    return env


def csrf_for(request: web.Request) -> str:
    binding = request.get(keys.CSRF_BINDING)
    if not binding:
        return ""
    return csrf_token(request.app[keys.CONFIG].csrf_secret, binding)


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> web.Response:
    env = request.app[keys.TEMPLATES]
    values: dict[str, Any] = {
        "principal": request.get(keys.PRINCIPAL),
        "csrf_token": csrf_for(request),
        "hub_name": request.app[keys.CONFIG].settings.hub.name,
        "message": None,
        "error": None,
        "principal_permissions": Permission,
    }
    values.update(context or {})
    text = env.get_template(template).render(values)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str) -> web.Response:
    """A 303 answer that can still take cookies (raising HTTPSeeOther cannot be returned)."""
    return web.Response(status=303, headers={"Location": location})

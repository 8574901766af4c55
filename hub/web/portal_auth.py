"""The debtor portal's session in the web layer: its cookie, its request key, its pages' frame.

The portal never shares anything with the staff login: its own cookie (``hub_portal``, path
``/portal``, HttpOnly, SameSite=Strict, Secure like the staff cookie), its own table, and routes
that declare :attr:`~hub.security.roles.Permission.PORTAL`, which no staff role holds. The auth
middleware calls :func:`portal_session` for those routes, and a request without a live portal
session gets :func:`expired_page` (401), before any form is read.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

from hub.domain.mail import LANGUAGES, Language, language_or_default
from hub.domain.portal_text import translator
from hub.outbound.render import LOCALES
from hub.services.portal_access import PortalPolicy, PortalSessionInfo, load_portal_session
from hub.web import keys
from hub.web.render import csrf_for

PORTAL_COOKIE = "hub_portal"
PORTAL_PATH = "/portal"
#: the live portal session of this request (set by the auth middleware on portal routes)
PORTAL_SESSION = web.RequestKey("portal_session", PortalSessionInfo)


def policy_of(request: web.Request) -> PortalPolicy:
    return PortalPolicy.from_settings(request.app[keys.CONFIG].settings.web)


async def portal_session(request: web.Request) -> PortalSessionInfo | None:
    token = request.cookies.get(PORTAL_COOKIE, "")
    if not token:
        return None
    return await load_portal_session(request.app[keys.DATABASE], token)


def set_portal_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    config = request.app[keys.CONFIG]
    max_age = int(policy_of(request).session_lifetime.total_seconds())
    response.set_cookie(
        PORTAL_COOKIE,
        token,
        secure=config.cookie_secure,
        httponly=True,
        samesite="Strict",
        path=PORTAL_PATH,
        max_age=max_age,
    )


def clear_portal_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(PORTAL_COOKIE, path=PORTAL_PATH)


def requested_language(request: web.Request, fallback: Language) -> Language:
    """``?lang=`` if it names a portal language, else the browser's first one we have."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return language_or_default(asked, fallback)
    return fallback


def browser_language(request: web.Request, default: Language) -> Language:
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";", 1)[0].strip()
        if tag:
            found = language_or_default(tag, default)
            if tag.lower().startswith(found):
                return found
    return default


def _filters(language: Language) -> dict[str, Any]:
    locale = LOCALES[language]

    def money(amount: Any, currency: str) -> str:
        return str(format_currency(amount, currency, locale=locale))

    def day(value: Any) -> str:
        return str(format_date(value, format="long", locale=locale))

    def moment(value: Any) -> str:
        return str(format_datetime(value, format="medium", locale=locale))

    return {"money": money, "day": day, "moment": moment}


def render_portal(
    request: web.Request,
    template: str,
    language: Language,
    context: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    """A portal page: the message catalogue (``t``), Babel formatting, the CSRF token."""
    env = request.app[keys.TEMPLATES]
    values: dict[str, Any] = {
        "t": translator(language),
        "lang": language,
        "languages": LANGUAGES,
        "csrf_token": csrf_for(request),
        "hub_name": request.app[keys.CONFIG].settings.hub.name,
        "message": None,
        "error": None,
        "logged_in": request.get(PORTAL_SESSION) is not None,
        **_filters(language),
    }
    values.update(context or {})
    text = env.get_template(template).render(values)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def expired_page(request: web.Request) -> web.Response:
    default = request.app[keys.CONFIG].settings.hub.default_language
    language = requested_language(request, browser_language(request, default))
    response = render_portal(request, "portal/expired.html", language, status=401)
    if request.cookies.get(PORTAL_COOKIE):
        clear_portal_cookie(response)
    return response

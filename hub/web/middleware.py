"""The request pipeline: client address, errors, and the one authentication middleware.

:func:`auth_middleware` is the only place that decides whether a request may reach its
handler. It looks the matched route up in the declared route table (every route has exactly
one :class:`~hub.security.roles.Permission`), finds the caller (a session cookie, or a bearer
token on API routes), checks the CSRF token of every state-changing request that rides on a
cookie, and then the permission. Handlers never check logins themselves; they only apply the
object-level rule, through the services, which answer "not found" for others' objects.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from hub.errors import NotFoundError, UserError
from hub.security.roles import Permission
from hub.security.tokens import csrf_matches, new_token
from hub.services.users import principal_for_api_token
from hub.services.web_sessions import SessionInfo, SessionPolicy, Stage, load_session
from hub.web import keys
from hub.web.client import TrustedProxies
from hub.web.portal_auth import PORTAL_SESSION, expired_page, portal_session
from hub.web.render import render
from hub.web.route_table import Kind, Route

log = logging.getLogger(__name__)

PRESESSION_COOKIE = "hub_pre"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: where a half-logged-in or must-change-password session may still go
_STAGE_ROUTES = {
    Stage.PASSWORD: "login_totp",
    Stage.ENROL: "login_enrol",
}
_PASSWORD_CHANGE_ALLOWED = frozenset({"account_password", "account_password_post", "logout"})


def proxy_middleware(proxies: TrustedProxies) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client, scheme = proxies.resolve(
            request.remote,
            request.headers.get("X-Forwarded-For"),
            request.headers.get("X-Forwarded-Proto"),
        )
        if client != request.remote or scheme is not None:
            changes: dict[str, str] = {}
            if client is not None:
                changes["remote"] = client
            if scheme is not None:
                changes["scheme"] = scheme
                # on_response_prepare sees this original request, not the clone
                request[keys.FORWARDED_HTTPS] = scheme == "https"
            request = request.clone(**changes)  # type: ignore[arg-type]
        return await handler(request)

    return middleware


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _error(request: web.Request, status: int, message: str) -> web.Response:
    if _is_api(request):
        return web.json_response({"error": message}, status=status)
    return render(request, "error.html", {"status": status, "error": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The hub's errors as answers: not found is 404, the caller's fault 400."""
    try:
        return await handler(request)
    except NotFoundError:
        return _error(request, 404, "Not found.")
    except UserError as exc:
        return _error(request, 400, str(exc))
    except web.HTTPNotFound:
        return _error(request, 404, "Not found.")


def _set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    config = request.app[keys.CONFIG]
    web_settings = config.settings.web
    response.set_cookie(
        web_settings.cookie_name,
        token,
        secure=config.cookie_secure,
        httponly=True,
        samesite=web_settings.cookie_samesite,
        path="/",
    )


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Give the browser a (new) session token."""
    _set_session_cookie(request, response, token)


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    config = request.app[keys.CONFIG]
    response.del_cookie(config.settings.web.cookie_name, path="/")


async def _csrf_ok(request: web.Request, binding: str) -> bool:
    offered = request.headers.get(CSRF_HEADER)
    if offered is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        offered = value if isinstance(value, str) else None
    return csrf_matches(request.app[keys.CONFIG].csrf_secret, binding, offered)


def _login_redirect(request: web.Request, route: Route) -> web.StreamResponse:
    if route.kind is Kind.API:
        return web.json_response({"error": "authentication required"}, status=401)
    raise web.HTTPSeeOther(location="/login")


async def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = request.match_info
    route_name = match.route.name if match.http_exception is None else None
    route = request.app[keys.ROUTES].get(route_name or "")
    if route is None:
        return await handler(request)  # 404 / 405 from the router
    if route.permission is Permission.PORTAL:
        return await _portal(request, handler, route)
    config = request.app[keys.CONFIG]
    database = request.app[keys.DATABASE]

    info: SessionInfo | None = None
    token = await _bearer(request) if route.kind is Kind.API else None
    if token is not None:
        principal = await principal_for_api_token(database, token)
        if principal is None:
            return web.json_response({"error": "invalid or revoked token"}, status=401)
        request[keys.PRINCIPAL] = principal
    else:
        cookie = request.cookies.get(config.settings.web.cookie_name, "")
        if cookie:
            info = await load_session(
                database, cookie, SessionPolicy.from_settings(config.settings.web)
            )
        if info is not None:
            request[keys.SESSION] = info
            request[keys.CSRF_BINDING] = info.token
            if info.stage is Stage.FULL:
                request[keys.PRINCIPAL] = info.principal
        else:
            pre = request.cookies.get(PRESESSION_COOKIE, "")
            if not pre or len(pre) > 100:
                pre = new_token(24)
                request[keys.NEW_PRESESSION] = pre
            request[keys.CSRF_BINDING] = pre
        if route.changes_state and not await _csrf_ok(request, request[keys.CSRF_BINDING]):
            log.info("CSRF check failed on %s %s", request.method, route.name)
            return _error(request, 403, "The form has expired or is invalid; reload the page.")

    response = await _authorise(request, handler, route, info)
    new_pre = request.get(keys.NEW_PRESESSION)
    if new_pre and not response.prepared:
        response.set_cookie(
            PRESESSION_COOKIE,
            new_pre,
            secure=config.cookie_secure,
            httponly=True,
            samesite="Strict",
            path="/",
        )
    return response


async def _portal(request: web.Request, handler: Handler, route: Route) -> web.StreamResponse:
    """A debtor's portal route: its own session cookie, never a staff login, and CSRF."""
    info = await portal_session(request)
    if info is None:
        return expired_page(request)
    request[PORTAL_SESSION] = info
    request[keys.CSRF_BINDING] = info.token
    if route.changes_state and not await _csrf_ok(request, info.token):
        log.info("CSRF check failed on %s %s", request.method, route.name)
        return _error(request, 403, "The form has expired or is invalid; reload the page.")
    return await handler(request)


async def _authorise(
    request: web.Request, handler: Handler, route: Route, info: SessionInfo | None
) -> web.StreamResponse:
    permission = route.permission
    if permission is Permission.PUBLIC:
        return await handler(request)
    if permission is Permission.SECOND_FACTOR:
        if info is None:
            return _login_redirect(request, route)
        if info.stage is Stage.FULL:
            raise web.HTTPSeeOther(location="/")
        if _STAGE_ROUTES[info.stage] != route.name.removesuffix("_post"):
            raise web.HTTPSeeOther(location=request.app.router[_STAGE_ROUTES[info.stage]].url_for())
        return await handler(request)
    principal = request.get(keys.PRINCIPAL)
    if principal is None:
        if info is not None and info.stage in _STAGE_ROUTES and route.kind is Kind.PAGE:
            raise web.HTTPSeeOther(location=request.app.router[_STAGE_ROUTES[info.stage]].url_for())
        return _login_redirect(request, route)
    if (
        info is not None
        and info.must_change_password
        and route.name not in _PASSWORD_CHANGE_ALLOWED
    ):
        if route.kind is Kind.API:
            return web.json_response({"error": "change your password first"}, status=403)
        raise web.HTTPSeeOther(location="/account/password")
    if not principal.allows(permission):
        return _error(request, 403, "You may not do this.")
    return await handler(request)

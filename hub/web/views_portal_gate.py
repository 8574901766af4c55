"""The portal's door: the link from a reminder, the second factor, the portal's logout.

Nothing here shows anything of the case: a visitor with only the link sees the same page for
every case (and a page saying the link is not valid for a token the hub did not sign). Thin:
read the form, call :mod:`hub.services.portal_access`, answer.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from hub.domain.mail import Language
from hub.domain.portal_text import text
from hub.services import portal_access
from hub.services.portal_access import PortalDeniedError, PortalLockedError
from hub.web import keys
from hub.web.portal_auth import (
    PORTAL_SESSION,
    browser_language,
    clear_portal_cookie,
    policy_of,
    portal_session,
    render_portal,
    requested_language,
    set_portal_cookie,
)
from hub.web.render import redirect

CASE_PAGE = "/portal/case"


def _gate_language(request: web.Request) -> Language:
    default = request.app[keys.CONFIG].settings.hub.default_language
    return requested_language(request, browser_language(request, default))


def _case_of(request: web.Request) -> tuple[str, int | None]:
    token = request.match_info.get("token", "")
    settings = request.app[keys.CONFIG].settings
    return token, portal_access.case_for_token(settings, token)


def _invalid(request: web.Request) -> web.Response:
    return render_portal(request, "portal/invalid.html", _gate_language(request), status=404)


def _gate(
    request: web.Request,
    token: str,
    language: Language,
    *,
    sent: bool = False,
    chosen: bool = False,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    minutes = int(policy_of(request).code_lifetime.total_seconds() // 60)
    context = {
        "token": token,
        "sent": sent,
        "minutes": minutes,
        "chosen": chosen or "lang" in request.query,
    }
    if error is not None:
        context["error"] = error
    return render_portal(request, "portal/gate.html", language, context, status=status)


async def gate(request: web.Request) -> web.StreamResponse:
    token, case_id = _case_of(request)
    if case_id is None:
        return _invalid(request)
    current = await portal_session(request)
    if current is not None and current.case_id == case_id:
        return redirect(CASE_PAGE)
    return _gate(request, token, _gate_language(request), sent=request.query.get("sent") == "1")


async def opt_out_link(request: web.Request) -> web.StreamResponse:
    """The opt-out link of a reminder: the same door (opting out needs the second factor too)."""
    token, case_id = _case_of(request)
    if case_id is None:
        return _invalid(request)
    return redirect(f"/portal/c/{quote(token)}#opt-out")


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _form_language(request: web.Request, form: dict[str, str]) -> tuple[Language, bool]:
    """The gate's language from the form, and whether the visitor chose it explicitly."""
    default = request.app[keys.CONFIG].settings.hub.default_language
    fallback = browser_language(request, default)
    asked = form.get("lang", "")
    chosen = form.get("chosen") == "1"
    language = asked if asked in ("en", "de", "da") else fallback
    return language, chosen  # type: ignore[return-value]


async def send_code(request: web.Request) -> web.StreamResponse:
    token, case_id = _case_of(request)
    if case_id is None:
        return _invalid(request)
    form = await _form(request)
    language, chosen = _form_language(request, form)
    config = request.app[keys.CONFIG]
    await portal_access.request_code(
        request.app[keys.DATABASE],
        config.settings,
        config.csrf_secret,
        policy_of(request),
        case_id,
        request.remote,
    )
    chosen_part = f"&lang={language}" if chosen else ""
    return redirect(f"/portal/c/{quote(token)}?sent=1{chosen_part}")


async def _opened(request: web.Request, session_token: str) -> web.StreamResponse:
    response = redirect(CASE_PAGE)
    set_portal_cookie(request, response, session_token)
    return response


async def _refused(
    request: web.Request, token: str, language: Language, chosen: bool, exc: Exception, sent: bool
) -> web.Response:
    locked = isinstance(exc, PortalLockedError)
    return _gate(
        request,
        token,
        language,
        sent=sent,
        chosen=chosen,
        error=text("gate.locked" if locked else "gate.denied", language),
        status=429 if locked else 400,
    )


async def verify_code(request: web.Request) -> web.StreamResponse:
    token, case_id = _case_of(request)
    if case_id is None:
        return _invalid(request)
    form = await _form(request)
    language, chosen = _form_language(request, form)
    config = request.app[keys.CONFIG]
    try:
        session_token = await portal_access.verify_code(
            request.app[keys.DATABASE],
            config.csrf_secret,
            policy_of(request),
            case_id,
            form.get("code", ""),
            language if chosen else None,
            request.remote,
        )
    except (PortalDeniedError, PortalLockedError) as exc:
        return await _refused(request, token, language, chosen, exc, sent=True)
    return await _opened(request, session_token)


async def verify_postal(request: web.Request) -> web.StreamResponse:
    token, case_id = _case_of(request)
    if case_id is None:
        return _invalid(request)
    form = await _form(request)
    language, chosen = _form_language(request, form)
    try:
        session_token = await portal_access.verify_postal(
            request.app[keys.DATABASE],
            policy_of(request),
            case_id,
            form.get("reference", ""),
            form.get("postal_code", ""),
            language if chosen else None,
            request.remote,
        )
    except (PortalDeniedError, PortalLockedError) as exc:
        return await _refused(request, token, language, chosen, exc, sent=False)
    return await _opened(request, session_token)


async def logout(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    await portal_access.end_session(request.app[keys.DATABASE], info.token)
    response = render_portal(request, "portal/logged_out.html", info.language, {"logged_in": False})
    clear_portal_cookie(response)
    return response

"""Pages of logging in and out: password, TOTP code, TOTP enrolment, password change/reset.

Thin handlers: read the form, call one service, render or redirect.
"""

from __future__ import annotations

from aiohttp import web

from hub.errors import UserError
from hub.security import totp
from hub.services import users, web_login
from hub.services.web_sessions import SessionInfo, Stage
from hub.web import keys
from hub.web.middleware import clear_session_cookie, set_session_cookie
from hub.web.render import redirect, render


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _session(request: web.Request) -> SessionInfo:
    if keys.SESSION not in request:  # the middleware lets no request without one through
        raise web.HTTPSeeOther(location="/login")
    return request[keys.SESSION]


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(keys.PRINCIPAL) is not None:
        raise web.HTTPSeeOther(location="/")
    message = "You are logged out." if "logged_out" in request.query else None
    return render(request, "login.html", {"message": message})


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    database = request.app[keys.DATABASE]
    policy = request.app[keys.CONFIG].login_policy
    try:
        token, stage = await web_login.login_password(
            database, policy, form.get("username", ""), form.get("password", ""), request.remote
        )
    except web_login.LockedOutError as exc:
        return render(request, "login.html", {"error": str(exc)}, status=429)
    except web_login.LoginFailedError as exc:
        return render(request, "login.html", {"error": str(exc)}, status=401)
    target = "/login/totp" if stage is Stage.PASSWORD else "/login/enrol"
    response = redirect(target)
    set_session_cookie(request, response, token)
    return response


async def totp_form(request: web.Request) -> web.StreamResponse:
    return render(request, "totp.html")


async def totp_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    config = request.app[keys.CONFIG]
    try:
        token = await web_login.login_second_factor(
            request.app[keys.DATABASE],
            config.login_policy,
            _session(request),
            form.get("code", ""),
            request.remote,
        )
    except web_login.LockedOutError as exc:
        return render(request, "totp.html", {"error": str(exc)}, status=429)
    except web_login.LoginFailedError as exc:
        return render(request, "totp.html", {"error": str(exc)}, status=401)
    response = redirect("/")
    set_session_cookie(request, response, token)
    return response


async def _enrol_page(
    request: web.Request, error: str | None = None, status: int = 200
) -> web.Response:
    info = _session(request)
    secret = await web_login.enrolment_secret(request.app[keys.DATABASE], info)
    settings = request.app[keys.CONFIG].settings
    uri = totp.provisioning_uri(secret, info.principal.username, settings.hub.name)
    return render(
        request,
        "enrol.html",
        {"qr": totp.qr_data_uri(uri), "secret": secret, "error": error},
        status=status,
    )


async def enrol_form(request: web.Request) -> web.StreamResponse:
    return await _enrol_page(request)


async def enrol_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    config = request.app[keys.CONFIG]
    try:
        enrolment = await web_login.confirm_enrolment(
            request.app[keys.DATABASE],
            config.login_policy,
            _session(request),
            form.get("code", ""),
            request.remote,
        )
    except web_login.LockedOutError as exc:
        return render(request, "login.html", {"error": str(exc)}, status=429)
    except web_login.LoginFailedError as exc:
        return await _enrol_page(request, str(exc), status=400)
    # the recovery codes are shown once, on this answer, and stored only hashed
    request[keys.CSRF_BINDING] = enrolment.token
    request[keys.PRINCIPAL] = _session(request).principal
    response = render(request, "recovery_codes.html", {"codes": enrolment.recovery_codes})
    set_session_cookie(request, response, enrolment.token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    info = request.get(keys.SESSION)
    if info is not None:
        await web_login.logout(request.app[keys.DATABASE], info, request.remote)
    response = redirect("/login?logged_out=1")
    clear_session_cookie(request, response)
    return response


async def password_form(request: web.Request) -> web.StreamResponse:
    info = request.get(keys.SESSION)
    return render(request, "password.html", {"forced": bool(info and info.must_change_password)})


async def password_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    principal = request[keys.PRINCIPAL]
    if form.get("new_password", "") != form.get("repeat", ""):
        return render(
            request,
            "password.html",
            {"forced": False, "error": "the two new passwords differ"},
            400,
        )
    try:
        await users.change_password(
            request.app[keys.DATABASE],
            principal,
            form.get("current", ""),
            form.get("new_password", ""),
            request.remote,
            request.app[keys.CONFIG].login_policy.throttle,
        )
    except UserError as exc:
        return render(request, "password.html", {"forced": False, "error": str(exc)}, 400)
    response = render(request, "login.html", {"message": "Password changed. Please log in again."})
    clear_session_cookie(request, response)
    return response


async def forgot_form(request: web.Request) -> web.StreamResponse:
    return render(request, "forgot.html")


async def forgot_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    config = request.app[keys.CONFIG]
    await users.request_password_reset(
        request.app[keys.DATABASE], config.settings, form.get("identifier", ""), request.remote
    )
    message = "If the account exists, a link to reset its password is on its way."
    return render(request, "forgot.html", {"message": message})


async def reset_form(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    valid = await users.reset_token_valid(request.app[keys.DATABASE], token)
    return render(request, "reset.html", {"valid": valid, "token": token})


async def reset_submit(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    form = await _form(request)
    if form.get("new_password", "") != form.get("repeat", ""):
        return render(
            request,
            "reset.html",
            {"valid": True, "token": token, "error": "the two passwords differ"},
            400,
        )
    try:
        await users.reset_password(
            request.app[keys.DATABASE], token, form.get("new_password", ""), request.remote
        )
    except UserError as exc:
        return render(
            request, "reset.html", {"valid": True, "token": token, "error": str(exc)}, 400
        )
    return render(request, "login.html", {"message": "Password set. Please log in."})

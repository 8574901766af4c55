"""The portal's pages for a debtor with a portal session: the case page and its actions.

The case comes from the portal session only (no id in any URL), so a debtor cannot reach
another case by editing an address. Each action reads its form, calls one function of
:mod:`hub.services.portal_actions` and redirects to the case page with a confirmation (a form
error shows the page again, with the reason, in the debtor's language).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from hub.domain.installments import Frequency
from hub.domain.mail import LANGUAGES
from hub.domain.portal_text import text
from hub.errors import UserError
from hub.services import portal_access, portal_actions, portal_view
from hub.services.portal_actions import (
    DISPUTE_REASONS,
    MAX_ATTACHMENT_BYTES,
    ContactChange,
    PortalInputError,
    checked_upload,
)
from hub.storage.models import utcnow
from hub.web import keys
from hub.web.portal_auth import PORTAL_SESSION, render_portal
from hub.web.render import redirect

CASE_PAGE = "/portal/case"
MAX_KEY_BYTES = 256 * 1024
_DONE = frozenset(
    {
        "reply",
        "promise",
        "promise_refused",
        "plan_accepted",
        "plan_proposed",
        "dispute",
        "contact",
        "key",
        "opt_out",
    }
)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB"


async def _page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    info = request[PORTAL_SESSION]
    page = await portal_view.portal_page(request.app[keys.DATABASE], info.case_id, request.remote)
    done = request.query.get("done", "")
    context: dict[str, Any] = {
        "page": page,
        "reasons": DISPUTE_REASONS,
        "frequencies": [f.value for f in Frequency],
        "max_file": _size(MAX_ATTACHMENT_BYTES),
        "today": utcnow().date().isoformat(),
        "done": done if done in _DONE else None,
    }
    if done in _DONE:
        context["message"] = text(f"done.{done}", info.language)
    if error is not None:
        context["error"] = error
    return render_portal(request, "portal/case.html", info.language, context, status=status)


async def case_page(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    asked = request.query.get("lang", "")
    if asked in LANGUAGES and asked != info.language:
        await portal_access.set_language(request.app[keys.DATABASE], info.session_id, asked)
        return redirect(CASE_PAGE)
    return await _page(request)


async def _fields(request: web.Request) -> MultiDictProxy[Any]:
    return await request.post()


def _str(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _file(form: MultiDictProxy[Any], name: str) -> web.FileField | None:
    value = form.get(name)
    if isinstance(value, web.FileField) and value.filename:
        return value
    return None


async def _act(request: web.Request, action: Any) -> web.StreamResponse:
    """Run one action; its outcome's confirmation, or the page again with the reason."""
    info = request[PORTAL_SESSION]
    try:
        outcome = await action
    except PortalInputError as exc:
        detail = text(exc.key, info.language)
        message = text("error.form", info.language, detail=detail)
        return await _page(request, error=message, status=400)
    except UserError:
        return await _page(request, error=text("error.state", info.language), status=400)
    return redirect(f"{CASE_PAGE}?done={outcome.done}#message")


async def reply(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    form = await _fields(request)
    return await _act(
        request,
        portal_actions.reply(
            request.app[keys.DATABASE], info.case_id, info.language, _str(form, "message")
        ),
    )


async def promise(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    form = await _fields(request)

    async def run() -> portal_actions.ActionOutcome:
        day = portal_actions.parse_date(_str(form, "date"))
        amount = portal_actions.parse_amount(_str(form, "amount"))
        return await portal_actions.promise(
            request.app[keys.DATABASE], info.case_id, info.language, day, amount
        )

    return await _act(request, run())


def _count(value: str) -> int | None:
    if not value.strip():
        return None
    try:
        count = int(value.strip())
    except ValueError:
        raise PortalInputError("error.count") from None
    if not 1 <= count <= 120:
        raise PortalInputError("error.count")
    return count


async def plan(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    form = await _fields(request)

    async def run() -> portal_actions.ActionOutcome:
        count = _count(_str(form, "count"))
        amount = portal_actions.parse_amount(_str(form, "amount"))
        if count is None and amount is None:
            raise PortalInputError("error.count")
        try:
            frequency = Frequency(_str(form, "frequency"))
        except ValueError:
            raise PortalInputError("error.plan") from None
        start = portal_actions.parse_date(_str(form, "start"))
        return await portal_actions.propose_plan(
            request.app[keys.DATABASE],
            info.case_id,
            info.language,
            count=count,
            amount=amount,
            frequency=frequency,
            start=start,
        )

    return await _act(request, run())


async def dispute(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    form = await _fields(request)

    async def run() -> portal_actions.ActionOutcome:
        upload = None
        field = _file(form, "file")
        if field is not None:
            content = field.file.read(MAX_ATTACHMENT_BYTES + 1)
            upload = checked_upload(field.filename, field.content_type, content)
        return await portal_actions.dispute(
            request.app[keys.DATABASE],
            info.case_id,
            info.language,
            _str(form, "reason"),
            _str(form, "text"),
            upload,
        )

    return await _act(request, run())


async def contact(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    form = await _fields(request)
    change = ContactChange(
        email=_str(form, "email"),
        street=_str(form, "street"),
        postal_code=_str(form, "postal_code"),
        city=_str(form, "city"),
        phone=_str(form, "phone"),
    )
    return await _act(
        request,
        portal_actions.update_contact(
            request.app[keys.DATABASE], info.case_id, info.language, change
        ),
    )


async def key(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    form = await _fields(request)

    async def run() -> portal_actions.ActionOutcome:
        field = _file(form, "key")
        if field is None:
            raise PortalInputError("error.key")
        data = field.file.read(MAX_KEY_BYTES + 1)
        if not data or len(data) > MAX_KEY_BYTES:
            raise PortalInputError("error.key")
        return await portal_actions.upload_key(
            request.app[keys.DATABASE],
            request.app[keys.CONFIG].settings,
            info.case_id,
            info.language,
            data,
        )

    return await _act(request, run())


async def opt_out(request: web.Request) -> web.StreamResponse:
    info = request[PORTAL_SESSION]
    return await _act(
        request, portal_actions.opt_out(request.app[keys.DATABASE], info.case_id, info.language)
    )

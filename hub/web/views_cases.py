"""Case pages: dashboard, case list and search, case thread, notes, comments, state events,
attachment downloads and the CSV upload of new cases. Thin: read, call one service, render."""

from __future__ import annotations

from aiohttp import web

from hub.domain.case_state import CaseEvent
from hub.errors import NotFoundError, UserError
from hub.security.roles import Permission
from hub.services import case_actions, case_view
from hub.web import keys
from hub.web.downloads import download_headers
from hub.web.render import render


def case_id_of(request: web.Request) -> int:
    try:
        return int(request.match_info["case_id"])
    except ValueError:
        raise NotFoundError("no such case") from None


def _page(request: web.Request) -> int:
    try:
        return max(int(request.query.get("page", "1")), 1)
    except ValueError:
        return 1


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def dashboard(request: web.Request) -> web.StreamResponse:
    principal = request[keys.PRINCIPAL]
    counts: dict[str, int] = {}
    if principal.allows(Permission.CASES_READ):
        counts = await case_view.count_by_state(request.app[keys.DATABASE], principal)
    return render(request, "dashboard.html", {"counts": counts, "P": Permission})


async def case_list(request: web.Request) -> web.StreamResponse:
    query = request.query.get("q", "")
    page = _page(request)
    cases = await case_view.list_cases(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], query, page, request.remote
    )
    return render(request, "cases.html", {"cases": cases, "q": query, "page": page})


async def case_thread(request: web.Request) -> web.StreamResponse:
    principal = request[keys.PRINCIPAL]
    thread = await case_view.case_thread(
        request.app[keys.DATABASE], principal, case_id_of(request), request.remote
    )
    return render(request, "case.html", {"thread": thread, "P": Permission, "E": CaseEvent})


def _back(case_id: int) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location=f"/cases/{case_id}")


async def add_note(request: web.Request) -> web.StreamResponse:
    case_id = case_id_of(request)
    form = await _form(request)
    await case_actions.add_note(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id,
        form.get("text", ""),
        request.remote,
    )
    raise _back(case_id)


async def add_comment(request: web.Request) -> web.StreamResponse:
    case_id = case_id_of(request)
    form = await _form(request)
    await case_actions.add_comment(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id,
        form.get("text", ""),
        request.remote,
    )
    raise _back(case_id)


async def _event(request: web.Request, allowed: frozenset[CaseEvent]) -> web.StreamResponse:
    case_id = case_id_of(request)
    form = await _form(request)
    try:
        event = CaseEvent(form.get("event", ""))
    except ValueError:
        raise UserError("unknown event") from None
    if event not in allowed:
        raise UserError("this event cannot be given here")
    await case_actions.apply_event(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id,
        event,
        form.get("reason", ""),
        request.remote,
    )
    raise _back(case_id)


async def pause_resume(request: web.Request) -> web.StreamResponse:
    return await _event(request, frozenset({CaseEvent.PUT_ON_HOLD, CaseEvent.RESUMED}))


async def close_withdraw(request: web.Request) -> web.StreamResponse:
    return await _event(request, frozenset({CaseEvent.CLOSED, CaseEvent.WITHDRAWN}))


async def download(request: web.Request) -> web.StreamResponse:
    try:
        attachment_id = int(request.match_info["attachment_id"])
    except ValueError:
        raise NotFoundError("no such attachment") from None
    found = await case_view.attachment_download(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id_of(request),
        attachment_id,
        request.remote,
    )
    # never rendered inline, whatever it claims to be; the stored name is hostile input
    return web.Response(body=found.content, headers=download_headers(found.filename))


async def import_form(request: web.Request) -> web.StreamResponse:
    return render(request, "import.html", {"report": None})


async def import_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise UserError("choose a CSV file to upload")
    creditor = form.get("creditor")
    settings = request.app[keys.CONFIG].settings
    report = await case_actions.upload_cases(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        upload.file.read(),
        upload.filename or "upload.csv",
        creditor_code=creditor.strip().upper() if isinstance(creditor, str) and creditor else None,
        language=settings.import_.default_language,
        timezone=settings.hub.default_timezone,
        batch_size=settings.import_.batch_size,
        remote_addr=request.remote,
    )
    return render(request, "import.html", {"report": report}, 200 if not report.aborted else 400)

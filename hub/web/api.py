"""The JSON API under ``/api/``, for creditor systems (bearer tokens) and the browser
(session cookie plus ``X-CSRF-Token``). Thin: validate, call one service, answer JSON."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.domain.case_state import CaseEvent
from hub.errors import UserError
from hub.services import case_actions, case_view
from hub.web import keys
from hub.web.openapi import openapi_document
from hub.web.views_cases import case_id_of


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise UserError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise UserError("the body must be a JSON object")
    return body


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document(request.app[keys.ROUTES].values()))


async def list_cases(request: web.Request) -> web.StreamResponse:
    try:
        page = max(int(request.query.get("page", "1")), 1)
    except ValueError:
        raise UserError("page must be a number") from None
    cases = await case_view.list_cases(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        request.query.get("q", ""),
        page,
        request.remote,
    )
    return web.json_response({"cases": [c.as_json() for c in cases], "page": page})


async def get_case(request: web.Request) -> web.StreamResponse:
    thread = await case_view.case_thread(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], case_id_of(request), request.remote
    )
    return web.json_response(
        {
            "case": thread.case.as_json(),
            "thread": [e.as_json() for e in thread.entries],
            "events": sorted(e.value for e in thread.events),
        }
    )


async def add_comment(request: web.Request) -> web.StreamResponse:
    body = await _json_object(request)
    text = body.get("text")
    if not isinstance(text, str):
        raise UserError("text: a string is required")
    entry_id = await case_actions.add_comment(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id_of(request),
        text,
        request.remote,
    )
    return web.json_response({"thread_entry_id": entry_id}, status=201)


async def close_case(request: web.Request) -> web.StreamResponse:
    body = await _json_object(request)
    try:
        event = CaseEvent(str(body.get("event", "")))
    except ValueError:
        raise UserError("event: one of closed, withdrawn") from None
    if event not in (CaseEvent.CLOSED, CaseEvent.WITHDRAWN):
        raise UserError("event: one of closed, withdrawn")
    reason = body.get("reason", "")
    entry_id = await case_actions.apply_event(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id_of(request),
        event,
        reason if isinstance(reason, str) else "",
        request.remote,
    )
    return web.json_response({"thread_entry_id": entry_id}, status=201)


async def import_cases(request: web.Request) -> web.StreamResponse:
    data = await request.read()
    settings = request.app[keys.CONFIG].settings
    creditor = request.query.get("creditor")
    report = await case_actions.upload_cases(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        data,
        request.query.get("filename", "api.csv"),
        creditor_code=creditor.upper() if creditor else None,
        language=settings.import_.default_language,
        timezone=settings.hub.default_timezone,
        batch_size=settings.import_.batch_size,
        remote_addr=request.remote,
    )
    return web.json_response(
        {
            "total": report.total,
            "imported": report.imported,
            "already_present": report.already_present,
            "conflicts": [str(c) for c in report.conflicts],
            "errors": [str(e) for e in report.errors],
        },
        status=400 if report.aborted else 200,
    )

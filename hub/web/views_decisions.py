"""The case page of a collector (decisions, reply, plans, drafts, revert, new address) and the
creditor's report download. Thin: read the form, call one service, go back to the case."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal, InvalidOperation

from aiohttp import web

from hub.domain.automation import FREQUENCIES, PlanTerms
from hub.domain.case_state import CaseEvent
from hub.errors import ConfigError, NotFoundError, UserError
from hub.security.roles import Permission
from hub.services import case_decisions, case_view, creditor_report
from hub.services.reminder_mail import ReminderMailer
from hub.web import keys
from hub.web.flash import flash_message
from hub.web.mailer import MAILER
from hub.web.render import render
from hub.web.views_cases import case_id_of

log = logging.getLogger(__name__)


def _int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise NotFoundError("not found") from None


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


@asynccontextmanager
async def _mailer(request: web.Request) -> AsyncIterator[ReminderMailer]:
    """The application's mailer; a hub without a signing identity cannot send (503)."""
    try:
        async with request.app[MAILER].use() as mailer:
            yield mailer
    except ConfigError:
        log.exception("the mailer cannot be opened")
        raise web.HTTPServiceUnavailable(text="The hub cannot send mail now.") from None


def _back(case_id: int) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location=f"/cases/{case_id}")


async def case_page(request: web.Request) -> web.StreamResponse:
    """The thread, and for a collector what waits for a decision on it."""
    principal = request[keys.PRINCIPAL]
    database = request.app[keys.DATABASE]
    thread = await case_view.case_thread(database, principal, case_id_of(request), request.remote)
    bench = None
    if principal.allows(Permission.CASE_DECIDE):
        bench = await case_decisions.workbench(database, thread)
    return render(
        request,
        "case.html",
        {
            "thread": thread,
            "P": Permission,
            "E": CaseEvent,
            "bench": bench,
            "frequencies": FREQUENCIES,
            "message": flash_message(request),
        },
    )


def _terms(form: dict[str, str]) -> PlanTerms:
    try:
        count = int(form["count"]) if form.get("count") else None
        amount = Decimal(form["amount"]) if form.get("amount") else None
        start = date.fromisoformat(form["start_date"]) if form.get("start_date") else None
    except (ValueError, InvalidOperation):
        raise UserError("the plan's count, amount or start date is not valid") from None
    frequency = form.get("frequency") or None
    if frequency is not None and frequency not in FREQUENCIES:
        raise UserError("unknown frequency")
    if amount is not None and not (amount.is_finite() and amount > 0):
        raise UserError("the amount must be positive")
    return PlanTerms(
        count=count, amount_per_installment=amount, frequency=frequency, start_date=start
    )


async def plan(request: web.Request) -> web.StreamResponse:
    case_id = case_id_of(request)
    form = await _form(request)
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise UserError("approve or reject the plan")
    await case_decisions.decide_plan(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id,
        _int(request, "plan_id"),
        approve=decision == "approve",
        changes=_terms(form) if decision == "approve" else None,
        reason=form.get("reason", ""),
        remote_addr=request.remote,
    )
    raise _back(case_id)


async def revert(request: web.Request) -> web.StreamResponse:
    case_id = case_id_of(request)
    await case_decisions.revert(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id,
        _int(request, "entry_id"),
        request.remote,
    )
    raise _back(case_id)


async def address(request: web.Request) -> web.StreamResponse:
    case_id = case_id_of(request)
    await case_decisions.add_offered_address(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        case_id,
        _int(request, "entry_id"),
        request.remote,
    )
    raise _back(case_id)


async def reply(request: web.Request) -> web.StreamResponse:
    case_id = case_id_of(request)
    form = await _form(request)
    if not form.get("text"):
        raise UserError("write the reply first")
    async with _mailer(request) as mailer:
        outcome = await case_decisions.reply(
            request.app[keys.DATABASE],
            request.app[keys.SETTINGS],
            mailer,
            request[keys.PRINCIPAL],
            case_id,
            form.get("text", ""),
            request.remote,
        )
    if outcome.status not in ("queued", "duplicate"):
        raise UserError(f"the reply was not sent: {outcome.reason or outcome.status}")
    raise _back(case_id)


async def draft(request: web.Request) -> web.StreamResponse:
    case_id = case_id_of(request)
    form = await _form(request)
    decision = form.get("decision")
    if decision not in ("approve", "discard"):
        raise UserError("approve or discard the draft")
    database, settings = request.app[keys.DATABASE], request.app[keys.SETTINGS]
    principal, entry_id = request[keys.PRINCIPAL], _int(request, "entry_id")
    if decision == "discard":
        await case_decisions.decide_draft(
            database,
            settings,
            None,
            principal,
            case_id,
            entry_id,
            approve=False,
            remote_addr=request.remote,
        )
    else:
        async with _mailer(request) as mailer:
            await case_decisions.decide_draft(
                database,
                settings,
                mailer,
                principal,
                case_id,
                entry_id,
                approve=True,
                remote_addr=request.remote,
            )
    raise _back(case_id)


async def report(request: web.Request) -> web.StreamResponse:
    principal = request[keys.PRINCIPAL]
    database = request.app[keys.DATABASE]
    creditor_id = await creditor_report.report_creditor(
        database, principal, request.query.get("creditor", "")
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="cases-report.csv"',
        }
    )
    await response.prepare(request)
    async for chunk in creditor_report.report_rows(
        database, principal, creditor_id, request.remote
    ):
        await response.write(chunk)
    await response.write_eof()
    return response

"""The triage queue page and its one-click decisions. Thin: read the form, call one service."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from hub.errors import NotFoundError, UserError
from hub.services import triage, triage_actions
from hub.web import keys
from hub.web.flash import flash_message, flash_query
from hub.web.render import render

#: one key per label (``accesskey``): the browser's modifier plus this key presses the button
ACCESS_KEYS = {
    "dispute": "d",
    "payment_promise": "p",
    "installment_request": "i",
    "other:question": "q",
    "other:invoice_copy": "v",
    "other:contact_change": "c",
    "other:hardship": "h",
    "other:cease_contact": "s",
    "other:thanks": "t",
    "other:gdpr_request": "g",
    "other:out_of_office": "o",
    "other:unrelated": "u",
}
AGES = (0, 1, 3, 7, 30)


def _int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise NotFoundError("not found") from None


def _filters(request: web.Request) -> triage.Filters:
    query = request.query
    try:
        age = max(int(query.get("age", "0") or 0), 0)
    except ValueError:
        age = 0
    return triage.Filters(
        intent=query.get("intent", "").strip(),
        language=query.get("language", "").strip(),
        creditor=query.get("creditor", "").strip().upper(),
        min_age_days=age,
    )


def _page(request: web.Request) -> int:
    try:
        return max(int(request.query.get("page", "1")), 1)
    except ValueError:
        return 1


async def queue(request: web.Request) -> web.StreamResponse:
    filters = _filters(request)
    page = _page(request)
    found = await triage.triage_page(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], filters, page, request.remote
    )
    query = {
        "intent": filters.intent,
        "language": filters.language,
        "creditor": filters.creditor,
        "age": filters.min_age_days,
    }
    return render(
        request,
        "triage.html",
        {
            "queue": found,
            "filters": filters,
            "labels": [triage.label_name(i, s) for i, s in triage.LABELS],
            "access_keys": ACCESS_KEYS,
            "intents": sorted({i for i, _ in triage.LABELS}),
            "ages": AGES,
            "query": urlencode(query),
            "message": flash_message(request),
        },
    )


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


#: the queue's own filters: all that ``?back=`` may carry back to the queue
_BACK_KEYS = frozenset({"intent", "language", "creditor", "age", "page"})


def back_query(raw: str) -> str:
    """The queue's filters from ``?back=``, re-encoded: nothing else, no raw characters.

    ``back`` is whatever the request's URL said, so it is never put into ``Location`` as it
    is (a CR/LF, a ``#`` or another path would be the client's choice of where we send).
    """
    kept = [(k, v[:100]) for k, v in parse_qsl(raw[:1000]) if k in _BACK_KEYS]
    return urlencode(kept)


def _back(request: web.Request, done: str) -> web.HTTPSeeOther:
    kept = back_query(request.query.get("back", ""))
    query = f"{kept}&" if kept else ""
    return web.HTTPSeeOther(location=f"/triage?{query}{flash_query(request, done)}")


async def label(request: web.Request) -> web.StreamResponse:
    task_id = _int(request, "task_id")
    form = await _form(request)
    outcome = await triage_actions.label_task(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        task_id,
        form.get("label", ""),
        request.remote,
    )
    verb = "corrected" if outcome.corrected else "confirmed"
    rules = ", ".join(d.rule for d in outcome.decisions)
    raise _back(request, f"Task {task_id}: intent {verb} ({rules}).")


async def done(request: web.Request) -> web.StreamResponse:
    task_id = _int(request, "task_id")
    await triage_actions.close_task(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], task_id, request.remote
    )
    raise _back(request, f"Task {task_id} done.")


async def attach(request: web.Request) -> web.StreamResponse:
    inbound_id = _int(request, "inbound_id")
    form = await _form(request)
    case_id = await triage_actions.attach_message(
        request.app[keys.DATABASE],
        request[keys.PRINCIPAL],
        inbound_id,
        form.get("reference", ""),
        form.get("creditor", ""),
        request.remote,
    )
    raise web.HTTPSeeOther(location=f"/cases/{case_id}")


async def discard(request: web.Request) -> web.StreamResponse:
    inbound_id = _int(request, "inbound_id")
    form = await _form(request)
    if form.get("confirm") != "yes":
        raise UserError("tick the box to discard the message")
    await triage_actions.discard_message(
        request.app[keys.DATABASE], request[keys.PRINCIPAL], inbound_id, request.remote
    )
    raise _back(request, f"Message {inbound_id} discarded.")

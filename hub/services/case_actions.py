"""What web users do to a case: a collector's note, a creditor's comment, a state event,
and the upload of new cases.

Each action is one transaction: the case row is locked, the thread entry takes the next
``seq``, the state moves only through :func:`hub.domain.case_state.transition`, and the
audit entry is written beside it. The object-level rule of :mod:`hub.services.case_view`
holds here too: a case the caller may not see is "not found".
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, update

from hub.domain.case_state import CaseEvent, CaseState, transition
from hub.errors import NotFoundError, UserError
from hub.security import audit
from hub.security.roles import Permission, Principal
from hub.services.case_import import ImportReport, import_cases
from hub.services.case_rows import RowDefaults
from hub.services.csv_rows import parse_case_file
from hub.services.thread import lock_case, next_seq
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, ThreadEntry, utcnow

NOTE_KIND = "note"
COMMENT_KIND = "creditor_comment"
STATE_KIND = "state_change"
MAX_TEXT = 20_000

#: which state events a web user may cause, and the permission each needs
EVENT_PERMISSIONS: dict[CaseEvent, Permission] = {
    CaseEvent.PUT_ON_HOLD: Permission.CASE_PAUSE,
    CaseEvent.RESUMED: Permission.CASE_PAUSE,
    CaseEvent.CLOSED: Permission.CASE_CLOSE,
    CaseEvent.WITHDRAWN: Permission.CASE_CLOSE,
}


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise UserError("the text is empty")
    if len(text) > MAX_TEXT:
        raise UserError(f"the text is longer than {MAX_TEXT} characters")
    return text


async def _add_entry(
    database: Database,
    principal: Principal,
    case_id: int,
    *,
    kind: str,
    body: str | None,
    internal: bool,
    meta: dict[str, Any],
    event: CaseEvent | None,
    remote_addr: str | None,
) -> int:
    async with database.transaction() as session:
        # lock before reading: on SQLite a read first would pin a snapshot a writer can outdate
        await lock_case(session, case_id)
        stmt = select(Case).where(Case.id == case_id)
        if principal.creditor_scope is not None:
            stmt = stmt.where(Case.creditor_id == principal.creditor_scope)
        case = (await session.execute(stmt)).scalar_one_or_none()
        if case is None:
            raise NotFoundError("no such case")
        state = CaseState(case.state)
        if event is not None:
            new_state = transition(state, event)
            meta = {**meta, "event": event.value, "from": state.value, "to": new_state.value}
            values: dict[str, Any] = {"state": new_state.value}
            if new_state in (CaseState.CLOSED, CaseState.WITHDRAWN):
                values["closed_at"] = utcnow()
            await session.execute(update(Case).where(Case.id == case.id).values(**values))
        entry = ThreadEntry(
            case_id=case.id,
            seq=await next_seq(session, case.id),
            kind=kind,
            actor=principal.actor,
            occurred_at=utcnow(),
            body=body,
            meta=meta,
            internal=internal,
        )
        session.add(entry)
        await session.flush()
        await audit.record(
            session,
            principal.actor,
            f"case.{kind}",
            "case",
            case.id,
            remote_addr,
            {"thread_entry_id": entry.id, **({"event": event.value} if event else {})},
        )
        return entry.id


async def add_note(
    database: Database, principal: Principal, case_id: int, text: str, remote_addr: str | None
) -> int:
    """A collector's internal note: never shown to the creditor."""
    return await _add_entry(
        database,
        principal,
        case_id,
        kind=NOTE_KIND,
        body=_clean_text(text),
        internal=True,
        meta={},
        event=None,
        remote_addr=remote_addr,
    )


async def add_comment(
    database: Database, principal: Principal, case_id: int, text: str, remote_addr: str | None
) -> int:
    """A creditor's comment to the collector, visible to both."""
    return await _add_entry(
        database,
        principal,
        case_id,
        kind=COMMENT_KIND,
        body=_clean_text(text),
        internal=False,
        meta={},
        event=None,
        remote_addr=remote_addr,
    )


async def apply_event(
    database: Database,
    principal: Principal,
    case_id: int,
    event: CaseEvent,
    reason: str,
    remote_addr: str | None,
) -> int:
    """Pause or resume dunning (collector), close or withdraw (creditor)."""
    needed = EVENT_PERMISSIONS.get(event)
    if needed is None or not principal.allows(needed):
        raise UserError(f"the event {event.value} cannot be given here")
    body = reason.strip()[:MAX_TEXT] or None
    return await _add_entry(
        database,
        principal,
        case_id,
        kind=STATE_KIND,
        body=body,
        internal=False,
        meta={},
        event=event,
        remote_addr=remote_addr,
    )


async def upload_cases(
    database: Database,
    principal: Principal,
    data: bytes,
    filename: str,
    *,
    creditor_code: str | None,
    language: str,
    timezone: str,
    batch_size: int,
    remote_addr: str | None,
) -> ImportReport:
    """Import a CSV of new cases; a creditor user imports only for its own creditor."""
    if principal.creditor_scope is not None:
        async with database.sessions() as session:
            creditor_code = await session.scalar(
                select(Creditor.code).where(Creditor.id == principal.creditor_scope)
            )
    defaults = RowDefaults(language=language, timezone=timezone, creditor=creditor_code or None)
    parsed = await asyncio.to_thread(parse_case_file, data, defaults)
    source = "web:" + "".join(ch for ch in filename if ch.isalnum() or ch in "._-")[:100]
    report = await import_cases(database, parsed, source=source, batch_size=batch_size)
    async with database.transaction() as session:
        await audit.record(
            session,
            principal.actor,
            "cases.import",
            "import",
            None,
            remote_addr,
            {"rows": report.total, "imported": report.imported, "invalid": report.invalid},
        )
    return report

"""Records of processing (Art. 30 GDPR, per case): what touched a person's data, when, and why.

Nothing new is logged for this: the records are read from what the pipeline already keeps.
Each thread entry (import, reminder, reply, bounce, decision, payment, answer, …) with its kind,
actor and facts; each classification of a reply; each routing decision stored with an inbound
message; each key learnt for the debtor; and the audit log's entries about the case or its
debtor (reads, exports, erasure). Every record names its legal basis. The records hold no
personal data (no bodies, subjects or addresses), so they survive an erasure unchanged and an
export after erasure still explains what was done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import NotFoundError, UserError
from hub.storage.models import (
    AuditEntry,
    Case,
    Classification,
    Creditor,
    DebtorKey,
    InboundMessage,
    ThreadEntry,
)

CLAIM = "legitimate interest in collecting the claim (Art. 6(1)(f) GDPR)"
IMPORT = (
    "contract (Art. 6(1)(b)) / legitimate interest (Art. 6(1)(f)): claim collection "
    "on the creditor's instruction"
)
PAYMENT = "contract (Art. 6(1)(b)); legal obligation to keep accounts (Art. 6(1)(c))"
KEYS = "security of processing (Art. 32) / legitimate interest (Art. 6(1)(f)): encrypted mail"
CLASSIFY = (
    "legitimate interest (Art. 6(1)(f)): understanding the debtor's reply to act on it; "
    "a suggestion a collector can correct"
)
ROUTING = "legitimate interest (Art. 6(1)(f)): filing the debtor's mail with their case"
ACCESS = "legitimate interest (Art. 6(1)(f)): working on the case; accountability (Art. 5(2))"
EXPORT = "right of access and to data portability (Art. 15, 20); legal obligation (Art. 6(1)(c))"
ERASURE = "right to erasure (Art. 17); legal obligation (Art. 6(1)(c))"
RETENTION = "storage limitation (Art. 5(1)(e)): retention period over"

#: thread entry kind -> (step, basis)
KIND_STEPS: dict[str, tuple[str, str]] = {
    "imported": ("import", IMPORT),
    "reminder": ("reminder sent", CLAIM),
    "reminder_withheld": ("reminder withheld", CLAIM),
    "inbound": ("reply received", CLAIM),
    "bounce": ("delivery failure recorded", CLAIM),
    "auto_reply": ("automatic reply recorded", CLAIM),
    "decision": ("automated decision", CLAIM),
    "state_change": ("case state changed", CLAIM),
    "payment": ("payment recorded", PAYMENT),
    "plan_defaulted": ("installment plan defaulted", CLAIM),
    "promise_kept": ("payment promise kept", CLAIM),
    "promise_broken": ("payment promise broken", CLAIM),
    "answer": ("answer sent", CLAIM),
    "answer_draft": ("answer drafted for approval", CLAIM),
    "answer_withheld": ("answer withheld", CLAIM),
    "note": ("collector's note", CLAIM),
    "creditor_comment": ("creditor's comment", CLAIM),
    "erasure": ("erasure", ERASURE),
}
#: audit action -> (step, basis)
AUDIT_STEPS: dict[str, tuple[str, str]] = {
    "case.read": ("case viewed", ACCESS),
    "attachment.download": ("attachment downloaded", ACCESS),
    "gdpr.export": ("export", EXPORT),
    "gdpr.erase": ("erasure", ERASURE),
    "gdpr.retention": ("erasure", RETENTION),
}
#: facts from an entry's meta that say what happened without naming anyone
_FACT_KEYS = (
    "level",
    "kind",
    "protection",
    "key_kind",
    "intent",
    "reason",
    "rule",
    "event",
    "final",
    "reply_code",
    "amount",
    "currency",
    "approval",
    "scope",
)


@dataclass(frozen=True)
class ProcessingRecord:
    """One step that touched the person's data."""

    at: datetime
    step: str
    what: str
    basis: str
    actor: str
    automated: bool
    #: where the record comes from: thread:<seq>, classification:<id>, audit:<id>, key:<id>, …
    source: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


def _automated(actor: str) -> bool:
    return not actor.startswith(("user:", "cli:", "debtor"))


def _facts(meta: dict[str, Any]) -> str:
    parts = []
    for key in _FACT_KEYS:
        value = meta.get(key)
        if isinstance(value, str | int | float | bool) and value != "":
            parts.append(f"{key}={value}")
    state = meta.get("state")
    if isinstance(state, dict) and "from" in state and "to" in state:
        parts.append(f"state {state['from']} -> {state['to']}")
    return ", ".join(parts)


def _entry_record(entry: ThreadEntry) -> ProcessingRecord:
    step, basis = KIND_STEPS.get(entry.kind, (entry.kind.replace("_", " "), CLAIM))
    meta = dict(entry.meta or {})
    if entry.kind == "erasure" and meta.get("scope") == "retention":
        basis = RETENTION
    facts = _facts(meta)
    return ProcessingRecord(
        at=entry.occurred_at,
        step=step,
        what=f"{step} ({facts})" if facts else step,
        basis=basis,
        actor=entry.actor,
        automated=_automated(entry.actor),
        source=f"thread:{entry.seq}",
    )


def _route_record(row: InboundMessage, seq: int) -> ProcessingRecord:
    route = row.route or {}
    rule = route.get("rule") or "none"
    where = "triage" if route.get("to_triage") else "the case"
    verified = "verified" if route.get("sender_verified") else "not verified"
    return ProcessingRecord(
        at=row.processed_at or row.received_at,
        step="routing decision",
        what=f"routing decision: to {where} by rule {rule}, sender {verified}",
        basis=ROUTING,
        actor="system:routing",
        automated=True,
        source=f"inbound:{row.id} (thread:{seq})",
    )


async def find_case(session: AsyncSession, reference: str, creditor_code: str | None) -> Case:
    """The case ``reference`` (``creditor_code`` when several creditors use it)."""
    stmt = select(Case).join(Creditor, Creditor.id == Case.creditor_id)
    stmt = stmt.where(Case.reference == reference)
    if creditor_code is not None:
        stmt = stmt.where(Creditor.code == creditor_code.upper())
    found = (await session.scalars(stmt)).all()
    if not found:
        raise NotFoundError(f"no case {reference!r}")
    if len(found) > 1:
        raise UserError(f"several creditors have a case {reference!r}: give --creditor")
    return found[0]


async def records_for_case(session: AsyncSession, case: Case) -> list[ProcessingRecord]:
    """Every step recorded for ``case``, oldest first."""
    ranked: list[tuple[datetime, int, int, ProcessingRecord]] = []
    entries = (
        await session.scalars(
            select(ThreadEntry).where(ThreadEntry.case_id == case.id).order_by(ThreadEntry.seq)
        )
    ).all()
    seq_of = {e.id: e.seq for e in entries}
    for entry in entries:
        ranked.append((entry.occurred_at, entry.seq, 0, _entry_record(entry)))
    if seq_of:
        inbound = (
            await session.scalars(
                select(InboundMessage).where(
                    InboundMessage.thread_entry_id.in_(list(seq_of)),
                    InboundMessage.route.is_not(None),
                )
            )
        ).all()
        for row in inbound:
            seq = seq_of[row.thread_entry_id or 0]
            ranked.append((row.processed_at or row.received_at, seq, 1, _route_record(row, seq)))
        classified = (
            await session.scalars(
                select(Classification)
                .where(Classification.thread_entry_id.in_(list(seq_of)))
                .order_by(Classification.id)
            )
        ).all()
        for c in classified:
            seq = seq_of[c.thread_entry_id]
            what = f"reply classified: intent={c.intent}"
            if c.subtype:
                what += f", subtype={c.subtype}"
            what += f", confidence={c.confidence:.2f}, model {c.model_version}"
            if c.corrected_intent:
                what += f"; corrected to {c.corrected_intent} by user:{c.corrected_by}"
            record = ProcessingRecord(
                c.created_at, "reply classified", what, CLASSIFY, "system:classifier", True,
                f"classification:{c.id} (thread:{seq})",
            )  # fmt: skip
            ranked.append((c.created_at, seq, 2, record))
    keys = (
        await session.scalars(select(DebtorKey).where(DebtorKey.debtor_id == case.debtor_id))
    ).all()
    for key in keys:
        record = ProcessingRecord(
            key.added_at, "key learnt", f"{key.kind} key learnt from {key.source}", KEYS,
            f"system:{key.source}", key.source not in ("collector", "portal"), f"key:{key.id}",
        )  # fmt: skip
        ranked.append((key.added_at, 0, 3, record))
    audits = (
        await session.scalars(
            select(AuditEntry)
            .where(
                or_(
                    and_(AuditEntry.object_type == "case", AuditEntry.object_id == str(case.id)),
                    and_(
                        AuditEntry.object_type == "debtor",
                        AuditEntry.object_id == str(case.debtor_id),
                    ),
                )
            )
            .order_by(AuditEntry.id)
        )
    ).all()
    for audit in audits:
        step, basis = AUDIT_STEPS.get(audit.action, (audit.action, ACCESS))
        record = ProcessingRecord(
            audit.at, step, f"{step} ({audit.action})", basis, audit.actor,
            _automated(audit.actor), f"audit:{audit.id}",
        )  # fmt: skip
        ranked.append((audit.at, 1 << 30, audit.id, record))
    ranked.sort(key=lambda item: (item[0], item[1], item[2]))
    return [record for *_, record in ranked]

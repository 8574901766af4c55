"""Routing rules that read what the sender put in the message: threading headers, case
references in the words, and the sender's own address.

These are weaker than the signed addresses of :mod:`hub.routing.rules_addresses`: a Message-ID
of ours proves only that the sender has seen our mail, a reference proves nothing at all (it
is printed on paper invoices), and an address can be forged. So a reference decides only for
a sender whose address the case's debtor is known by; a reference from anyone else is kept as
a candidate for a collector, never attached (see :class:`ReferenceInTextRule`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select

from hub.domain.case_state import TERMINAL_STATES
from hub.domain.routing import REPORT_KINDS, Outcome, RoutingInput, RuleOutcome
from hub.routing.context import RuleContext, chunks, message_ids
from hub.storage.models import Case, Creditor

#: A run of reference characters; its ends are trimmed to letters and digits.
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*", re.ASCII)
_SPLIT = re.compile(r"[./]+")
_DIGIT = re.compile(r"[0-9]")
MIN_REFERENCE_CHARS = 3
MAX_REFERENCE_CHARS = 64
#: distinct candidates per message: a text full of numbers cannot make the query huge
MAX_CANDIDATES = 600
#: text looked at per field; references are in the subject and the first lines
MAX_TEXT_CHARS = 200_000


def reference_candidates(texts: Iterable[str]) -> list[str]:
    """Words that may be a case reference or invoice number, in order of appearance.

    A candidate is a whole word (letters, digits and ``. _ / -`` inside, letters or digits at
    both ends) of 3 to 64 characters with at least one digit; ``NL-2025-004711.Thanks``
    yields ``NL-2025-004711`` as well (its parts split at dots and slashes).
    """
    found: dict[str, str] = {}
    for text in texts:
        for match in _RUN.finditer(text[:MAX_TEXT_CHARS]):
            word = match.group().rstrip("._/-")
            pieces = [word, *(_SPLIT.split(word) if _SPLIT.search(word) else ())]
            for piece in pieces:
                piece = piece.strip("._/-")
                if (
                    MIN_REFERENCE_CHARS <= len(piece) <= MAX_REFERENCE_CHARS
                    and _DIGIT.search(piece)
                    and piece.upper() not in found
                ):
                    found[piece.upper()] = piece
                    if len(found) >= MAX_CANDIDATES:
                        return list(found.values())
    return list(found.values())


class ThreadHeadersRule:
    name = "thread_headers"
    description = "In-Reply-To or References name a message we sent for a case"

    async def apply(self, ctx: RuleContext, msg: RoutingInput) -> RuleOutcome:
        # the direct parent first, then References from the newest back to the thread root
        ordered = message_ids(msg.in_reply_to)
        for value in reversed(msg.references):
            ordered.extend(reversed(message_ids(value)))
        if not ordered:
            return RuleOutcome(self.name, Outcome.NO_MATCH, why="no In-Reply-To or References")
        ours = await ctx.our_messages(ordered)
        cases = [ours[i][0] for i in ordered if i in ours and ours[i][0] is not None]
        if not cases:
            why = (
                "names a message of ours that belongs to no case"
                if ours
                else "names no message of ours"
            )
            return RuleOutcome(self.name, Outcome.NO_MATCH, why=why)
        case_id = cases[0]
        assert case_id is not None
        header = "In-Reply-To" if ordered[0] in ours else "References"
        others = sorted({c for c in cases if c is not None and c != case_id})
        why = f"{header} names our message of the case"
        if others:
            why += f"; older References name {len(others)} other case(s) (the newest wins)"
        return RuleOutcome(self.name, Outcome.MATCHED, case_id, why=why, candidates=tuple(others))


class ReferenceInTextRule:
    name = "reference_in_text"
    description = (
        "a case reference or invoice number in the subject or text, of a case whose debtor "
        "uses the sender's address; a reference from anyone else is only a candidate"
    )

    async def apply(self, ctx: RuleContext, msg: RoutingInput) -> RuleOutcome:
        if msg.kind in REPORT_KINDS:
            return RuleOutcome(
                self.name, Outcome.SKIPPED, why="a report quotes our mail: its words prove nothing"
            )
        candidates = reference_candidates((msg.subject, msg.reply_text, msg.full_text))
        hits = await _cases_by_reference(ctx, candidates)
        if not hits:
            return RuleOutcome(self.name, Outcome.NO_MATCH, why="no case reference in the text")
        senders = await ctx.sender_debtor_ids()
        own = {case_id: hit for case_id, hit in hits.items() if hit[1] in senders}
        if len(own) == 1:
            case_id, (_, _, reference) = next(iter(own.items()))
            return RuleOutcome(
                self.name,
                Outcome.MATCHED,
                case_id,
                why=f"reference {reference} of a case of the debtor who uses this address",
            )
        if own:
            return RuleOutcome(
                self.name,
                Outcome.AMBIGUOUS,
                why=f"references of {len(own)} cases of the sender's debtor(s)",
                candidates=tuple(sorted(own)),
            )
        creditors = {hit[0] for hit in hits.values()}
        if len(creditors) > 1:
            return RuleOutcome(
                self.name,
                Outcome.AMBIGUOUS,
                why=f"the reference(s) match cases of {len(creditors)} creditors, and the "
                "sender is none of those debtors",
                candidates=tuple(sorted(hits)),
            )
        return RuleOutcome(
            self.name,
            Outcome.NO_MATCH,
            why=f"reference(s) of {len(hits)} case(s) whose debtor is not known by this "
            "address: a reference alone can be forged, so it is only a candidate for triage",
            candidates=tuple(sorted(hits)),
        )


class KnownSenderRule:
    name = "known_sender"
    description = "the sender's address belongs to debtor(s) with exactly one open case"

    async def apply(self, ctx: RuleContext, msg: RoutingInput) -> RuleOutcome:
        if msg.kind in REPORT_KINDS:
            return RuleOutcome(
                self.name, Outcome.SKIPPED, why="a report comes from a mail server, not a debtor"
            )
        debtors = await ctx.sender_debtor_ids()
        if not debtors:
            return RuleOutcome(self.name, Outcome.NO_MATCH, why="the sender's address is unknown")
        rows = await ctx.session.execute(
            select(Case.id)
            .where(
                Case.debtor_id.in_(sorted(debtors)),
                Case.state.not_in([s.value for s in TERMINAL_STATES]),
            )
            .order_by(Case.id)
        )
        open_cases = list(rows.scalars())
        if not open_cases:
            return RuleOutcome(
                self.name, Outcome.NO_MATCH, why="the sender's debtor has no open case"
            )
        if len(open_cases) > 1:
            return RuleOutcome(
                self.name,
                Outcome.AMBIGUOUS,
                why=f"the sender's address belongs to {len(open_cases)} open cases",
                candidates=tuple(open_cases),
            )
        return RuleOutcome(
            self.name,
            Outcome.MATCHED,
            open_cases[0],
            why="the sender's address belongs to the debtor of exactly one open case",
        )


async def _cases_by_reference(
    ctx: RuleContext, candidates: list[str]
) -> dict[int, tuple[int, int, str]]:
    """case id -> (creditor id, debtor id, reference) for the cases a candidate names.

    References are compared case-insensitively: each candidate is looked up as written,
    upper-cased and lower-cased. ``creditor_id IN (all creditors)`` lets both databases use
    the unique (creditor_id, reference) index instead of scanning the cases.
    """
    if not candidates:
        return {}
    variants = list(dict.fromkeys(v for c in candidates for v in (c, c.upper(), c.lower())))
    wanted = {c.upper() for c in candidates}
    hits: dict[int, tuple[int, int, str]] = {}
    for part in chunks(variants):
        rows = await ctx.session.execute(
            select(Case.id, Case.creditor_id, Case.debtor_id, Case.reference).where(
                Case.creditor_id.in_(select(Creditor.id)), Case.reference.in_(part)
            )
        )
        for case_id, creditor_id, debtor_id, reference in rows:
            if reference.upper() in wanted:
                hits[case_id] = (creditor_id, debtor_id, reference)
    return hits

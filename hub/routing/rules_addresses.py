"""Routing rules that read the hub's own signed addresses: reply tokens and VERP bounces.

Both addresses carry an HMAC (:mod:`hub.routing.reply_token`), so a match is proof that the
address came from a mail we sent. An address shaped like ours whose HMAC fails is a forgery
attempt (or a mangled address): the rule says ``rejected``, which sends the message to triage
and keeps every later rule from attaching it to some other case.
"""

from __future__ import annotations

import logging
import math
import re

from sqlalchemy import select

from hub.domain.routing import REPORT_KINDS, Outcome, RoutingInput, RuleOutcome
from hub.routing.context import RuleContext, bare_address, message_ids
from hub.routing.reply_token import (
    BOUNCE_PREFIX,
    REPLY_PREFIX,
    TOKEN_BYTES,
    parse_bounce_address,
    parse_reply_address,
)
from hub.storage.models import Case, OutboxMessage

log = logging.getLogger(__name__)

_TOKEN_LEN = math.ceil(TOKEN_BYTES * 8 / 5)
_TOKEN_SHAPE = re.compile(rf"^[a-z2-7]{{{_TOKEN_LEN}}}$")


def _claims_to_be_ours(address: str, prefix: str, reply_domain: str | None) -> bool:
    """True for ``prefix<token>@domain`` where the token has our shape or the domain is ours.

    Other ``reply+...`` addresses (plus-addressing at some provider) are not ours and not
    forgeries; they are simply ignored.
    """
    local, sep, domain = bare_address(address).lower().rpartition("@")
    if not sep or not local.startswith(prefix):
        return False
    if reply_domain is not None and domain.rstrip(".") == reply_domain.lower():
        return True
    return bool(_TOKEN_SHAPE.match(local[len(prefix) :]))


class ReplyTokenRule:
    name = "reply_token"
    description = "a signed reply address (reply+<token>@...) among the recipients names the case"

    async def apply(self, ctx: RuleContext, msg: RoutingInput) -> RuleOutcome:
        domain = ctx.policy.reply_domain
        found: dict[int, None] = {}
        forged = 0
        for address in msg.recipients():
            if not _claims_to_be_ours(address, REPLY_PREFIX, domain):
                continue
            case_id = parse_reply_address(ctx.reply_key, bare_address(address), domain=domain)
            if case_id is None:
                forged += 1
            else:
                found[case_id] = None
        if forged:
            log.warning(
                "routing: message %s carries %d reply address(es) that fail the signature check",
                msg.message_id,
                forged,
            )
            return RuleOutcome(
                self.name,
                Outcome.REJECTED,
                why=f"{forged} reply address(es) fail the signature check: a forgery attempt "
                "or a mangled address; not matched to any case",
                candidates=tuple(found),
            )
        if not found:
            return RuleOutcome(self.name, Outcome.NO_MATCH, why="no reply address of ours")
        existing = await _existing_cases(ctx, list(found))
        if not existing:
            return RuleOutcome(
                self.name, Outcome.NO_MATCH, why="the reply address names a case that is gone"
            )
        if len(existing) > 1:
            return RuleOutcome(
                self.name,
                Outcome.AMBIGUOUS,
                why=f"reply addresses of {len(existing)} different cases",
                candidates=tuple(existing),
            )
        return RuleOutcome(
            self.name, Outcome.MATCHED, existing[0], why="signed reply address of the case"
        )


class BounceEnvelopeRule:
    name = "bounce_envelope"
    description = (
        "a bounce or other report names our message: by its signed VERP address "
        "(bounce+<token>@...) or by the original Message-ID it carries"
    )

    async def apply(self, ctx: RuleContext, msg: RoutingInput) -> RuleOutcome:
        if msg.kind not in REPORT_KINDS:
            return RuleOutcome(self.name, Outcome.SKIPPED, why=f"not a report ({msg.kind})")
        domain = ctx.policy.reply_domain
        forged = 0
        outbox_ids: dict[int, None] = {}
        for address in (*msg.envelope_to, *msg.recipients()):
            if not _claims_to_be_ours(address, BOUNCE_PREFIX, domain):
                continue
            ref = parse_bounce_address(ctx.reply_key, bare_address(address), domain=domain)
            if ref is None:
                forged += 1
            else:
                outbox_ids[ref] = None
        if forged:
            log.warning(
                "routing: report %s is addressed to %d bounce address(es) that fail the "
                "signature check",
                msg.message_id,
                forged,
            )
            return RuleOutcome(
                self.name,
                Outcome.REJECTED,
                why=f"{forged} bounce address(es) fail the signature check: a forged bounce "
                "could mark a debtor's address undeliverable; not matched",
            )
        by_verp = await _outbox_cases(ctx, list(outbox_ids))
        original = message_ids(msg.original_message_id)
        ours = await ctx.our_messages(original)
        by_id = {case for case, _ in ours.values() if case is not None}
        if by_verp:
            verp_cases = {case for case, _ in by_verp}
            if len(verp_cases) > 1:
                return RuleOutcome(
                    self.name,
                    Outcome.AMBIGUOUS,
                    why="bounce addresses of messages of several cases",
                    candidates=tuple(sorted(verp_cases)),
                )
            case_id = next(iter(verp_cases))
            ctx.outbox_id = by_verp[0][1]
            why = "signed bounce address of our message"
            if by_id and by_id != {case_id}:
                why += "; the original Message-ID it quotes names another case (ignored)"
            return RuleOutcome(self.name, Outcome.MATCHED, case_id, why=why)
        if outbox_ids:
            return RuleOutcome(
                self.name, Outcome.NO_MATCH, why="the bounce address names a message of no case"
            )
        if len(by_id) == 1:
            ctx.outbox_id = next((o for _, o in ours.values() if o is not None), None)
            return RuleOutcome(
                self.name,
                Outcome.MATCHED,
                next(iter(by_id)),
                why="the original Message-ID it carries is one of ours",
            )
        if len(by_id) > 1:
            return RuleOutcome(
                self.name,
                Outcome.AMBIGUOUS,
                why="original Message-IDs of several cases",
                candidates=tuple(sorted(by_id)),
            )
        return RuleOutcome(
            self.name, Outcome.NO_MATCH, why="no bounce address and no original Message-ID of ours"
        )


async def _existing_cases(ctx: RuleContext, case_ids: list[int]) -> list[int]:
    rows = await ctx.session.execute(select(Case.id).where(Case.id.in_(case_ids)))
    present = set(rows.scalars())
    return [case_id for case_id in case_ids if case_id in present]


async def _outbox_cases(ctx: RuleContext, outbox_ids: list[int]) -> list[tuple[int, int]]:
    """(case id, outbox id) of the outbox rows that have a case."""
    if not outbox_ids:
        return []
    rows = await ctx.session.execute(
        select(OutboxMessage.case_id, OutboxMessage.id).where(
            OutboxMessage.id.in_(outbox_ids), OutboxMessage.case_id.is_not(None)
        )
    )
    return [(case_id, outbox_id) for case_id, outbox_id in rows if case_id is not None]

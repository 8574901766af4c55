"""Routing one inbound message: the rules, then sender trust, as one :class:`RouteDecision`.

:func:`route` only reads the database; the caller stores the message and the decision
(``decision.to_json()``, which holds no address) in its own transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.at_rest import Keyring
from hub.domain.routing import Outcome, RouteDecision, RoutingInput
from hub.routing.context import RoutingPolicy, Rule, RuleContext
from hub.routing.rules import PIPELINE, candidate_cases, run_rules, triage_reason
from hub.routing.trust import assess_trust

log = logging.getLogger(__name__)


async def route(
    session: AsyncSession,
    keyring: Keyring,
    reply_key: bytes,
    msg: RoutingInput,
    *,
    policy: RoutingPolicy | None = None,
    pipeline: tuple[Rule, ...] = PIPELINE,
) -> RouteDecision:
    """Which case ``msg`` belongs to (or triage, and why), every rule's outcome, and trust."""
    ctx = RuleContext(session, keyring, reply_key, msg, policy or RoutingPolicy())
    outcomes, decided = await run_rules(ctx, msg, pipeline)
    if decided is None or decided.outcome is not Outcome.MATCHED or decided.case_id is None:
        reason = triage_reason(outcomes, decided)
        decision = RouteDecision(
            case_id=None,
            rule=decided.rule if decided else None,
            outcomes=outcomes,
            sender_verified=False,
            trust_reasons=("not routed to a case",),
            triage_reason=reason,
            outbox_id=ctx.outbox_id,
            candidate_case_ids=candidate_cases(outcomes),
        )
        log.info("routing: message %s to triage (%s)", msg.message_id, reason.value)
        return decision
    trust = await assess_trust(ctx, msg, decided.case_id, decided.rule)
    log.info(
        "routing: message %s to case %s by %s (sender %s)",
        msg.message_id,
        decided.case_id,
        decided.rule,
        "verified" if trust.verified else "unverified",
    )
    return RouteDecision(
        case_id=decided.case_id,
        rule=decided.rule,
        outcomes=outcomes,
        sender_verified=trust.verified,
        trust_reasons=trust.reasons,
        outbox_id=ctx.outbox_id,
        proposed_address=trust.proposal,
        candidate_case_ids=candidate_cases(outcomes),
    )

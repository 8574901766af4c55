"""The routing pipeline: which rules run, in which order, and how their outcomes combine.

The order lives in :data:`PIPELINE` and nowhere else. Rules run in that order; the first one
that decides wins (``matched``: that case; ``rejected``: triage, a signed address was forged)
and every later rule is recorded as ``skipped``, so the decision shows what each rule did.
``no_match`` and ``ambiguous`` pass the message on.

Decision table (first row that applies; "sender known" = the From address, by keyed hash, is
a known address of the case's debtor):

=====================  ==========================================  =========================
rule                   evidence                                    outcome
=====================  ==========================================  =========================
reply_token            valid signed reply address (To/Cc/          matched (one case),
                       Delivered-To/X-Original-To)                 ambiguous (several)
reply_token            reply address of ours failing its HMAC      rejected -> triage forged
bounce_envelope        report: valid VERP bounce address           matched (its outbox row)
bounce_envelope        report: bounce address failing its HMAC     rejected -> triage forged
bounce_envelope        report: original Message-ID is ours         matched
thread_headers         In-Reply-To / References name our message   matched (parent first,
                                                                   then newest reference)
reference_in_text      reference of ONE case of the sender's       matched
                       debtor(s)
reference_in_text      references of several of the sender's       ambiguous
                       cases, or cases of several creditors
reference_in_text      reference of a case, sender unknown or      no_match, candidates kept
                       another debtor                              (-> unverified_reference)
known_sender           sender's debtor(s) have ONE open case       matched
known_sender           several open cases                          ambiguous
(none decided)         any ambiguous outcome                       triage ambiguous
(none decided)         a reference candidate was refused           triage unverified_reference
(none decided)         otherwise                                   triage unmatched
=====================  ==========================================  =========================

Reports (bounce, MDN, ARF) skip ``reference_in_text`` and ``known_sender``: they quote our
reminder and come from a mail server, so their words and sender say nothing.
"""

from __future__ import annotations

import logging

from hub.domain.routing import Outcome, RoutingInput, RuleOutcome, TriageReason
from hub.routing.context import Rule, RuleContext
from hub.routing.rules_addresses import BounceEnvelopeRule, ReplyTokenRule
from hub.routing.rules_content import KnownSenderRule, ReferenceInTextRule, ThreadHeadersRule

log = logging.getLogger(__name__)

#: The routing rules in the order they run: the one place that order is written down.
PIPELINE: tuple[Rule, ...] = (
    ReplyTokenRule(),
    BounceEnvelopeRule(),
    ThreadHeadersRule(),
    ReferenceInTextRule(),
    KnownSenderRule(),
)


async def run_rules(
    ctx: RuleContext, msg: RoutingInput, pipeline: tuple[Rule, ...] = PIPELINE
) -> tuple[tuple[RuleOutcome, ...], RuleOutcome | None]:
    """Every rule's outcome, in pipeline order, and the one that decided (if any)."""
    outcomes: list[RuleOutcome] = []
    decided: RuleOutcome | None = None
    for rule in pipeline:
        if decided is not None:
            outcomes.append(
                RuleOutcome(rule.name, Outcome.SKIPPED, why=f"decided by {decided.rule}")
            )
            continue
        outcome = await rule.apply(ctx, msg)
        if outcome.rule != rule.name:
            raise RuntimeError(f"rule {rule.name} reported itself as {outcome.rule}")
        outcomes.append(outcome)
        if outcome.outcome.decides:
            decided = outcome
    return tuple(outcomes), decided


def triage_reason(outcomes: tuple[RuleOutcome, ...], decided: RuleOutcome | None) -> TriageReason:
    """Why a message no rule matched goes to triage."""
    if decided is not None and decided.outcome is Outcome.REJECTED:
        return TriageReason.FORGED
    if any(o.outcome is Outcome.AMBIGUOUS for o in outcomes):
        return TriageReason.AMBIGUOUS
    if any(o.rule == ReferenceInTextRule.name and o.candidates for o in outcomes):
        return TriageReason.UNVERIFIED_REFERENCE
    return TriageReason.UNMATCHED


def candidate_cases(outcomes: tuple[RuleOutcome, ...]) -> tuple[int, ...]:
    """Every case a rule saw but did not pick, for a collector working the triage queue."""
    found: dict[int, None] = {}
    for outcome in outcomes:
        for case_id in outcome.candidates:
            found[case_id] = None
    return tuple(found)

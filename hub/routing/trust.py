"""Sender trust: may a message routed to a case change that case by itself?

A sender is verified when both hold:

1. the From address (by keyed hash) is a known, verified address of the case's debtor;
2. no ``Authentication-Results`` header from one of OUR servers (``imap.trusted_authserv_ids``)
   shows ``dmarc=fail`` or an unrescued ``dkim=fail`` for the From domain
   (:mod:`hub.routing.auth_results`; SPF alone never fails a message).

With no trusted authserv-id configured, (2) cannot be checked and does not fail; the reasons
say so, so that a collector knows the verdict rests on the address alone.

An unverified message is still routed to its case (it is on the thread) but never changes the
case by itself. When a reply reached its case through our reply address or our Message-ID
from an address the debtor does not have yet, and nothing failed, the decision carries an
:class:`~hub.domain.routing.AddressProposal` for a collector's one-click add.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from hub.domain.routing import AddressProposal, MessageKind, RoutingInput, redact_address
from hub.routing.auth_results import AuthVerdict, believed_headers, judge
from hub.routing.context import RuleContext
from hub.storage.models import Case

#: rules whose match proves the sender saw a mail we sent to the debtor
PROOF_OF_RECEIPT_RULES = frozenset({"reply_token", "thread_headers"})


@dataclass(frozen=True)
class TrustVerdict:
    verified: bool
    reasons: tuple[str, ...]
    proposal: AddressProposal | None = None


def check_authentication(
    msg: RoutingInput, trusted_authserv_ids: tuple[str, ...], from_domain: str
) -> tuple[AuthVerdict, list[str]]:
    """The verdict of our servers' headers, and what to tell a collector about it."""
    notes: list[str] = []
    if not trusted_authserv_ids:
        notes.append("Authentication-Results not checked: imap.trusted_authserv_ids is empty")
        return AuthVerdict(False, False, (), 0), notes
    verdict = judge(believed_headers(msg.authentication_results, trusted_authserv_ids), from_domain)
    if verdict.believed == 0:
        ignored = len(msg.authentication_results)
        notes.append(
            "no Authentication-Results from our servers"
            + (f" ({ignored} from elsewhere ignored)" if ignored else "")
        )
    notes.extend(verdict.reasons)
    return verdict, notes


async def assess_trust(
    ctx: RuleContext, msg: RoutingInput, case_id: int, rule: str | None
) -> TrustVerdict:
    """Whether the sender of ``msg`` may change case ``case_id``, and why (or why not)."""
    sender = ctx.sender
    local, sep, domain = sender.rpartition("@")
    if not sep or not local or not domain:
        return TrustVerdict(False, ("the message has no usable From address",))
    debtor_id = (
        await ctx.session.execute(select(Case.debtor_id).where(Case.id == case_id))
    ).scalar_one()
    reasons: list[str] = []
    mine = [s for s in await ctx.sender_addresses() if s.debtor_id == debtor_id]
    known = bool(mine)
    address_ok = any(s.verified for s in mine)
    if not known:
        reasons.append("the sender is not a known address of the case's debtor")
    elif not address_ok:
        reasons.append("the sender's address is known for the debtor but not verified")
    else:
        reasons.append("the sender is a known address of the case's debtor")
    auth, notes = check_authentication(msg, ctx.policy.trusted_authserv_ids, domain.lower())
    reasons.extend(notes)
    verified = address_ok and not auth.failed
    proposal = None
    if (
        not known
        and not auth.failed
        and msg.kind is MessageKind.REPLY
        and rule in PROOF_OF_RECEIPT_RULES
    ):
        digest = ctx.sender_hash
        assert digest is not None
        evidence = [f"routed by {rule}"]
        if auth.authenticated:
            evidence.append("authenticated by our mail server")
        proposal = AddressProposal(
            case_id=case_id,
            debtor_id=debtor_id,
            address_hash=digest,
            redacted=redact_address(sender),
            authenticated=auth.authenticated,
            evidence=tuple(evidence),
        )
        reasons.append("a new address for the debtor: a collector may add it")
    return TrustVerdict(verified, tuple(reasons), proposal)

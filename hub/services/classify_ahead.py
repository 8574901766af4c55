"""The record step's classification, computed ahead of its write transaction.

:mod:`hub.services.record_inbound` records a reply in one transaction that holds the case lock,
which on SQLite is the database's single write lock. Awaiting the classifier's process pool
inside it (the first call loads the models: seconds) kept the fetcher and the inbound stages
waiting on that lock. :func:`classify_ahead` therefore looks at the next message with reads
only, routes it, and classifies the reply for the case it routes to before the transaction
begins; :func:`reusing` then answers the transaction's classifier call from that result when
the input is exactly the same (same text, date and claim), and classifies anew otherwise (the
case changed meanwhile, or another worker took the message).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from hub.config import Settings
from hub.domain.routing import MessageKind
from hub.domain.understood import Understood
from hub.inbound.understand import load_understood
from hub.nlp.fields import Claim
from hub.nlp.model import Classification
from hub.routing.context import RoutingPolicy
from hub.routing.reply_token import reply_token_key
from hub.routing.service import route
from hub.services.thread import load_case
from hub.storage.db import Database
from hub.storage.models import Case, InboundMessage

log = logging.getLogger(__name__)

#: what the classifier is: ``ClassifierPool.classify`` (text, received, claim)
Classify = Callable[[str, datetime | None, Claim | None], Awaitable[Classification]]

PROCESSED = "processed"

ClassifyArgs = tuple[str, datetime | None, Claim | None]


def classify_args(case: Case, row: InboundMessage, understood: Understood) -> ClassifyArgs:
    """What the classifier is given for a reply on ``case``: its text, date and the claim."""
    claim = Claim(
        amount=Decimal(case.claim_amount) + Decimal(case.fees) - Decimal(case.paid_amount),
        currency=case.currency,
        reference=case.reference,
    )
    received = understood.date or row.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    return understood.reply_text, received, claim


def reusing(classify: Classify, ready: dict[ClassifyArgs, Classification]) -> Classify:
    """``classify``, answering from ``ready`` when the input is one classified already."""

    async def classify_once(
        text: str, received: datetime | None, claim: Claim | None
    ) -> Classification:
        found = ready.get((text, received, claim))
        return found if found is not None else await classify(text, received, claim)

    return classify_once


async def classify_ahead(
    database: Database, settings: Settings, classify: Classify, after: int
) -> dict[ClassifyArgs, Classification]:
    """Classify the next reply that routes to a case, outside any write transaction (reads
    only; nothing here is committed). Empty when there is nothing to classify; any failure
    is left to the recording transaction, which meets it again and handles it."""
    try:
        async with database.sessions() as session:
            row: InboundMessage | None = await session.scalar(
                select(InboundMessage)
                .where(InboundMessage.state == PROCESSED, InboundMessage.id > after)
                .order_by(InboundMessage.id)
                .limit(1)
            )
            if row is None or (row.analysis or {}).get("kind") != MessageKind.REPLY.value:
                return {}
            understood = await load_understood(session, row.id)
            decision = await route(
                session,
                database.keyring,
                reply_token_key(settings.security),
                understood.routing_input(row.received_at),
                policy=RoutingPolicy.from_settings(settings),
            )
            if decision.case_id is None:
                return {}
            args = classify_args(await load_case(session, decision.case_id), row, understood)
        # the session is closed (its reads rolled back): no transaction while classifying
        return {args: await classify(*args)}
    except Exception as exc:  # the recording transaction meets it again and handles it
        log.debug("record: no classification ahead (%s)", type(exc).__name__)
        return {}

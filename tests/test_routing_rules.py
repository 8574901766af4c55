"""Routing rules, table-driven, on SQLite and PostgreSQL: every message lands in the right case
or in triage, with each rule's outcome recorded, and nothing lands in a wrong case."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from routing_support import REPLY_DOMAIN, World, build_world, tamper

from hub.config import Settings
from hub.domain.routing import (
    MessageKind,
    Outcome,
    RouteDecision,
    RoutingInput,
    TriageReason,
)
from hub.routing.context import RoutingPolicy
from hub.routing.reply_token import reply_token_key
from hub.routing.rules import PIPELINE
from hub.routing.rules_content import reference_candidates
from hub.routing.service import route
from hub.storage.db import Database

RULES = [rule.name for rule in PIPELINE]
POLICY = RoutingPolicy(reply_domain=REPLY_DOMAIN)
Make = Callable[[World], RoutingInput]


def reply(sender: str, **fields: object) -> RoutingInput:
    return RoutingInput(message_id="<in-1@mail.example>", from_address=sender, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Route:
    name: str
    make: Make
    case: str | None  # the case it must land in, None for triage
    rule: str | None
    triage: TriageReason | None = None
    verified: bool | None = None
    candidates: frozenset[str] = frozenset()
    #: cases it must never land in (besides "not this one", stated for the forgery rows)
    never: frozenset[str] = frozenset()


FORWARD = (
    "Please see below, I will pay next week.\n\n"
    "---------- Forwarded message ---------\n"
    "From: Nordlicht Energie <reminders@hub.example>\n"
    "Subject: Payment reminder NL-2025-004711\n\n"
    "Reference: NL-2025-004711\nAmount due: 120.00 EUR\n"
)

ROUTES = [
    Route(
        "token in To",
        lambda w: reply("alice@example.org", to=(w.reply_address("A1"),), reply_text="ok"),
        "A1", "reply_token", verified=True,
    ),
    Route(
        "token in Delivered-To only",
        lambda w: reply(
            "alice@example.org",
            to=("collections@hub.example",),
            delivered_to=(w.reply_address("A1"),),
        ),
        "A1", "reply_token", verified=True,
    ),
    Route(
        "token upper-cased by a mail server",
        lambda w: reply("Alice@Example.org", to=(w.reply_address("A1").upper(),)),
        "A1", "reply_token", verified=True,
    ),
    Route(
        "token with a display name, in Cc",
        lambda w: reply("alice@example.org", cc=(f'"Nordlicht" <{w.reply_address("A1")}>',)),
        "A1", "reply_token", verified=True,
    ),
    Route(
        # a tampered token of A1, from bob (two open cases) quoting carol's reference and
        # replying to carol's reminder: no later rule may pick any case
        "forged token",
        lambda w: reply(
            "bob@example.net",
            to=(tamper(w.reply_address("A1")),),
            in_reply_to=w.reminder_id["B1"],
            subject="KB-77-1234",
        ),
        None, "reply_token", TriageReason.FORGED, never=frozenset({"A1", "B1", "A2", "A3"}),
    ),
    Route(
        "forged token next to a valid one",
        lambda w: reply(
            "alice@example.org", to=(w.reply_address("A1"), tamper(w.reply_address("B1")))
        ),
        None, "reply_token", TriageReason.FORGED, candidates=frozenset({"A1"}),
    ),
    Route(
        "someone else's plus address is not ours and not a forgery",
        lambda w: reply("alice@example.org", to=("reply+notes@example.org",)),
        "A1", "known_sender", verified=True,
    ),
    Route(
        "In-Reply-To our reminder",
        lambda w: reply("bob@example.net", in_reply_to=w.reminder_id["A3"]),
        "A3", "thread_headers", verified=True,
    ),
    Route(
        "References only, ours not last",
        lambda w: reply(
            "bob@example.net",
            references=(w.reminder_id["A2"], "<other@mail.example>"),
        ),
        "A2", "thread_headers", verified=True,
    ),
    Route(
        "References without brackets and folded in one value",
        lambda w: reply(
            "bob@example.net",
            references=(f"<first@x.example>\r\n {w.reminder_id['A2']}",),
        ),
        "A2", "thread_headers", verified=True,
    ),
    Route(
        "reply whose subject was changed",
        lambda w: reply(
            "bob@example.net",
            in_reply_to=w.reminder_id["A2"],
            references=(w.reminder_id["A2"],),
            subject="my new job",
            reply_text="I can pay from next month.",
        ),
        "A2", "thread_headers", verified=True,
    ),
    Route(
        "In-Reply-To a debtor's own message is not ours",
        lambda w: reply("carol@example.com", in_reply_to=w.inbound_id),
        "B1", "known_sender", verified=True,
    ),
    Route(
        "In-Reply-To our mail of no case",
        lambda w: reply("nobody@else.example", in_reply_to=f"<reset-1@{REPLY_DOMAIN}>"),
        None, None, TriageReason.UNMATCHED,
    ),
    Route(
        "reference of the sender's own case (of two)",
        lambda w: reply("bob@example.net", subject="Re: Payment reminder NL-2025-000003"),
        "A3", "reference_in_text", verified=True,
    ),
    Route(
        "reference lower-cased, at the end of a sentence",
        lambda w: reply("bob@example.net", reply_text="I paid invoice nl-2025-000002."),
        "A2", "reference_in_text", verified=True,
    ),
    Route(
        "forwarded from a new address, reference only: a candidate, not attached",
        lambda w: reply("alice.work@company.example", subject="Fwd: reminder", full_text=FORWARD),
        None, None, TriageReason.UNVERIFIED_REFERENCE, candidates=frozenset({"A1"}),
    ),
    Route(
        "forwarded from a new address to the reply address",
        lambda w: reply(
            "alice.work@company.example", to=(w.reply_address("A1"),), full_text=FORWARD
        ),
        "A1", "reply_token", verified=False,
    ),
    Route(
        "forged reference of another creditor's case from an unknown sender",
        lambda w: reply(
            "mallory@attacker.example",
            subject="Dispute KB-77-1234",
            reply_text="I dispute KB-77-1234, stop all collection.",
        ),
        None, None, TriageReason.UNVERIFIED_REFERENCE,
        candidates=frozenset({"B1"}), never=frozenset({"B1"}),
    ),
    Route(
        "another creditor's reference from a known sender: their own case, never the other",
        lambda w: reply("alice@example.org", subject="KB-77-1234 is paid"),
        "A1", "known_sender", verified=True, candidates=frozenset({"B1"}),
        never=frozenset({"B1"}),
    ),
    Route(
        "a reference of cases at two creditors from an unknown sender",
        lambda w: reply("mallory@attacker.example", subject="DUP-1001"),
        None, None, TriageReason.AMBIGUOUS, candidates=frozenset({"A6", "B2"}),
    ),
    Route(
        "a reference of cases at two creditors, the sender is one of the debtors",
        lambda w: reply("frank@example.com", subject="DUP-1001"),
        "B2", "reference_in_text", verified=True,
    ),
    Route(
        "known sender with one open case (and one paid)",
        lambda w: reply("dave.old@example.org", reply_text="I will pay tomorrow"),
        "A4", "known_sender", verified=True,
    ),
    Route(
        "known sender with two open cases",
        lambda w: reply("bob@example.net", reply_text="I will pay tomorrow"),
        None, None, TriageReason.AMBIGUOUS, candidates=frozenset({"A2", "A3"}),
    ),
    Route(
        "a known but unverified address",
        lambda w: reply("gina@example.org", reply_text="paid"),
        "A7", "known_sender", verified=False,
    ),
    Route(
        "bounce via VERP",
        lambda w: reply(
            "MAILER-DAEMON@mx.example.org",
            kind=MessageKind.BOUNCE,
            envelope_to=(w.bounce_address("B1"),),
            original_message_id=w.reminder_id["A1"],  # a lie the VERP address outranks
        ),
        "B1", "bounce_envelope", verified=False,
    ),
    Route(
        "bounce via original Message-ID",
        lambda w: reply(
            "MAILER-DAEMON@mx.example.org",
            kind=MessageKind.BOUNCE,
            to=("reminders@hub.example",),
            original_message_id=w.reminder_id["A4"],
            full_text="Reference: NL-2025-000003",
        ),
        "A4", "bounce_envelope", verified=False,
    ),
    Route(
        "forged bounce address",
        lambda w: reply(
            "MAILER-DAEMON@mx.example.org",
            kind=MessageKind.BOUNCE,
            envelope_to=(tamper(w.bounce_address("A1")),),
            original_message_id=w.reminder_id["A1"],
        ),
        None, "bounce_envelope", TriageReason.FORGED, never=frozenset({"A1"}),
    ),
    Route(
        "bounce quoting a reference only: reports are not routed by their words",
        lambda w: reply(
            "MAILER-DAEMON@mx.example.org",
            kind=MessageKind.BOUNCE,
            full_text="Subject: Payment reminder NL-2025-004711",
        ),
        None, None, TriageReason.UNMATCHED,
    ),
    Route(
        "auto-reply from a known sender to the reply address",
        lambda w: reply(
            "carol@example.com", kind=MessageKind.AUTO_REPLY, to=(w.reply_address("B1"),)
        ),
        "B1", "reply_token", verified=True,
    ),
    Route(
        "unknown everything",
        lambda w: reply(
            "stranger@nowhere.example",
            to=("info@hub.example",),
            in_reply_to="<unknown@nowhere.example>",
            subject="Hello 2025",
            reply_text="Call me on 0176 1234567",
        ),
        None, None, TriageReason.UNMATCHED,
    ),
]  # fmt: skip


@pytest.fixture
async def world(database: Database, settings: Settings) -> World:
    return await build_world(database, reply_token_key(settings.security))


async def decide(
    database: Database, world: World, msg: RoutingInput, policy: RoutingPolicy = POLICY
) -> RouteDecision:
    async with database.transaction() as session:
        return await route(session, world.keyring, world.key, msg, policy=policy)


def check(world: World, row: Route, decision: RouteDecision) -> list[str]:
    """What is wrong with ``decision`` for ``row`` (empty when right)."""
    problems: list[str] = []
    expected = world.case[row.case] if row.case else None
    if decision.case_id != expected:
        problems.append(f"case {decision.case_id}, expected {expected} ({row.case})")
    if decision.rule != row.rule:
        problems.append(f"rule {decision.rule}, expected {row.rule}")
    if decision.triage_reason != row.triage:
        problems.append(f"triage {decision.triage_reason}, expected {row.triage}")
    if decision.to_triage != (row.case is None):
        problems.append("to_triage wrong")
    if row.verified is not None and decision.sender_verified != row.verified:
        problems.append(f"verified {decision.sender_verified}: {decision.trust_reasons}")
    if decision.case_id in {world.case[n] for n in row.never}:
        problems.append(f"landed in a forbidden case {decision.case_id}")
    if row.candidates and not row.candidates <= world.names(decision.candidate_case_ids):
        problems.append(f"candidates {world.names(decision.candidate_case_ids)}")
    # every rule is recorded once, in pipeline order; after the decision all are skipped
    if [o.rule for o in decision.outcomes] != RULES:
        problems.append(f"outcomes {[o.rule for o in decision.outcomes]}")
    deciders = [i for i, o in enumerate(decision.outcomes) if o.outcome.decides]
    if len(deciders) > 1:
        problems.append("more than one rule decided")
    if deciders:
        after = decision.outcomes[deciders[0] + 1 :]
        if any(o.outcome is not Outcome.SKIPPED for o in after):
            problems.append("a rule after the decision was not skipped")
        if decision.outcomes[deciders[0]].rule != decision.rule:
            problems.append("the deciding outcome is not the decision's rule")
    return problems


@pytest.mark.parametrize("row", ROUTES, ids=[r.name for r in ROUTES])
async def test_route(database: Database, world: World, row: Route) -> None:
    decision = await decide(database, world, row.make(world))
    problems = check(world, row, decision)
    assert not problems, f"{row.name}: {problems}\n{json.dumps(decision.to_json(), indent=1)}"


async def test_forged_token_is_rejected_and_logged(
    database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    forged = tamper(world.reply_address("A1"))
    msg = reply("alice@example.org", to=(forged,), in_reply_to=world.reminder_id["A1"])
    with caplog.at_level("WARNING", logger="hub.routing"):
        decision = await decide(database, world, msg)
    first = decision.outcomes[0]
    assert (first.rule, first.outcome, first.case_id) == ("reply_token", Outcome.REJECTED, None)
    # the thread headers would have matched A1: they were not even looked at
    assert decision.outcomes[2].outcome is Outcome.SKIPPED
    assert decision.case_id is None and not decision.sender_verified
    assert any("fail the signature check" in r.getMessage() for r in caplog.records)
    assert not any(forged.split("@")[0] in r.getMessage() for r in caplog.records)
    assert not any("alice@" in r.getMessage() for r in caplog.records)


async def test_token_of_another_reply_domain_is_rejected(database: Database, world: World) -> None:
    # a genuine token moved to another domain: the domain is part of the signature
    moved = world.reply_address("A1").replace(f"@{REPLY_DOMAIN}", "@attacker.example")
    decision = await decide(
        database, world, reply("x@attacker.example", to=(moved,)), RoutingPolicy()
    )
    assert decision.triage_reason is TriageReason.FORGED
    assert decision.case_id is None


async def test_bounce_names_its_outbox_row(database: Database, world: World) -> None:
    verp = reply(
        "MAILER-DAEMON@mx.example.org",
        kind=MessageKind.BOUNCE,
        envelope_to=(world.bounce_address("A3"),),
    )
    by_id = reply(
        "MAILER-DAEMON@mx.example.org",
        kind=MessageKind.BOUNCE,
        original_message_id=world.reminder_id["A3"],
    )
    for msg in (verp, by_id):
        decision = await decide(database, world, msg)
        assert decision.case_id == world.case["A3"]
        assert decision.outbox_id == world.outbox["A3"]
        assert decision.proposed_address is None


async def test_new_address_is_proposed_without_storing_it(database: Database, world: World) -> None:
    msg = reply("Alice.Work@Company.example", to=(world.reply_address("A1"),))
    decision = await decide(database, world, msg)
    proposal = decision.proposed_address
    assert decision.case_id == world.case["A1"] and not decision.sender_verified
    assert proposal is not None
    assert proposal.debtor_id == world.debtor["alice"]
    assert proposal.address_hash == world.keyring.email_hash("alice.work@company.example")
    assert proposal.redacted == "A***@company.example"
    assert not proposal.authenticated  # no trusted Authentication-Results configured
    stored = json.dumps(decision.to_json())
    assert "alice.work" not in stored.lower()
    # the known sender gets no proposal, and neither does a case reached by a reference
    known = await decide(database, world, reply("bob@example.net", subject="NL-2025-000002"))
    assert known.case_id == world.case["A2"] and known.proposed_address is None


async def test_decision_json_round_trip(database: Database, world: World) -> None:
    seen_reasons = set()
    for row in ROUTES:
        decision = await decide(database, world, row.make(world))
        text = json.dumps(decision.to_json(), sort_keys=True)
        back = RouteDecision.from_json(json.loads(text))
        assert back == decision, row.name
        assert json.dumps(back.to_json(), sort_keys=True) == text
        # no address in the stored form: at most a redacted one (``a***@domain``)
        assert not re.search(r"[A-Za-z0-9._%+-]@", text), row.name
        seen_reasons.add(decision.triage_reason)
    assert seen_reasons == {None, *TriageReason}


def test_decision_invariants() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RouteDecision(case_id=None, rule=None, outcomes=(), sender_verified=False)
    with pytest.raises(ValueError, match="no verified sender"):
        RouteDecision(
            case_id=None,
            rule=None,
            outcomes=(),
            sender_verified=True,
            triage_reason=TriageReason.UNMATCHED,
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Re: Payment reminder NL-2025-004711", ["NL-2025-004711"]),
        ("ref NL-2025-004711.Thanks", ["NL-2025-004711.Thanks", "NL-2025-004711"]),
        ("(Rechnung: 2024/118-A)", ["2024/118-A", "2024", "118-A"]),
        ("xNL-2025-1 and NL-2025-1- and nl-2025-1", ["xNL-2025-1", "NL-2025-1"]),
        ("no numbers here, R1 is too short", []),
        ("write to max2@example.org", ["max2"]),
    ],
)
def test_reference_candidates(text: str, expected: list[str]) -> None:
    assert reference_candidates([text]) == expected

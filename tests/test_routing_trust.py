"""Sender trust: Authentication-Results (RFC 8601) from our own servers only, and the sender's
known addresses; on SQLite and PostgreSQL for the routed cases, pure for the header parser."""

from __future__ import annotations

import pytest
from routing_support import REPLY_DOMAIN, World, build_world

from hub.config import Settings, load_settings
from hub.domain.routing import RouteDecision, RoutingInput
from hub.routing.auth_results import judge, parse_authentication_results
from hub.routing.context import RoutingPolicy
from hub.routing.reply_token import reply_token_key
from hub.routing.service import route
from hub.storage.db import Database

MX = "mx.hub.example"
TRUSTING = RoutingPolicy(reply_domain=REPLY_DOMAIN, trusted_authserv_ids=("MX.hub.example",))


@pytest.fixture
async def world(database: Database, settings: Settings) -> World:
    return await build_world(database, reply_token_key(settings.security))


async def decide(
    database: Database, world: World, sender: str, headers: tuple[str, ...], policy: RoutingPolicy
) -> RouteDecision:
    msg = RoutingInput(
        message_id="<in-2@mail.example>",
        from_address=sender,
        to=(world.reply_address("A1"),),
        authentication_results=headers,
    )
    async with database.transaction() as session:
        return await route(session, world.keyring, world.key, msg, policy=policy)


TRUST_TABLE = [
    ("DKIM fail", (f"{MX}; dkim=fail header.d=example.org header.s=s1",), False, "dkim=fail"),
    (
        "DMARC fail",
        (f"{MX}; spf=pass smtp.mailfrom=example.org; dmarc=fail header.from=example.org",),
        False,
        "dmarc=fail",
    ),
    (
        "pass",
        (
            f"{MX}; dkim=pass header.d=example.org; spf=pass smtp.mailfrom=example.org; "
            "dmarc=pass (p=reject dis=none) header.from=example.org",
        ),
        True,
        "dmarc=pass",
    ),
    (
        "fail from an untrusted authserv-id is ignored",
        ("evil.example; dkim=fail header.d=example.org; dmarc=fail header.from=example.org",),
        True,
        "1 from elsewhere ignored",
    ),
    ("SPF fail alone", (f"{MX}; spf=fail smtp.mailfrom=example.org",), True, "known address"),
    (
        "a failed list signature of another domain",
        (f"{MX}; dkim=fail header.d=lists.example; dkim=pass header.d=example.org",),
        True,
        "dkim=pass",
    ),
    (
        "two signatures of the From domain, one broken",
        (f"{MX}; dkim=fail header.d=example.org; dkim=pass header.i=@mail.example.org",),
        True,
        "another one of the From domain passed",
    ),
    (
        "our second header fails (a hop inside our own network)",
        (f"{MX}; dkim=pass header.d=example.org", f"{MX.upper()}; dmarc=fail"),
        False,
        "dmarc=fail",
    ),
    ("no header at all", (), True, "no Authentication-Results from our servers"),
]


@pytest.mark.parametrize(
    ("headers", "verified", "reason"),
    [row[1:] for row in TRUST_TABLE],
    ids=[row[0] for row in TRUST_TABLE],
)
async def test_trust(
    database: Database, world: World, headers: tuple[str, ...], verified: bool, reason: str
) -> None:
    decision = await decide(database, world, "alice@example.org", headers, TRUSTING)
    # the case is always the same: trust never changes where a message goes
    assert decision.case_id == world.case["A1"]
    assert decision.sender_verified is verified, decision.trust_reasons
    assert any(reason in r for r in decision.trust_reasons), decision.trust_reasons


async def test_without_trusted_ids_headers_are_not_believed(
    database: Database, world: World
) -> None:
    headers = (f"{MX}; dmarc=fail header.from=example.org",)
    decision = await decide(
        database, world, "alice@example.org", headers, RoutingPolicy(reply_domain=REPLY_DOMAIN)
    )
    assert decision.sender_verified
    assert any("trusted_authserv_ids is empty" in r for r in decision.trust_reasons)


async def test_unknown_sender_is_unverified_even_when_authenticated(
    database: Database, world: World
) -> None:
    headers = (f"{MX}; dkim=pass header.d=company.example; dmarc=pass header.from=company.example",)
    decision = await decide(database, world, "alice@company.example", headers, TRUSTING)
    assert decision.case_id == world.case["A1"] and not decision.sender_verified
    assert decision.proposed_address is not None and decision.proposed_address.authenticated
    failing = (f"{MX}; dmarc=fail header.from=company.example",)
    decision = await decide(database, world, "alice@company.example", failing, TRUSTING)
    assert decision.proposed_address is None  # never offer an address that failed DMARC


async def test_known_address_of_another_debtor_is_unverified(
    database: Database, world: World
) -> None:
    # carol is a debtor, but not A1's: her reply through A1's address changes nothing
    decision = await decide(database, world, "carol@example.com", (), TRUSTING)
    assert decision.case_id == world.case["A1"] and not decision.sender_verified
    assert "the sender is not a known address of the case's debtor" in decision.trust_reasons


def test_setting_is_loaded() -> None:
    settings = load_settings(None, {"HUB_IMAP_TRUSTED_AUTHSERV_IDS": "mx1.example, mx2"})
    assert settings.imap.trusted_authserv_ids == ("mx1.example", "mx2")
    assert RoutingPolicy.from_settings(settings).trusted_authserv_ids == ("mx1.example", "mx2")
    assert load_settings(None, {}).imap.trusted_authserv_ids == ()


@pytest.mark.parametrize(
    ("value", "authserv_id", "results"),
    [
        (
            "mx.example.org 1; dkim/1=pass (good sig) header.d=a.example header.s=\"s;1\"; "
            "spf=fail reason=\"not permitted\" smtp.mailfrom=b.example",
            "mx.example.org",
            [("dkim", "pass", {"header.d": "a.example", "header.s": "s;1"}),
             ("spf", "fail", {"smtp.mailfrom": "b.example"})],
        ),
        ("mx.example.org; none", "mx.example.org", []),
        (
            "(comment (nested)) MX.Example.Org;\r\n\tdmarc = fail (p=none) header.from = c.example",
            "mx.example.org",
            [("dmarc", "fail", {"header.from": "c.example"})],
        ),
    ],
)  # fmt: skip
def test_parse_authentication_results(
    value: str, authserv_id: str, results: list[tuple[str, str, dict[str, str]]]
) -> None:
    header = parse_authentication_results(value)
    assert header is not None and header.authserv_id == authserv_id
    assert [(r.method, r.result, r.properties) for r in header.results] == results


def test_parse_reason_and_empty() -> None:
    header = parse_authentication_results('mx; spf=fail reason="not permitted" smtp.helo=h')
    assert header is not None and header.results[0].reason == "not permitted"
    assert parse_authentication_results("  ") is None


def test_judge_unnamed_dkim_failure_counts_against_the_sender() -> None:
    header = parse_authentication_results("mx; dkim=fail")
    assert header is not None
    verdict = judge([header], "example.org")
    assert verdict.failed and not verdict.authenticated

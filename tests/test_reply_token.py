"""Signed reply and bounce addresses: round trips, forgeries, tampering, keys and domains."""

from __future__ import annotations

import base64
import os
import secrets

import pytest

from hub.config import load_settings
from hub.crypto.at_rest import generate_key
from hub.errors import ConfigError
from hub.routing.reply_token import (
    case_from_recipients,
    make_bounce_address,
    make_reply_address,
    parse_bounce_address,
    parse_reply_address,
    reply_token_key,
)

DOMAIN = "reply.hub.example"
IDS = [1, 2, 42, 1_000_003, 2**31, 2**63 - 1]


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


def _token(address: str) -> str:
    return address.split("+", 1)[1].split("@", 1)[0]


@pytest.mark.parametrize("case_id", IDS)
def test_reply_address_round_trip(key: bytes, case_id: int) -> None:
    address = make_reply_address(key, case_id, DOMAIN)
    local, _, domain = address.partition("@")
    assert local.startswith("reply+") and domain == DOMAIN
    assert len(local) <= 64  # RFC 5321, 4.5.3.1.1
    assert set(_token(address)) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert parse_reply_address(key, address) == case_id
    assert parse_reply_address(key, address, domain=DOMAIN) == case_id


@pytest.mark.parametrize("message_ref", IDS)
def test_bounce_address_round_trip(key: bytes, message_ref: int) -> None:
    address = make_bounce_address(key, message_ref, DOMAIN)
    assert address.startswith("bounce+") and address.endswith("@" + DOMAIN)
    assert len(address.partition("@")[0]) <= 64
    assert parse_bounce_address(key, address) == message_ref
    assert parse_bounce_address(key, address, domain=DOMAIN.upper()) == message_ref


def test_mail_servers_changing_case_and_display_names_do_not_matter(key: bytes) -> None:
    address = make_reply_address(key, 4711, "Reply.Hub.Example")
    assert address.endswith("@reply.hub.example")
    assert parse_reply_address(key, address.upper()) == 4711
    assert parse_reply_address(key, address.capitalize()) == 4711
    assert parse_reply_address(key, f"  {address}  ") == 4711
    assert parse_reply_address(key, f'"Inkasso, Hub" <{address.upper()}>') == 4711
    assert parse_reply_address(key, address + ".") == 4711  # a root-qualified domain
    bounce = make_bounce_address(key, 99, DOMAIN)
    assert parse_bounce_address(key, bounce.upper()) == 99


def test_every_address_is_new_and_does_not_show_the_id(key: bytes) -> None:
    addresses = {make_reply_address(key, 7, DOMAIN) for _ in range(200)}
    assert len(addresses) == 200
    assert {parse_reply_address(key, a) for a in addresses} == {7}
    # consecutive case ids do not give tokens with a common part beyond the version
    first, second = (_token(make_reply_address(key, n, DOMAIN)) for n in (1000, 1001))
    common = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)
    assert common <= 2


def test_tampering_with_any_character_is_rejected(key: bytes) -> None:
    address = make_reply_address(key, 12345, DOMAIN)
    token = _token(address)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for position, char in enumerate(token):
        for replacement in (alphabet[(alphabet.index(char) + 1) % 32], alphabet[::-1][0]):
            if replacement == char:
                continue
            forged = token[:position] + replacement + token[position + 1 :]
            assert parse_reply_address(key, f"reply+{forged}@{DOMAIN}") is None, position


def test_forgeries_are_rejected(key: bytes) -> None:
    address = make_reply_address(key, 12345, DOMAIN)
    token = _token(address)
    rejected = [
        f"reply+{token[:-1]}@{DOMAIN}",  # truncated
        f"reply+{token}a@{DOMAIN}",  # extended
        f"reply+{token[:-2]}18@{DOMAIN}",  # not base32
        f"reply+{'a' * len(token)}@{DOMAIN}",
        f"reply+@{DOMAIN}",
        f"reply{token}@{DOMAIN}",
        f"replies+{token}@{DOMAIN}",
        f"reply+{token}",
        f"reply+{token}@",
        f"bounce+{token}@{DOMAIN}",  # a reply token is no bounce token
        "",
        "not an address",
        "reply+zzzz@@" + DOMAIN,
        f"Two <reply+{token}@{DOMAIN}>, <x@y.example>",
    ]
    for candidate in rejected:
        assert parse_reply_address(key, candidate) is None, candidate
    assert parse_bounce_address(key, f"bounce+{token}@{DOMAIN}") is None
    # random well-formed tokens of the right length: 2,000 guesses, none passes
    raw_len = len(base64.b32decode(token.upper() + "=" * (-len(token) % 8)))
    for _ in range(2000):
        guess = base64.b32encode(secrets.token_bytes(raw_len)).decode().rstrip("=").lower()
        assert parse_reply_address(key, f"reply+{guess}@{DOMAIN}") is None


def test_other_key_other_domain_and_other_purpose_are_rejected(key: bytes) -> None:
    address = make_reply_address(key, 77, DOMAIN)
    assert parse_reply_address(os.urandom(32), address) is None
    moved = address.replace(DOMAIN, "evil.example")
    assert parse_reply_address(key, moved) is None
    assert parse_reply_address(key, address, domain="other.example") is None
    bounce = make_bounce_address(key, 77, DOMAIN)
    assert parse_bounce_address(os.urandom(32), bounce) is None
    assert parse_bounce_address(key, bounce.replace(DOMAIN, "hub.example")) is None
    # the same token under the other purpose's prefix fails
    assert parse_reply_address(key, bounce.replace("bounce+", "reply+")) is None
    assert parse_bounce_address(key, address.replace("reply+", "bounce+")) is None


def test_bad_arguments_raise(key: bytes) -> None:
    for bad in (0, -1, 2**63, True):
        with pytest.raises(ValueError):
            make_reply_address(key, bad, DOMAIN)
        with pytest.raises(ValueError):
            make_bounce_address(key, bad, DOMAIN)
    with pytest.raises(ValueError):
        make_reply_address(b"short", 1, DOMAIN)
    with pytest.raises(ValueError):
        parse_reply_address(b"short", "reply+x@" + DOMAIN)
    for domain in ("", "localhost", "a b.example", "x@y.example", "-bad.example"):
        with pytest.raises(ValueError):
            make_reply_address(key, 1, domain)


def test_case_from_recipients_finds_the_signed_address(key: bytes) -> None:
    ours = make_reply_address(key, 555, DOMAIN)
    forged = f"reply+{'b' * len(_token(ours))}@{DOMAIN}"
    recipients = ["collector@hub.example", forged, f"Hub <{ours}>", "other@example.org"]
    assert case_from_recipients(key, recipients, domain=DOMAIN) == 555
    assert case_from_recipients(key, ["collector@hub.example", forged]) is None


def test_key_from_settings() -> None:
    encoded = generate_key()
    settings = load_settings(None, {"HUB_SECURITY_REPLY_TOKEN_KEY": encoded})
    key = reply_token_key(settings.security)
    assert key == base64.b64decode(encoded) and len(key) == 32
    address = make_reply_address(key, 3, DOMAIN)
    assert parse_reply_address(reply_token_key(settings.security), address) == 3
    with pytest.raises(ConfigError, match="not set"):
        reply_token_key(load_settings(None, {}).security)
    with pytest.raises(ConfigError, match="base64"):
        reply_token_key(load_settings(None, {"HUB_SECURITY_REPLY_TOKEN_KEY": "**"}).security)
    short = base64.b64encode(b"x" * 8).decode()
    with pytest.raises(ConfigError, match="at least"):
        reply_token_key(load_settings(None, {"HUB_SECURITY_REPLY_TOKEN_KEY": short}).security)

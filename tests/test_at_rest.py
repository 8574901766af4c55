"""The at-rest keyring: AES-256-GCM roundtrips, authentication failures, keyed email hashes."""

from __future__ import annotations

import base64
import os

import pytest

from hub.crypto.at_rest import (
    NONCE_BYTES,
    Keyring,
    generate_key,
    keyring_from_secrets,
    parse_keyring_text,
)
from hub.errors import AtRestKeyError, ConfigError


def _raw() -> bytes:
    return os.urandom(32)


def _ring(keys: dict[str, bytes], active: str, lookup: bytes | None = None) -> Keyring:
    return Keyring(keys, active, lookup or _raw())


@pytest.mark.parametrize(
    "plaintext", [b"", b"Jane Doe", "Søren Ærø Straße 5".encode(), os.urandom(70_000)]
)
def test_roundtrip(keyring: Keyring, plaintext: bytes) -> None:
    sealed = keyring.encrypt(plaintext, "debtors.name")
    assert keyring.decrypt(sealed, "debtors.name") == plaintext
    if plaintext:
        assert plaintext not in sealed
    assert keyring.key_id_of(sealed) == "k1"
    # version byte, id length, id, nonce, then ciphertext plus the 16-byte GCM tag
    assert len(sealed) == 2 + 2 + NONCE_BYTES + len(plaintext) + 16


def test_each_encryption_uses_a_fresh_nonce(keyring: Keyring) -> None:
    first = keyring.encrypt(b"same", "debtors.name")
    second = keyring.encrypt(b"same", "debtors.name")
    assert first != second
    assert keyring.decrypt(first, "debtors.name") == keyring.decrypt(second, "debtors.name")


def test_wrong_purpose_fails(keyring: Keyring) -> None:
    sealed = keyring.encrypt(b"jane@example.org", "debtor_emails.address")
    with pytest.raises(AtRestKeyError, match="failed authentication"):
        keyring.decrypt(sealed, "debtors.name")


@pytest.mark.parametrize("position", [-1, -17, 4 + NONCE_BYTES, 4])
def test_tampered_value_fails(keyring: Keyring, position: int) -> None:
    sealed = bytearray(keyring.encrypt(b"Jane Doe", "debtors.name"))
    sealed[position] ^= 0x01
    with pytest.raises(AtRestKeyError):
        keyring.decrypt(bytes(sealed), "debtors.name")


def test_truncated_value_fails(keyring: Keyring) -> None:
    sealed = keyring.encrypt(b"Jane Doe", "debtors.name")
    with pytest.raises(AtRestKeyError):
        keyring.decrypt(sealed[:-1], "debtors.name")


@pytest.mark.parametrize("blob", [b"", b"\x02\x02k1" + bytes(40), b"plain text"])
def test_value_not_in_the_format_fails(keyring: Keyring, blob: bytes) -> None:
    with pytest.raises(AtRestKeyError):
        keyring.decrypt(blob, "debtors.name")


def test_unknown_key_id_fails() -> None:
    old = _ring({"k1": _raw()}, "k1")
    new = _ring({"k2": _raw()}, "k2")
    sealed = old.encrypt(b"Jane Doe", "debtors.name")
    with pytest.raises(AtRestKeyError, match="unknown at-rest key 'k1'"):
        new.decrypt(sealed, "debtors.name")


def test_same_id_other_key_fails() -> None:
    one = _ring({"k1": _raw()}, "k1")
    other = _ring({"k1": _raw()}, "k1")
    with pytest.raises(AtRestKeyError):
        other.decrypt(one.encrypt(b"x", "p"), "p")


def test_old_values_readable_after_switching_the_active_key() -> None:
    k1, k2, lookup = _raw(), _raw(), _raw()
    before = _ring({"k1": k1}, "k1", lookup)
    after = _ring({"k1": k1, "k2": k2}, "k2", lookup)
    old = before.encrypt(b"Jane Doe", "debtors.name")
    new = after.encrypt(b"Jane Doe", "debtors.name")
    assert after.key_id_of(new) == "k2"
    assert after.decrypt(old, "debtors.name") == b"Jane Doe"
    assert after.decrypt(new, "debtors.name") == b"Jane Doe"


def test_active_key_must_exist() -> None:
    with pytest.raises(ConfigError, match="at_rest_active_key"):
        _ring({"k1": _raw()}, "k2")


def test_email_hash_ignores_case_and_spaces(keyring: Keyring) -> None:
    expected = keyring.email_hash("jane.doe@example.org")
    assert keyring.email_hash("Jane.Doe@Example.ORG") == expected
    assert keyring.email_hash("  JANE.DOE@example.org \n") == expected
    assert keyring.email_hash("jane.doe2@example.org") != expected
    assert len(expected) == 64
    assert "jane" not in expected


def test_email_hash_depends_on_the_lookup_key() -> None:
    a = _ring({"k1": _raw()}, "k1")
    b = _ring({"k1": _raw()}, "k1")
    assert a.email_hash("jane@example.org") != b.email_hash("jane@example.org")


def test_lookup_hash_survives_an_at_rest_key_change() -> None:
    lookup = _raw()
    before = _ring({"k1": _raw()}, "k1", lookup)
    after = _ring({"k2": _raw()}, "k2", lookup)
    assert before.email_hash("jane@example.org") == after.email_hash("jane@example.org")


def test_repr_shows_no_key_material() -> None:
    k1, k2, lookup = _raw(), _raw(), _raw()
    ring = _ring({"k1": k1, "k2": k2}, "k2", lookup)
    shown = repr(ring) + str(ring)
    for secret in (k1, k2, lookup):
        assert base64.b64encode(secret).decode() not in shown
        assert secret.hex() not in shown
        assert repr(secret) not in shown
    assert "k1" in shown and "k2" in shown


def test_parse_keyring_text() -> None:
    a, b = generate_key(), generate_key()
    keys = parse_keyring_text(f"# comment\nk1:{a}\n\n k2 : {b} \n")
    assert keys == {"k1": base64.b64decode(a), "k2": base64.b64decode(b)}
    assert parse_keyring_text(f"k1:{a},k2:{b}") == keys


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1", "id:base64key"),
        ("k1:not base64!", "not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "must be 32 bytes"),
        ("k1:{a}\nk1:{a}", "appears twice"),
    ],
)
def test_parse_keyring_text_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_keyring_text(text.format(a=generate_key()))


def test_keyring_from_secrets_names_missing_settings() -> None:
    with pytest.raises(ConfigError, match=r"security\.at_rest_keys: missing"):
        keyring_from_secrets(None, "k1", generate_key())
    with pytest.raises(ConfigError, match=r"security\.lookup_key: missing"):
        keyring_from_secrets(f"k1:{generate_key()}", "k1", None)
    ring = keyring_from_secrets(f"k1:{generate_key()}", "k1", generate_key())
    assert ring.decrypt(ring.encrypt(b"x", "p"), "p") == b"x"

"""Encryption at rest: AES-256-GCM under a keyring, and keyed hashes for lookups.

Every encrypted value is self-describing: ``b"\\x01" + key_id_len + key_id + nonce +
ciphertext``, so the id of the key that sealed it is stored beside each value and
``hub keys rotate-at-rest`` can re-seal old values under the active key. The column's name is
bound as associated data, so a value copied into another column does not decrypt.

Lookups by email address use an HMAC-SHA256 under a separate key that rotation does not touch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import AtRestKeyError, ConfigError

FORMAT_VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32


def generate_key() -> str:
    """A new random 256-bit key, base64 encoded."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _decode_key(key_id: str, encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"at-rest key {key_id!r} is not valid base64") from exc
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"at-rest key {key_id!r} must be {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def parse_keyring_text(text: str) -> dict[str, bytes]:
    """Parse ``id:base64`` entries separated by newlines or commas."""
    keys: dict[str, bytes] = {}
    for entry in text.replace(",", "\n").splitlines():
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or len(key_id) > 32:
            raise ConfigError("security.at_rest_keys: each entry must read id:base64key")
        if key_id in keys:
            raise ConfigError(f"security.at_rest_keys: key id {key_id!r} appears twice")
        keys[key_id] = _decode_key(key_id, encoded)
    return keys


@dataclass(frozen=True)
class Keyring:
    """The at-rest keys by id, the one new values are sealed with, and the lookup key."""

    keys: Mapping[str, bytes]
    active_id: str
    lookup_key: bytes
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            raise ConfigError(
                f"security.at_rest_active_key: {self.active_id!r} is not among the at-rest keys"
                f" (known: {', '.join(sorted(self.keys)) or 'none'})"
            )
        if len(self.lookup_key) < 16:
            raise ConfigError("security.lookup_key: must be at least 16 bytes")
        for key_id, key in self.keys.items():
            self._ciphers[key_id] = AESGCM(key)

    def __repr__(self) -> str:  # never show key material
        return f"Keyring(active_id={self.active_id!r}, ids={sorted(self.keys)!r})"

    def encrypt(self, plaintext: bytes, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self.active_id.encode("ascii")
        sealed = self._ciphers[self.active_id].encrypt(nonce, plaintext, purpose.encode())
        return bytes((FORMAT_VERSION, len(key_id))) + key_id + nonce + sealed

    def key_id_of(self, blob: bytes) -> str:
        if len(blob) < 2 or blob[0] != FORMAT_VERSION:
            raise AtRestKeyError("value is not in the at-rest format")
        return blob[2 : 2 + blob[1]].decode("ascii")

    def decrypt(self, blob: bytes, purpose: str) -> bytes:
        key_id = self.key_id_of(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise AtRestKeyError(f"value sealed with unknown at-rest key {key_id!r}")
        start = 2 + blob[1]
        nonce, sealed = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, sealed, purpose.encode())
        except InvalidTag:
            raise AtRestKeyError(f"value for {purpose} failed authentication") from None

    def lookup_hash(self, value: str) -> str:
        """A keyed, deterministic hash for equality lookups (hex)."""
        return hmac.new(self.lookup_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def email_hash(self, address: str) -> str:
        return self.lookup_hash("email:" + normalize_email(address))


def normalize_email(address: str) -> str:
    """Lower-case and strip an address, so lookups ignore case and spaces."""
    return address.strip().lower()


def keyring_from_secrets(
    keys_text: str | None, active_id: str, lookup_key_b64: str | None
) -> Keyring:
    if not keys_text:
        raise ConfigError(
            "security.at_rest_keys: missing; set HUB_SECURITY_AT_REST_KEYS or "
            "security.at_rest_keys_file (generate one with: hub keys generate)"
        )
    if not lookup_key_b64:
        raise ConfigError(
            "security.lookup_key: missing; set HUB_SECURITY_LOOKUP_KEY or "
            "security.lookup_key_file (generate one with: hub keys generate)"
        )
    try:
        lookup = base64.b64decode(lookup_key_b64.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("security.lookup_key: not valid base64") from exc
    return Keyring(parse_keyring_text(keys_text), active_id, lookup)

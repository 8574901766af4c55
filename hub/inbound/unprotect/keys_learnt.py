"""Keys a debtor sends us: Autocrypt headers, attached OpenPGP keys, S/MIME signer certificates.

Autocrypt (Level 1, section 2.3): the header is only taken when its ``addr`` equals the From
address, and only from the outer header section. Attached keys (``application/pgp-keys``,
RFC 3156 section 7) and certificates from signed S/MIME mail are returned with the addresses
they carry; the caller decides what to store. Key bytes are read with ``gpg --import-options
show-only``: nothing is imported here.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path

from hub.crypto import pgp_inbound
from hub.crypto.autocrypt import parse_autocrypt_header
from hub.crypto.errors import CryptoOperationError, CryptoTimeoutError
from hub.crypto.smime_inbound import SignerCert
from hub.errors import UserError
from hub.inbound.unprotect.inbound_keys import InboundKeys
from hub.inbound.unprotect.result import LearntKey

log = logging.getLogger(__name__)

#: A debtor's key is a few KB; anything larger is not learnt.
MAX_KEY_BYTES = 256 * 1024


def pgp_keys_from_bytes(key_data: bytes, source: str, keys: InboundKeys) -> list[LearntKey]:
    """One :class:`LearntKey` per OpenPGP key in ``key_data`` (armored or binary)."""
    if not key_data.strip() or len(key_data) > MAX_KEY_BYTES:
        return []
    try:
        if keys.gnupghome is not None:
            infos = pgp_inbound.show_keys(keys.gnupghome, key_data, binary=keys.gpg_binary)
        else:
            with tempfile.TemporaryDirectory(prefix="hub-showkeys-") as home:
                infos = pgp_inbound.show_keys(Path(home), key_data, binary=keys.gpg_binary)
    except (CryptoOperationError, CryptoTimeoutError):
        log.warning("could not read an OpenPGP key from the %s", source)
        return []
    return [
        LearntKey(
            kind="pgp",
            fingerprint=info.fingerprint,
            key_bytes=key_data,
            addresses=info.emails,
            source=source,
        )
        for info in infos
        if info.fingerprint
    ]


def autocrypt_keys(
    message: EmailMessage, from_address: str | None, keys: InboundKeys
) -> tuple[list[LearntKey], list[str]]:
    """Keys from the ``Autocrypt`` headers whose addr is the From address, and the reasons
    any other header was ignored."""
    learnt: list[LearntKey] = []
    notes: list[str] = []
    values = message.get_all("Autocrypt") or []
    if len(values) > 1:
        # Autocrypt Level 1, section 2.3: more than one valid header means none is used.
        return [], ["several Autocrypt headers: ignored"]
    for value in values:
        try:
            header = parse_autocrypt_header(str(value))
        except UserError as exc:
            notes.append(f"Autocrypt header ignored: {exc}")
            continue
        if not from_address or header.addr.strip().lower() != from_address.lower():
            notes.append("Autocrypt header ignored: addr is not the From address")
            continue
        learnt += pgp_keys_from_bytes(header.keydata, "autocrypt", keys)
    return learnt, notes


def smime_certificate_key(signer: SignerCert) -> LearntKey:
    """The signer certificate of a signed S/MIME message as a key to learn."""
    return LearntKey(
        kind="smime",
        fingerprint=signer.fingerprint_sha256,
        key_bytes=signer.pem,
        addresses=signer.addresses,
        source="smime-signature",
    )


def unique(keys: Iterable[LearntKey]) -> tuple[LearntKey, ...]:
    """``keys`` without repeats (same kind and fingerprint), in order."""
    seen: set[tuple[str, str]] = set()
    out: list[LearntKey] = []
    for key in keys:
        if (key.kind, key.fingerprint) not in seen:
            seen.add((key.kind, key.fingerprint))
            out.append(key)
    return tuple(out)

"""Debtors' encryption keys: add an OpenPGP key or S/MIME certificate, and choose one to send.

A key is stored as a :class:`~hub.storage.models.DebtorKey` (the key material encrypted at
rest) with the facts the choice needs: fingerprint, creation and expiry, revoked, whether it can
encrypt, and the keyed hash of the debtor's address it is for. A key is accepted only for an
address of that debtor that the key itself names (an OpenPGP user id, an S/MIME
subjectAltName), so a key can never send one debtor's mail to someone else's address. OpenPGP
keys are also imported into the hub's GnuPG home, which encrypts to them.

Choice at send time (:func:`choose_debtor_key`): only keys for the recipient address that are
unrevoked, encryption-capable and inside their validity at that moment; OpenPGP before S/MIME,
and within a kind the newest key wins. OpenPGP is preferred because its encryption is always
integrity-protected (MDC), whereas S/MIME falls back to unauthenticated AES-CBC for every
recipient who has not announced AES-GCM support (the malleability EFAIL exploits), and because
the hub's Autocrypt header offers its OpenPGP key, so replies come back protected the same way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crypto.at_rest import Keyring
from hub.crypto.pgp import PgpKeystore
from hub.crypto.pgp_keys import PgpKeyInfo
from hub.crypto.smime_certs import certificate_emails, load_certificates, unusable_reason
from hub.errors import NotFoundError, UserError
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, DebtorKey

log = logging.getLogger(__name__)

OPENPGP = "openpgp"
SMIME = "smime"
SOURCE_COLLECTOR = "collector"
#: OpenPGP first (see the module docstring for why)
KIND_ORDER = {OPENPGP: 0, SMIME: 1}


@dataclass(frozen=True)
class AddedKey:
    """What ``hub debtor add-key`` stored."""

    debtor_id: int
    kind: str
    fingerprint: str
    created_at: datetime | None
    expires_at: datetime | None
    revoked: bool
    can_encrypt: bool
    supports_aead: bool
    #: True for a new row, False when a stored key was updated
    new: bool
    #: why the key cannot be used now (None when it can)
    unusable: str | None


@dataclass(frozen=True)
class ChosenKey:
    """The key a message to one address is encrypted to."""

    kind: str
    fingerprint: str
    key_data: bytes
    supports_aead: bool


def is_smime(data: bytes) -> bool:
    """X.509 (PEM, or DER: a SEQUENCE, 0x30) rather than OpenPGP (packets have bit 7 set)."""
    head = data.lstrip()[:64]
    return head.startswith(b"-----BEGIN CERTIFICATE") or head[:1] == b"\x30"


async def find_debtor(session: AsyncSession, ref: str, creditor_code: str | None) -> Debtor:
    """The debtor named by a case reference or, failing that, by the creditor's debtor ref."""
    for column, join in ((Case.reference, True), (Debtor.external_ref, False)):
        query = select(Debtor).join(Creditor, Creditor.id == Debtor.creditor_id)
        if join:
            query = query.join(Case, Case.debtor_id == Debtor.id)
        query = query.where(column == ref).options(selectinload(Debtor.emails))
        if creditor_code is not None:
            query = query.where(Creditor.code == creditor_code.upper())
        found = list((await session.scalars(query.distinct())).unique().all())
        if len(found) > 1:
            raise UserError(f"{ref!r} names debtors of several creditors: give --creditor CODE")
        if found:
            return found[0]
    raise NotFoundError(
        f"no case or debtor {ref!r}" + (f" of {creditor_code}" if creditor_code else "")
    )


def _pgp_expiry(key: PgpKeyInfo, now: datetime) -> datetime | None:
    """Until when mail can be encrypted to ``key``: the primary key's expiry, or the latest
    expiry of its usable encryption subkeys if that comes first (None: no expiry)."""
    subkeys = key.encryption_keys(now) or tuple(k for k in key.subkeys if "e" in k.capabilities)
    ends = [k.expires for k in subkeys]
    sub_end = None if not ends or None in ends else max(e for e in ends if e is not None)
    candidates = [e for e in (key.expires, sub_end) if e is not None]
    return min(candidates) if candidates else None


def _match(addresses: list[str], named: tuple[str, ...] | list[str]) -> str | None:
    """The first of the debtor's addresses (primary first) that the key names."""
    wanted = {a.strip().lower() for a in named}
    for address in addresses:
        if address.strip().lower() in wanted:
            return address
    return None


async def _upsert(session: AsyncSession, debtor_id: int, facts: dict[str, object]) -> bool:
    existing = await session.scalar(
        select(DebtorKey).where(
            DebtorKey.debtor_id == debtor_id,
            DebtorKey.kind == facts["kind"],
            DebtorKey.fingerprint == facts["fingerprint"],
        )
    )
    if existing is None:
        session.add(DebtorKey(debtor_id=debtor_id, **facts))
        return True
    for name, value in facts.items():
        setattr(existing, name, value)
    return False


async def add_debtor_key(
    database: Database,
    keystore: PgpKeystore,
    *,
    ref: str,
    data: bytes,
    creditor_code: str | None = None,
    supports_aead: bool = False,
    now: datetime | None = None,
) -> AddedKey:
    """Store an OpenPGP public key or an S/MIME certificate for the debtor ``ref`` names.

    Raises :class:`UserError` when the file holds no key, or a key that names none of the
    debtor's addresses. Adding a key again updates its facts (a revocation, a new expiry).
    """
    moment = now or datetime.now(UTC)
    async with database.transaction() as session:
        debtor = await find_debtor(session, ref, creditor_code)
        emails = sorted(debtor.emails, key=lambda e: (not e.is_primary, e.id))
        addresses = [e.address for e in emails]
        if is_smime(data):
            facts, unusable = await asyncio.to_thread(_smime_facts, data, addresses, moment)
            facts["supports_aead"] = supports_aead
        else:
            if supports_aead:
                raise UserError("--supports-aead applies to S/MIME certificates only")
            facts, unusable = await _pgp_facts(keystore, data, addresses, moment)
        address = str(facts.pop("address"))
        facts.update(
            email_hash=database.keyring.email_hash(address),
            source=SOURCE_COLLECTOR,
            added_at=moment,
        )
        new = await _upsert(session, debtor.id, facts)
        debtor_id = debtor.id
    added = AddedKey(
        debtor_id=debtor_id,
        kind=str(facts["kind"]),
        fingerprint=str(facts["fingerprint"]),
        created_at=facts["key_created_at"],  # type: ignore[arg-type]
        expires_at=facts["expires_at"],  # type: ignore[arg-type]
        revoked=bool(facts["revoked"]),
        can_encrypt=bool(facts["can_encrypt"]),
        supports_aead=bool(facts.get("supports_aead", False)),
        new=new,
        unusable=unusable,
    )
    log.info(
        "debtor %s: %s key %s %s",
        debtor_id,
        added.kind,
        added.fingerprint[-16:],
        "added" if new else "updated",
    )
    return added


def _smime_facts(
    data: bytes, addresses: list[str], now: datetime
) -> tuple[dict[str, object], str | None]:
    cert = load_certificates(data)[0]  # the first certificate is the debtor's own
    address = _match(addresses, certificate_emails(cert))
    if address is None:
        raise UserError(
            "the certificate names none of the debtor's email addresses in its subjectAltName"
        )
    reason = unusable_reason(cert, address, now)
    # outside its validity period is judged at send time; anything else never changes
    can_encrypt = reason is None or reason in {"expired", "not valid yet"}
    facts: dict[str, object] = {
        "kind": SMIME,
        "fingerprint": cert.fingerprint(hashes.SHA256()).hex().upper(),
        "key_data": cert.public_bytes(Encoding.DER),
        "key_created_at": cert.not_valid_before_utc,
        "expires_at": cert.not_valid_after_utc,
        "revoked": False,
        "can_encrypt": can_encrypt,
        "address": address,
    }
    return facts, reason


async def _pgp_facts(
    keystore: PgpKeystore, data: bytes, addresses: list[str], now: datetime
) -> tuple[dict[str, object], str | None]:
    keys = await keystore.aimport_key(data)
    for key in sorted(keys, key=lambda k: k.created, reverse=True):
        address = _match(addresses, key.emails)
        if address is None:
            continue
        can_encrypt = bool(key.encryption_keys(now)) or any(
            "e" in k.capabilities and not k.revoked for k in key.subkeys
        )
        reason = None
        if key.revoked or key.validity in {"r", "i", "d"}:
            reason = "revoked or invalid"
        elif not key.can_encrypt(now):
            reason = "expired or no usable encryption subkey" if can_encrypt else "cannot encrypt"
        exported = await asyncio.to_thread(keystore.export_public_key, key.fingerprint)
        facts: dict[str, object] = {
            "kind": OPENPGP,
            "fingerprint": key.fingerprint,
            "key_data": exported,
            "key_created_at": key.created,
            "expires_at": _pgp_expiry(key, now),
            "revoked": key.revoked or key.validity == "r",
            "can_encrypt": can_encrypt,
            "supports_aead": False,
            "address": address,
        }
        return facts, reason
    raise UserError("the OpenPGP key names none of the debtor's email addresses in a user id")


async def choose_debtor_key(
    session: AsyncSession, keyring: Keyring, debtor_id: int, address: str, now: datetime
) -> ChosenKey | None:
    """The key to encrypt mail to ``address`` with at ``now``, or None (see the module doc)."""
    rows = (
        await session.scalars(
            select(DebtorKey).where(
                DebtorKey.debtor_id == debtor_id,
                DebtorKey.email_hash == keyring.email_hash(address),
                DebtorKey.revoked.is_(False),
                DebtorKey.can_encrypt.is_(True),
            )
        )
    ).all()
    usable = [
        row
        for row in rows
        if (row.expires_at is None or row.expires_at > now)
        and (row.key_created_at is None or row.key_created_at <= now)
        and row.kind in KIND_ORDER
    ]
    oldest = datetime.min.replace(tzinfo=UTC)
    usable.sort(
        key=lambda r: (-KIND_ORDER[r.kind], r.key_created_at or oldest, r.added_at), reverse=True
    )
    for row in usable:
        if row.kind == SMIME:
            cert = x509.load_der_x509_certificate(row.key_data)
            if unusable_reason(cert, address, now) is not None:
                continue
        return ChosenKey(row.kind, row.fingerprint, row.key_data, row.supports_aead)
    return None


async def learn_debtor_key(
    session: AsyncSession,
    keyring: Keyring,
    keystore: PgpKeystore | None,
    *,
    debtor_id: int,
    address: str,
    data: bytes,
    source: str,
    now: datetime | None = None,
) -> bool:
    """Store a key the debtor sent us (``source``: autocrypt, attachment, smime-signature) for
    ``address``, in the caller's transaction; True when it is new.

    The key must name ``address`` (:class:`UserError` otherwise), like a collector's key. A key
    already stored is left as it is (its source stays the first one).
    """
    moment = now or datetime.now(UTC)
    if is_smime(data):
        facts, _ = await asyncio.to_thread(_smime_facts, data, [address], moment)
    elif keystore is None:
        raise UserError("an OpenPGP key cannot be learnt without the hub's GnuPG home")
    else:
        facts, _ = await _pgp_facts(keystore, data, [address], moment)
    existing = await session.scalar(
        select(DebtorKey.id).where(
            DebtorKey.debtor_id == debtor_id,
            DebtorKey.kind == facts["kind"],
            DebtorKey.fingerprint == facts["fingerprint"],
        )
    )
    if existing is not None:
        return False
    facts.pop("address")
    facts.update(email_hash=keyring.email_hash(address), source=source, added_at=moment)
    session.add(DebtorKey(debtor_id=debtor_id, **facts))
    log.info(
        "debtor %s: learnt %s key %s (%s)",
        debtor_id,
        facts["kind"],
        str(facts["fingerprint"])[-16:],
        source,
    )
    return True

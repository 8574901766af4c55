"""Facts about OpenPGP keys, read from GnuPG's colon listing, and the choice of a recipient key.

GnuPG describes each key in ``--with-colons --fixed-list-mode`` records (``doc/DETAILS`` in the
GnuPG sources): ``pub``/``sec`` for the primary key, ``sub``/``ssb`` for subkeys, ``fpr`` for the
fingerprint of the record before it and ``uid`` for each user id. python-gnupg's ``list_keys``
keeps one validity per user-id *string* across all keys, so two keys that carry the same address
overwrite each other; this module therefore parses the listing itself.

Pure code: no gpg process is started here (see :mod:`hub.crypto.pgp`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr

#: Validity letters that make a key or user id unusable whatever the moment (DETAILS, field 2):
#: revoked, invalid, disabled. Expiry ("e") is judged from the timestamps instead, so that a
#: choice can be made for any moment. Trust letters (``-``, ``q``, ``m``, ``f``, ``u``) do not
#: matter: the hub selects keys by its own rules and encrypts with ``--trust-model always``.
_UNUSABLE_VALIDITY = frozenset("rid")
#: OpenPGP public-key algorithm ids (RFC 4880 section 9.1, RFC 6637, RFC 4880bis).
_ALGORITHMS = {
    "1": "rsa",
    "2": "rsa",
    "3": "rsa",
    "16": "elgamal",
    "17": "dsa",
    "18": "ecdh",
    "19": "ecdsa",
    "22": "eddsa",
}
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True)
class PgpUid:
    """One user id of a key."""

    text: str
    email: str
    revoked: bool
    valid: bool


@dataclass(frozen=True)
class PgpSubkey:
    """One subkey (or the primary key itself) with what it may do."""

    fingerprint: str
    algorithm: str
    created: datetime
    expires: datetime | None
    revoked: bool
    capabilities: str

    def usable_for(self, capability: str, now: datetime) -> bool:
        """True when this key has ``capability`` (``"e"``, ``"s"``) and is neither revoked nor
        expired at ``now``."""
        return (
            capability in self.capabilities
            and not self.revoked
            and (self.expires is None or self.expires > now)
        )


@dataclass(frozen=True)
class PgpKeyInfo:
    """What the hub knows about one OpenPGP key (certificate)."""

    fingerprint: str
    uids: tuple[PgpUid, ...]
    created: datetime
    expires: datetime | None
    revoked: bool
    #: GnuPG's validity letter when listed: ``r`` revoked, ``e`` expired, ``i`` invalid, ...
    validity: str
    algorithm: str
    #: The primary key (``subkeys[0]``) followed by its subkeys.
    subkeys: tuple[PgpSubkey, ...]
    has_secret: bool = False

    @property
    def emails(self) -> tuple[str, ...]:
        """The addresses of the user ids that are not revoked, lower-cased, in key order."""
        return tuple(uid.email for uid in self.uids if uid.email and uid.valid)

    def expired(self, now: datetime | None = None) -> bool:
        """True when the primary key has expired at ``now`` (default: the current time)."""
        moment = now or datetime.now(UTC)
        return self.expires is not None and self.expires <= moment

    def usable(self, now: datetime | None = None) -> bool:
        """True when the primary key is valid at ``now``: not revoked, expired, invalid or
        disabled."""
        return (
            not self.revoked and not self.expired(now) and self.validity not in _UNUSABLE_VALIDITY
        )

    def encryption_keys(self, now: datetime | None = None) -> tuple[PgpSubkey, ...]:
        """The usable encryption-capable (sub)keys at ``now``, newest first."""
        moment = now or datetime.now(UTC)
        if not self.usable(moment):
            return ()
        keys = [key for key in self.subkeys if key.usable_for("e", moment)]
        return tuple(sorted(keys, key=lambda key: key.created, reverse=True))

    def can_encrypt(self, now: datetime | None = None) -> bool:
        """True when mail can be encrypted to this key at ``now``."""
        return bool(self.encryption_keys(now))

    def can_sign(self, now: datetime | None = None) -> bool:
        """True when this key can make signatures at ``now`` (a secret key is needed as well)."""
        moment = now or datetime.now(UTC)
        return self.usable(moment) and any(k.usable_for("s", moment) for k in self.subkeys)

    def has_address(self, address: str) -> bool:
        """True when a valid user id carries ``address`` (compared case-insensitively)."""
        return address.strip().lower() in self.emails


def _unescape(field: str) -> str:
    # DETAILS: user ids are UTF-8 with ":" and control characters escaped as \xHH.
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), field.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def _timestamp(field: str) -> datetime | None:
    if not field:
        return None
    if field.isdigit():
        return datetime.fromtimestamp(int(field), UTC)
    # Without --fixed-list-mode gpg may print ISO 8601 basic format.
    return datetime.strptime(field, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _algorithm(fields: list[str]) -> str:
    name = _ALGORITHMS.get(fields[3], f"algo{fields[3]}")
    curve = fields[16] if len(fields) > 16 else ""
    if curve:
        return curve
    return f"{name}{fields[2]}" if name in {"rsa", "dsa", "elgamal"} else name


def _uid(fields: list[str]) -> PgpUid:
    text = _unescape(fields[9])
    address = parseaddr(text)[1].strip().lower()
    if "@" not in address:
        address = ""
    validity = fields[1]
    return PgpUid(
        text=text,
        email=address,
        revoked=validity == "r",
        valid=validity not in _UNUSABLE_VALIDITY,
    )


@dataclass
class _Building:
    fields: list[str]
    has_secret: bool
    fingerprint: str = ""
    uids: list[PgpUid] = field(default_factory=list)
    subkeys: list[list[str]] = field(default_factory=list)
    subkey_fprs: list[str] = field(default_factory=list)


def _finish(key: _Building) -> PgpKeyInfo:
    primary = key.fields
    created = _timestamp(primary[5]) or datetime.fromtimestamp(0, UTC)
    expires = _timestamp(primary[6])
    # Field 12 of the primary record: lower case for the primary key itself.
    primary_caps = "".join(c for c in primary[11] if c.islower())
    subkeys = [
        PgpSubkey(
            fingerprint=key.fingerprint,
            algorithm=_algorithm(primary),
            created=created,
            expires=expires,
            revoked=primary[1] == "r",
            capabilities=primary_caps,
        )
    ]
    for fields, fpr in zip(key.subkeys, key.subkey_fprs, strict=True):
        subkeys.append(
            PgpSubkey(
                fingerprint=fpr,
                algorithm=_algorithm(fields),
                created=_timestamp(fields[5]) or created,
                expires=_timestamp(fields[6]),
                revoked=fields[1] == "r",
                capabilities="".join(c for c in fields[11] if c.islower()),
            )
        )
    return PgpKeyInfo(
        fingerprint=key.fingerprint,
        uids=tuple(key.uids),
        created=created,
        expires=expires,
        revoked=primary[1] == "r",
        validity=primary[1],
        algorithm=_algorithm(primary),
        subkeys=tuple(subkeys),
        has_secret=key.has_secret,
    )


def parse_colon_listing(text: str) -> list[PgpKeyInfo]:
    """Parse ``gpg --with-colons --fixed-list-mode --with-fingerprint --with-fingerprint`` output
    of ``--list-keys`` or ``--list-secret-keys`` (or ``--import-options import-show``)."""
    keys: list[PgpKeyInfo] = []
    current: _Building | None = None
    in_subkey = False
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 12:
            fields += [""] * (12 - len(fields))
        kind = fields[0]
        if kind in {"pub", "sec"}:
            if current is not None:
                keys.append(_finish(current))
            current = _Building(fields=fields, has_secret=kind == "sec")
            in_subkey = False
        elif current is None:
            continue
        elif kind == "fpr":
            if in_subkey:
                current.subkey_fprs.append(fields[9])
            elif not current.fingerprint:
                current.fingerprint = fields[9]
        elif kind == "uid":
            current.uids.append(_uid(fields))
        elif kind in {"sub", "ssb"}:
            current.subkeys.append(fields)
            in_subkey = True
    if current is not None:
        keys.append(_finish(current))
    return keys


def choose_key(
    keys: list[PgpKeyInfo], address: str, now: datetime | None = None
) -> PgpKeyInfo | None:
    """The key to encrypt mail for ``address`` to, or None when there is none.

    Only keys that are valid, unexpired and unrevoked at ``now``, have a usable encryption
    (sub)key, and carry ``address`` in a user id that is not revoked are considered; of those the
    newest wins (by creation of the primary key, then of its newest encryption subkey).
    """
    moment = now or datetime.now(UTC)
    candidates = [k for k in keys if k.has_address(address) and k.can_encrypt(moment)]
    if not candidates:
        return None
    return max(candidates, key=lambda k: (k.created, k.encryption_keys(moment)[0].created))

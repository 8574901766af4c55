"""Password hashing with argon2id, and random one-time passwords.

Hashing costs tens of milliseconds of CPU on purpose: the async callers run these functions
through ``asyncio.to_thread`` so the event loop never waits on them.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub.errors import UserError

MIN_LENGTH = 12
MAX_LENGTH = 1024

#: argon2id with the library's RFC 9106 "low memory" defaults (64 MiB, 3 passes, 4 lanes)
_HASHER = PasswordHasher(type=Type.ID)
#: a hash of nothing in particular, verified against when the account does not exist, so an
#: unknown name costs as much time as a wrong password
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def check_password_policy(password: str) -> str:
    """Return the password or raise :class:`UserError` saying what is wrong with it."""
    if len(password) < MIN_LENGTH:
        raise UserError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UserError(f"the password must have at most {MAX_LENGTH} characters")
    if password.strip() != password or not password.strip():
        raise UserError("the password must not begin or end with white space")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or malformed hash never matches."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def generate_password() -> str:
    """A random password of about 120 bits, easy to copy (URL-safe characters)."""
    return secrets.token_urlsafe(20)

"""The second factor: TOTP (RFC 6238) secrets, codes, QR codes and recovery codes."""

from __future__ import annotations

import hmac
import secrets
import time

import pyotp
import segno

from hub.security.tokens import token_hash

ISSUER = "Hub"
#: accept the previous and the next 30-second step too (clock drift)
VALID_WINDOW = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    return pyotp.random_base32()


def verify_code(secret: str, code: str) -> bool:
    """True for a right code of the current step or a neighbour (no replay check: see
    :func:`matching_step`, which the login uses)."""
    return matching_step(secret, code) is not None


def matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step (RFC 6238, 4.2: Unix time // 30) whose code ``code`` is, or None.

    The current step and ``VALID_WINDOW`` steps either side are tried. The caller refuses a
    step at or before the last one it accepted for the account (RFC 6238, 5.2: a verifier
    must not accept the second attempt of the same OTP), so a code seen over a shoulder or
    in a proxy log is worth nothing once used.
    """
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    generator = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    current = int(now) // generator.interval
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # compare every candidate (constant work whichever matches)
        if hmac.compare_digest(generator.at(step * generator.interval), code):
            found = step
    return found


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as an SVG QR code in a ``data:`` URI (allowed by the CSP's img-src)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5))


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Codes like ``k3mz-8qpa-x2nd`` (about 70 bits each)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def recovery_code_hash(code: str) -> str:
    return token_hash("recovery:" + normalize_recovery_code(code))


def normalize_recovery_code(code: str) -> str:
    compact = "".join(ch for ch in code.strip().lower() if ch.isalnum())
    return f"{compact[:4]}-{compact[4:8]}-{compact[8:]}"


def looks_like_recovery_code(code: str) -> bool:
    compact = "".join(ch for ch in code.strip().lower() if ch.isalnum())
    return len(compact) == 12 and all(ch in _RECOVERY_ALPHABET for ch in compact)

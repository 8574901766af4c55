"""The web application's tables: sessions, login throttling, recovery codes, API and reset tokens,
and the debtor portal's one-time codes and sessions.

Every secret token (session, API, password reset, recovery code) is stored only as its
SHA-256 hash, so a copy of the database lets nobody log in. Throttling state lives here too,
so a lock-out survives a restart and holds across several web nodes sharing the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.storage.models import Base, BigId, utcnow
from hub.storage.types import EncryptedText


class WebSession(Base):
    """A server-side login session; the browser holds only the random token."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: password (password checked, second factor pending) | enrol (TOTP enrolment) | full
    stage: Mapped[str] = mapped_column(String(16))
    #: the TOTP secret shown during enrolment, until the first code confirms it
    pending_totp_secret: Mapped[str | None] = mapped_column(
        EncryptedText("web_sessions.pending_totp_secret")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


class UserSecurity(Base):
    """Per-account security state that the users table does not carry."""

    __tablename__ = "user_security"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: set for a one-time initial password: the next login must choose a new one
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column()
    totp_enrolled_at: Mapped[datetime | None] = mapped_column()
    #: the RFC 6238 time step of the last TOTP code accepted: a code of this step or an
    #: earlier one is refused, so an observed code cannot be replayed within its window
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class LoginThrottle(Base):
    """Failed logins counted per key (``user:<name>`` or ``ip:<address>``) in a window."""

    __tablename__ = "login_throttle"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column()


class RecoveryCode(Base):
    """A single-use second-factor replacement, shown once at enrolment."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column()


class ApiToken(Base):
    """A bearer token for a creditor's system, acting as its user within its scopes."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: e.g. ["cases:read", "cases:write", "import"]
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class PasswordResetToken(Base):
    """A single-use, expiring token mailed to a user who forgot the password."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class PortalCode(Base):
    """A one-time code mailed to a debtor for the portal: stored only as a keyed hash.

    A 6-digit code has too few values for a plain hash to hide it, so ``code_hash`` is an HMAC
    under the web secret; a copy of the database alone does not give the code away.
    """

    __tablename__ = "portal_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class PortalSession(Base):
    """A debtor's portal session: one case, short-lived, apart from the staff sessions."""

    __tablename__ = "portal_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    #: the language the debtor reads the portal in (en, de, da)
    language: Mapped[str] = mapped_column(String(8))
    #: code | postal: which second factor opened it
    factor: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)

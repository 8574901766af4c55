"""Server-side web sessions: created at login, expiring when idle and absolutely, revocable.

The browser holds a random token; the ``web_sessions`` row holds its SHA-256 hash, the user,
the login stage and the times. A session ends when it is idle too long, when it reaches its
absolute lifetime, at logout, when an admin revokes it, and when the user's password changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import WebSection
from hub.security.roles import Principal, Role
from hub.security.tokens import new_token, token_hash
from hub.storage.db import Database
from hub.storage.models import User, utcnow
from hub.storage.models_web import UserSecurity, WebSession

log = logging.getLogger(__name__)

#: a session that only passed the password has this long to present the second factor
PARTIAL_LIFETIME = timedelta(minutes=10)
#: last_seen_at is written at most this often (a write per request would serialise SQLite)
TOUCH_INTERVAL = timedelta(seconds=30)


class Stage(StrEnum):
    PASSWORD = "password"  # noqa: S105 - password accepted; a TOTP or recovery code is due
    ENROL = "enrol"  # password accepted; the account has no TOTP yet and must enrol now
    FULL = "full"


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def from_settings(cls, web: WebSection) -> SessionPolicy:
        return cls(
            idle=timedelta(minutes=web.session_idle_minutes),
            absolute=timedelta(hours=web.session_absolute_hours),
        )


@dataclass(frozen=True)
class SessionInfo:
    """A live session and who it belongs to."""

    session_id: int
    token: str
    stage: Stage
    principal: Principal
    must_change_password: bool
    pending_totp_secret: str | None


async def create_session(
    session: AsyncSession,
    user_id: int,
    stage: Stage,
    policy: SessionPolicy,
    remote_addr: str | None,
    now: datetime | None = None,
) -> str:
    """Store a new session in the caller's transaction and return its token."""
    now = now or utcnow()
    token = new_token()
    lifetime = policy.absolute if stage is Stage.FULL else min(PARTIAL_LIFETIME, policy.absolute)
    session.add(
        WebSession(
            token_hash=token_hash(token),
            user_id=user_id,
            stage=stage.value,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            remote_addr=remote_addr,
        )
    )
    await session.flush()
    return token


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id, username=user.username, role=Role(user.role), creditor_id=user.creditor_id
    )


async def load_session(
    database: Database, token: str, policy: SessionPolicy, now: datetime | None = None
) -> SessionInfo | None:
    """The live session of ``token``, or None (an expired one is deleted on the way)."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(WebSession, User, UserSecurity)
                .join(User, User.id == WebSession.user_id)
                .outerjoin(UserSecurity, UserSecurity.user_id == User.id)
                .where(WebSession.token_hash == token_hash(token))
            )
        ).one_or_none()
    if row is None:
        return None
    web_session, user, security = row
    expired = (
        web_session.expires_at <= now
        or now - web_session.last_seen_at > policy.idle
        or not user.is_active
    )
    if expired:
        async with database.transaction() as session:
            await session.execute(delete(WebSession).where(WebSession.id == web_session.id))
        log.info("session %s of user %s expired", web_session.id, user.id)
        return None
    if now - web_session.last_seen_at > TOUCH_INTERVAL:
        async with database.transaction() as session:
            await session.execute(
                update(WebSession).where(WebSession.id == web_session.id).values(last_seen_at=now)
            )
    return SessionInfo(
        session_id=web_session.id,
        token=token,
        stage=Stage(web_session.stage),
        principal=principal_of(user),
        must_change_password=bool(security and security.must_change_password),
        pending_totp_secret=web_session.pending_totp_secret,
    )


async def end_session(session: AsyncSession, session_id: int) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == session_id))


async def revoke_user_sessions(session: AsyncSession, user_id: int) -> int:
    """End every session of a user; returns how many there were."""
    result = await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired(database: Database, policy: SessionPolicy) -> int:
    now = utcnow()
    async with database.transaction() as session:
        result = await session.execute(
            delete(WebSession).where(
                (WebSession.expires_at <= now) | (WebSession.last_seen_at < now - policy.idle)
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)

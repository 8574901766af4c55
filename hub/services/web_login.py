"""Logging in to the web application: password, second factor, TOTP enrolment, logout.

A login passes two steps. The password (argon2id, checked in a thread) opens a *partial*
session; a TOTP code or an unused recovery code then replaces it with a full session under a
new token (so a token seen before the second factor is worth nothing after it). A TOTP code
works once: the account's last accepted time step is stored and a code of that step or an
earlier one is refused (RFC 6238, 5.2). An account without TOTP must enrol before it can do
anything else. Logging out ends every session of the account, on every device. Every
failure counts against the account and the client address
(:mod:`hub.services.login_throttle`), and every outcome is written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import UserError
from hub.security import audit, totp
from hub.security.passwords import verify_password
from hub.services import login_throttle
from hub.services.login_throttle import ThrottlePolicy
from hub.services.web_sessions import (
    SessionInfo,
    SessionPolicy,
    Stage,
    create_session,
    revoke_user_sessions,
)
from hub.storage.db import Database
from hub.storage.models import User, utcnow
from hub.storage.models_web import RecoveryCode, UserSecurity, WebSession

log = logging.getLogger(__name__)


class LoginFailedError(UserError):
    """Wrong name, password or code (the message never says which)."""


class LockedOutError(UserError):
    """Too many failures: the account or the address is locked for a while."""

    def __init__(self, until: datetime) -> None:
        super().__init__("too many failed attempts; try again later")
        self.until = until


@dataclass(frozen=True)
class LoginPolicy:
    sessions: SessionPolicy
    throttle: ThrottlePolicy


@dataclass(frozen=True)
class Enrolment:
    token: str
    recovery_codes: list[str]


async def _check_lock(
    database: Database, keys: list[str], remote_addr: str | None, now: datetime
) -> None:
    async with database.sessions() as session:
        until = await login_throttle.locked_until(session, keys, now)
    if until is not None:
        async with database.transaction() as session:
            await audit.record(
                session, "anonymous", "login.locked_out", "login", None, remote_addr, {}
            )
        raise LockedOutError(until)


async def _fail(
    database: Database,
    policy: ThrottlePolicy,
    username: str,
    user_id: int | None,
    remote_addr: str | None,
    step: str,
    now: datetime,
) -> None:
    async with database.transaction() as session:
        locked_user = await login_throttle.record_failure(
            session, login_throttle.user_key(username), policy.user_threshold, policy, now
        )
        locked_ip = await login_throttle.record_failure(
            session, login_throttle.ip_key(remote_addr), policy.ip_threshold, policy, now
        )
        await audit.record(
            session,
            "anonymous" if user_id is None else f"user:{user_id}",
            "login.failed",
            "user",
            user_id,
            remote_addr,
            {"step": step, "locked_account": locked_user, "locked_address": locked_ip},
        )
    log.info("login failed at step %s for user id %s", step, user_id)


async def login_password(
    database: Database,
    policy: LoginPolicy,
    username: str,
    password: str,
    remote_addr: str | None,
) -> tuple[str, Stage]:
    """Check name and password; return a partial session's token and what is due next."""
    now = utcnow()
    keys = [login_throttle.user_key(username), login_throttle.ip_key(remote_addr)]
    await _check_lock(database, keys, remote_addr, now)
    async with database.sessions() as session:
        user = await session.scalar(select(User).where(User.username == username.strip()))
    stored = user.password_hash if user is not None and user.is_active else None
    ok = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not ok:
        await _fail(
            database,
            policy.throttle,
            username,
            user.id if user else None,
            remote_addr,
            "password",
            now,
        )
        raise LoginFailedError("wrong user name or password")
    stage = Stage.PASSWORD if user.totp_secret else Stage.ENROL
    async with database.transaction() as session:
        token = await create_session(session, user.id, stage, policy.sessions, remote_addr, now)
        await audit.record(
            session, f"user:{user.id}", "login.password_ok", "user", user.id, remote_addr, {}
        )
    return token, stage


async def _full_session(
    session: AsyncSession,
    info: SessionInfo,
    policy: LoginPolicy,
    remote_addr: str | None,
    now: datetime,
) -> str:
    """Replace the partial session by a full one under a new token."""
    await session.execute(delete(WebSession).where(WebSession.id == info.session_id))
    token = await create_session(
        session, info.principal.user_id, Stage.FULL, policy.sessions, remote_addr, now
    )
    await session.execute(
        update(User).where(User.id == info.principal.user_id).values(last_login_at=now)
    )
    await login_throttle.clear(session, login_throttle.user_key(info.principal.username))
    return token


async def login_second_factor(
    database: Database,
    policy: LoginPolicy,
    info: SessionInfo,
    code: str,
    remote_addr: str | None,
) -> str:
    """Accept a TOTP code or an unused recovery code; return the full session's token."""
    if info.stage is not Stage.PASSWORD:
        raise UserError("no second factor is due for this session")
    now = utcnow()
    user_id = info.principal.user_id
    keys = [login_throttle.user_key(info.principal.username), login_throttle.ip_key(remote_addr)]
    await _check_lock(database, keys, remote_addr, now)
    async with database.transaction() as session:
        user = await session.get(User, user_id)
        secret = user.totp_secret if user is not None else None
        method = None
        step = totp.matching_step(secret, code) if secret else None
        if step is not None and await _claim_step(session, user_id, step):
            method = "totp"
        elif step is None and totp.looks_like_recovery_code(code):
            used = await session.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.user_id == user_id,
                    RecoveryCode.code_hash == totp.recovery_code_hash(code),
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=now)
            )
            if getattr(used, "rowcount", 0) == 1:
                method = "recovery_code"
        if method is not None:
            token = await _full_session(session, info, policy, remote_addr, now)
            await audit.record(
                session,
                f"user:{user_id}",
                "login.ok",
                "user",
                user_id,
                remote_addr,
                {"second_factor": method},
            )
            return token
    await _fail(
        database,
        policy.throttle,
        info.principal.username,
        user_id,
        remote_addr,
        "second_factor",
        now,
    )
    raise LoginFailedError("wrong code")


async def enrolment_secret(database: Database, info: SessionInfo) -> str:
    """The TOTP secret being enrolled in this session (made on first call)."""
    if info.stage is not Stage.ENROL:
        raise UserError("this account has a second factor already")
    if info.pending_totp_secret:
        return info.pending_totp_secret
    secret = totp.new_secret()
    async with database.transaction() as session:
        await session.execute(
            update(WebSession)
            .where(WebSession.id == info.session_id)
            .values(pending_totp_secret=secret)
        )
    return secret


async def confirm_enrolment(
    database: Database,
    policy: LoginPolicy,
    info: SessionInfo,
    code: str,
    remote_addr: str | None,
) -> Enrolment:
    """Store the TOTP secret once a code from it is right; return the recovery codes."""
    if info.stage is not Stage.ENROL or not info.pending_totp_secret:
        raise UserError("no enrolment is in progress for this session")
    now = utcnow()
    user_id = info.principal.user_id
    step = totp.matching_step(info.pending_totp_secret, code)
    if step is None:
        await _fail(
            database,
            policy.throttle,
            info.principal.username,
            user_id,
            remote_addr,
            "enrolment",
            now,
        )
        raise LoginFailedError("wrong code: check the time on your device and try again")
    codes = totp.new_recovery_codes()
    async with database.transaction() as session:
        await session.execute(
            update(User).where(User.id == user_id).values(totp_secret=info.pending_totp_secret)
        )
        await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        session.add_all(
            RecoveryCode(user_id=user_id, code_hash=totp.recovery_code_hash(c), created_at=now)
            for c in codes
        )
        await _ensure_security_row(session, user_id)
        await session.execute(
            update(UserSecurity)
            .where(UserSecurity.user_id == user_id)
            # the code that confirmed the enrolment cannot log in again
            .values(totp_enrolled_at=now, totp_last_step=step)
        )
        token = await _full_session(session, info, policy, remote_addr, now)
        await audit.record(
            session,
            f"user:{user_id}",
            "totp.enrolled",
            "user",
            user_id,
            remote_addr,
            {"recovery_codes": len(codes)},
        )
    return Enrolment(token=token, recovery_codes=codes)


async def _claim_step(session: AsyncSession, user_id: int, step: int) -> bool:
    """Record ``step`` as the account's last accepted TOTP step, if it is later than the last.

    One conditional UPDATE, so two requests racing with the same code cannot both win: the
    second finds the step taken (RFC 6238, 5.2) and the code counts as a failed attempt.
    """
    await _ensure_security_row(session, user_id)
    claimed = await session.execute(
        update(UserSecurity)
        .where(
            UserSecurity.user_id == user_id,
            or_(UserSecurity.totp_last_step.is_(None), UserSecurity.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return getattr(claimed, "rowcount", 0) == 1


async def _ensure_security_row(session: AsyncSession, user_id: int) -> None:
    exists = await session.scalar(
        select(func.count()).select_from(UserSecurity).where(UserSecurity.user_id == user_id)
    )
    if not exists:
        session.add(UserSecurity(user_id=user_id, must_change_password=False))
        await session.flush()


async def logout(database: Database, info: SessionInfo, remote_addr: str | None) -> int:
    """End every session of the account (a forgotten one on another device too); how many."""
    async with database.transaction() as session:
        ended = await revoke_user_sessions(session, info.principal.user_id)
        await audit.record(
            session,
            info.principal.actor,
            "logout",
            "user",
            info.principal.user_id,
            remote_addr,
            {"sessions_ended": ended},
        )
    return ended

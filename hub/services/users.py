"""Accounts of the web application: create, list, change and reset passwords, API tokens.

Passwords are hashed with argon2id in a thread. A new account gets a one-time initial
password (or one given by the operator) and must choose its own at first login. A changed or
reset password ends every session of the account and every reset link still outstanding. A
password reset is mailed through the outbox with a single-use token that expires, and at most
:data:`RESET_MAILS_PER_HOUR` of them per account (more requests get the same answer and no
mail, so nobody can flood a user's mailbox through the form).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from hub.config import Settings
from hub.errors import NotFoundError, UserError
from hub.outbound.outbox import enqueue
from hub.security import audit
from hub.security.passwords import (
    check_password_policy,
    generate_password,
    hash_password,
    verify_password,
)
from hub.security.roles import Principal, Role, Scope
from hub.security.tokens import new_api_token, new_token, token_hash
from hub.services import login_throttle
from hub.services.creditors import creditor_ids_by_code
from hub.services.login_throttle import ThrottlePolicy
from hub.services.web_sessions import principal_of, revoke_user_sessions
from hub.storage.db import Database
from hub.storage.models import Creditor, User, utcnow
from hub.storage.models_web import ApiToken, PasswordResetToken, UserSecurity

log = logging.getLogger(__name__)

#: reset mails per account within an hour; further requests are answered alike, not mailed
RESET_MAILS_PER_HOUR = 3


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    role: str
    creditor_code: str | None
    is_active: bool
    totp_enrolled: bool


async def add_user(
    database: Database,
    *,
    username: str,
    email: str,
    role: Role,
    creditor_code: str | None,
    password: str | None,
    actor: str = "system:cli",
) -> tuple[int, str]:
    """Create an account; returns its id and the (one-time) initial password."""
    username = username.strip()
    if not username or len(username) > 64 or any(ch.isspace() for ch in username):
        raise UserError("user name: 1 to 64 characters without spaces")
    if "@" not in email or len(email) > 320:
        raise UserError("email: not an email address")
    if (role is Role.CREDITOR) != (creditor_code is not None):
        raise UserError("a creditor user needs --creditor CODE, and only a creditor user")
    initial = password is None
    password = generate_password() if password is None else check_password_policy(password)
    digest = await asyncio.to_thread(hash_password, password)
    async with database.transaction() as session:
        creditor_id = None
        if creditor_code is not None:
            ids = await creditor_ids_by_code(session, [creditor_code.upper()])
            if not ids:
                raise NotFoundError(f"no creditor with code {creditor_code}")
            creditor_id = next(iter(ids.values()))
        user = User(
            username=username,
            email=email.strip(),
            email_hash=database.keyring.email_hash(email),
            password_hash=digest,
            role=role.value,
            creditor_id=creditor_id,
            is_active=True,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError:
            raise UserError(f"a user named {username} exists already") from None
        session.add(UserSecurity(user_id=user.id, must_change_password=initial))
        await audit.record(
            session,
            actor,
            "user.created",
            "user",
            user.id,
            None,
            {"role": role.value, "creditor_id": creditor_id},
        )
    return user.id, password


async def list_users(database: Database) -> list[UserRow]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(User, Creditor.code)
            .outerjoin(Creditor, Creditor.id == User.creditor_id)
            .order_by(User.username)
        )
        return [
            UserRow(u.id, u.username, u.role, code, u.is_active, u.totp_secret is not None)
            for u, code in rows
        ]


async def _set_password(
    database: Database,
    user_id: int,
    password: str,
    actor: str,
    remote_addr: str | None,
    action: str,
) -> None:
    check_password_policy(password)
    digest = await asyncio.to_thread(hash_password, password)
    now = utcnow()
    async with database.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(password_hash=digest))
        exists = await session.get(UserSecurity, user_id)
        if exists is None:
            session.add(
                UserSecurity(user_id=user_id, must_change_password=False, password_changed_at=now)
            )
        else:
            exists.must_change_password = False
            exists.password_changed_at = now
        ended = await revoke_user_sessions(session, user_id)
        # a reset link mailed earlier must not set the password again behind the user's back
        await session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
        )
        await audit.record(
            session, actor, action, "user", user_id, remote_addr, {"sessions_ended": ended}
        )


async def change_password(
    database: Database,
    principal: Principal,
    current: str,
    new: str,
    remote_addr: str | None,
    throttle: ThrottlePolicy | None = None,
) -> None:
    """Change one's own password; every session of the account ends (log in again).

    With ``throttle``, a wrong current password counts as a failed login of the account, and
    a locked account cannot change it: whoever took over a session cannot use this form to
    guess the password at argon2 speed.
    """
    key = login_throttle.user_key(principal.username)
    if throttle is not None:
        async with database.sessions() as session:
            until = await login_throttle.locked_until(session, [key], utcnow())
        if until is not None:
            raise UserError("too many failed attempts; try again later")
    async with database.sessions() as session:
        user = await session.get(User, principal.user_id)
    ok = user is not None and await asyncio.to_thread(verify_password, user.password_hash, current)
    if not ok:
        if throttle is not None:
            async with database.transaction() as session:
                locked = await login_throttle.record_failure(
                    session, key, throttle.user_threshold, throttle, utcnow()
                )
                await audit.record(
                    session, principal.actor, "password.change_failed", "user",
                    principal.user_id, remote_addr, {"locked_account": locked},
                )  # fmt: skip
        raise UserError("the current password is wrong")
    if new == current:
        raise UserError("the new password must differ from the current one")
    await _set_password(
        database, principal.user_id, new, principal.actor, remote_addr, "password.changed"
    )


async def admin_revoke_sessions(
    database: Database, admin: Principal, user_id: int, remote_addr: str | None
) -> int:
    async with database.transaction() as session:
        if await session.get(User, user_id) is None:
            raise NotFoundError("no such user")
        ended = await revoke_user_sessions(session, user_id)
        await audit.record(
            session,
            admin.actor,
            "sessions.revoked",
            "user",
            user_id,
            remote_addr,
            {"sessions_ended": ended},
        )
    return ended


async def request_password_reset(
    database: Database, settings: Settings, identifier: str, remote_addr: str | None
) -> None:
    """Mail a reset link if ``identifier`` (user name or email) names an active account.

    The caller answers the same whether or not it did, so nobody learns which accounts exist.
    """
    identifier = identifier.strip()
    if not identifier:
        return
    async with database.sessions() as session:
        clause = (
            User.email_hash == database.keyring.email_hash(identifier)
            if "@" in identifier
            else User.username == identifier
        )
        user = await session.scalar(select(User).where(clause, User.is_active.is_(True)))
    if user is None:
        async with database.transaction() as session:
            await audit.record(
                session, "anonymous", "password.reset_unknown", "user", None, remote_addr, {}
            )
        return
    now = utcnow()
    async with database.sessions() as session:
        recent = await session.scalar(
            select(func.count(PasswordResetToken.id)).where(
                PasswordResetToken.user_id == user.id,
                PasswordResetToken.created_at > now - timedelta(hours=1),
            )
        )
    if (recent or 0) >= RESET_MAILS_PER_HOUR:
        async with database.transaction() as session:
            await audit.record(
                session, "anonymous", "password.reset_withheld", "user", user.id, remote_addr,
                {"reason": "too_many_requests"},
            )  # fmt: skip
        log.info("password reset for user id %s withheld: too many requests", user.id)
        return
    token = new_token()
    lifetime = timedelta(minutes=settings.web.password_reset_minutes)
    link = f"{settings.hub.base_url.rstrip('/')}/password/reset/{token}"
    message = EmailMessage()
    message["From"] = settings.smtp.from_address
    message["To"] = user.email
    message["Subject"] = f"{settings.hub.name}: password reset"
    message_id = make_msgid(domain=settings.smtp.reply_domain)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    minutes = int(settings.web.password_reset_minutes)
    message.set_content(
        f"Someone asked to reset the password of the account {user.username}.\n\n"
        f"To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n"
        "If it was not you, ignore this message: your password stays as it is.\n"
    )
    async with database.transaction() as session:
        row = PasswordResetToken(
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + lifetime,
        )
        session.add(row)
        await session.flush()
        await enqueue(
            session,
            idempotency_key=f"password-reset:{row.id}",
            case_id=None,
            thread_entry_id=None,
            envelope_from=settings.smtp.from_address,
            recipients=[user.email],
            message_id=message_id,
            message=message.as_bytes(),
        )
        await audit.record(
            session,
            "anonymous",
            "password.reset_requested",
            "user",
            user.id,
            remote_addr,
            {"reset_token_id": row.id},
        )


async def reset_token_valid(database: Database, token: str) -> bool:
    async with database.sessions() as session:
        row = await session.scalar(
            select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash(token))
        )
    return row is not None and row.used_at is None and row.expires_at > utcnow()


async def reset_password(database: Database, token: str, new: str, remote_addr: str | None) -> None:
    """Set a new password with a mailed token; the token works once, before it expires."""
    check_password_policy(new)
    now = utcnow()
    async with database.transaction() as session:
        claimed = await session.execute(
            update(PasswordResetToken)
            .where(
                PasswordResetToken.token_hash == token_hash(token),
                PasswordResetToken.used_at.is_(None),
                PasswordResetToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(PasswordResetToken.user_id)
        )
        user_id = claimed.scalar_one_or_none()
    if user_id is None:
        raise UserError("this reset link is invalid, used or expired; ask for a new one")
    await _set_password(database, user_id, new, f"user:{user_id}", remote_addr, "password.reset")


async def create_api_token(
    database: Database, username: str, name: str, scopes: list[Scope], actor: str = "system:cli"
) -> tuple[int, str]:
    """A new API token for a user (its role still limits it); returns id and token, once."""
    if not scopes:
        raise UserError("an API token needs at least one scope")
    token = new_api_token()
    async with database.transaction() as session:
        user = await session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"no user named {username}")
        row = ApiToken(
            user_id=user.id,
            name=name[:100],
            token_hash=token_hash(token),
            scopes=sorted(s.value for s in scopes),
        )
        session.add(row)
        await session.flush()
        await audit.record(
            session,
            actor,
            "api_token.created",
            "api_token",
            row.id,
            None,
            {"user_id": user.id, "scopes": row.scopes},
        )
    return row.id, token


async def revoke_api_token(database: Database, token_id: int, actor: str = "system:cli") -> None:
    async with database.transaction() as session:
        done = await session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        if getattr(done, "rowcount", 0) != 1:
            raise NotFoundError(f"no live API token {token_id}")
        await audit.record(session, actor, "api_token.revoked", "api_token", token_id, None, {})


async def principal_for_api_token(database: Database, token: str) -> Principal | None:
    """The principal an API token acts as, or None for an unknown or revoked token."""
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None))
            )
        ).one_or_none()
    if row is None:
        return None
    api_token, user = row
    if not user.is_active:
        return None
    base = principal_of(user)
    scopes = frozenset(Scope(s) for s in api_token.scopes if s in Scope._value2member_map_)
    return Principal(
        user_id=base.user_id,
        username=base.username,
        role=base.role,
        creditor_id=base.creditor_id,
        token_id=api_token.id,
        scopes=scopes,
    )

"""Getting into the debtor portal: the link names the case, a second factor proves the person.

The link in every reminder (``/portal/c/<token>``) carries the case's signed reply token
(:mod:`hub.routing.reply_token`): it names the case but anyone holding a forwarded mail has it.
So the portal shows nothing of the case until the visitor passes a second factor, either

* a one-time code: 6 digits mailed to the debtor's verified address on file (the mail holds no
  personal data, so it goes in clear through the outbox), valid for ten minutes, once; stored as
  an HMAC under the web secret (a plain hash of a 6-digit code is reversed by trying them all);
* or the case reference together with the debtor's postal code, compared with the stored
  (encrypted) postal code.

Every wrong attempt counts against the case and the client address in the stored throttle
(:mod:`hub.services.login_throttle`, keys ``portal-case:<id>`` and ``portal-ip:<address>``); a
locked key refuses even the right answer until the lock ends. Wrong postal codes also count
per case and day (``portal-postal-day:<id>``): past that limit the postal factor stays closed
for a day while the mailed code still works for the debtor. Failures say nothing about why.
Success opens a portal session: a random token in its own cookie, its hash in
``portal_sessions`` with the one case it may see, expiring after a short absolute lifetime.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import selectinload

from hub.config import Settings, WebSection
from hub.domain.mail import Language, language_or_default
from hub.errors import UserError
from hub.routing.reply_token import REPLY_PREFIX, parse_reply_address, reply_token_key
from hub.security import audit
from hub.security.tokens import new_token, token_hash
from hub.services import login_throttle
from hub.services.login_throttle import ThrottlePolicy
from hub.services.portal_code_mail import PortalCodeMail, queue_code_mail
from hub.storage.db import Database
from hub.storage.models import Case, Debtor, utcnow
from hub.storage.models_web import PortalCode, PortalSession

log = logging.getLogger(__name__)

CODE_DIGITS = 6
FACTOR_CODE = "code"
FACTOR_POSTAL = "postal"


class PortalDeniedError(UserError):
    """A wrong code, reference or postal code (the message never says which)."""


class PortalLockedError(UserError):
    """Too many wrong attempts for this case or this address: locked for a while."""

    def __init__(self, until: datetime) -> None:
        super().__init__("too many failed attempts; try again later")
        self.until = until


@dataclass(frozen=True)
class PortalPolicy:
    code_lifetime: timedelta = timedelta(minutes=10)
    session_lifetime: timedelta = timedelta(minutes=30)
    #: wrong answers per case within the window before the case's portal locks
    case_threshold: int = 5
    #: wrong answers per client address within the window before the address locks
    ip_threshold: int = 50
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    #: codes mailed per case within the window (more requests are answered but not mailed)
    codes_per_window: int = 3
    #: wrong reference/postal-code answers per case in a day before that factor closes for a
    #: day: a postal code has few values (about 1,100 in Denmark), and the short lock-out
    #: alone would let a stranger holding the reference try every one of them in two days
    postal_per_day: int = 10

    @classmethod
    def from_settings(cls, web: WebSection) -> PortalPolicy:
        """The web section's lock-out figures: per account there, per case here."""
        return cls(
            case_threshold=web.lockout_user_threshold,
            ip_threshold=web.lockout_ip_threshold,
            window=timedelta(minutes=web.lockout_window_minutes),
            lockout=timedelta(minutes=web.lockout_minutes),
        )

    def throttle(self) -> ThrottlePolicy:
        return ThrottlePolicy(self.case_threshold, self.ip_threshold, self.window, self.lockout)


@dataclass(frozen=True)
class PortalSessionInfo:
    session_id: int
    token: str
    case_id: int
    language: Language
    expires_at: datetime


def case_key(case_id: int) -> str:
    return f"portal-case:{case_id}"


def ip_key(remote_addr: str | None) -> str:
    return f"portal-ip:{remote_addr or 'unknown'}"


def postal_day_key(case_id: int) -> str:
    return f"portal-postal-day:{case_id}"


def case_for_token(settings: Settings, token: str) -> int | None:
    """The case a portal link's token names, or None for anything the hub did not sign."""
    if not token or len(token) > 64:
        return None
    domain = settings.smtp.reply_domain
    address = f"{REPLY_PREFIX}{token}@{domain}"
    return parse_reply_address(reply_token_key(settings.security), address, domain=domain)


def code_hash(secret: bytes, case_id: int, code: str) -> str:
    """The keyed hash a code is stored as (bound to its case)."""
    message = f"portal-code:{case_id}:{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normal_postal(value: str) -> str:
    """Postal codes compare without spaces, dashes and case ("DK-2100" = "dk 2100" = "2100")."""
    text = unicodedata.normalize("NFKC", value).casefold()
    text = "".join(ch for ch in text if ch.isalnum())
    # a leading country prefix ("dk2100", "d10115") is how some people write it
    for prefix in ("dk", "de", "d"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            return text[len(prefix) :]
    return text


def normal_reference(value: str) -> str:
    return "".join(value.split()).casefold()


async def _check_lock(
    database: Database, case_id: int, remote_addr: str | None, *more_keys: str
) -> None:
    now = utcnow()
    async with database.sessions() as session:
        until = await login_throttle.locked_until(
            session, [case_key(case_id), ip_key(remote_addr), *more_keys], now
        )
    if until is not None:
        async with database.transaction() as session:
            await audit.record(
                session, "anonymous", "portal.locked_out", "case", case_id, remote_addr, {}
            )
        raise PortalLockedError(until)


async def _fail(
    database: Database, policy: PortalPolicy, case_id: int, remote_addr: str | None, factor: str
) -> None:
    now = utcnow()
    throttle = policy.throttle()
    async with database.transaction() as session:
        locked_case = await login_throttle.record_failure(
            session, case_key(case_id), policy.case_threshold, throttle, now
        )
        locked_ip = await login_throttle.record_failure(
            session, ip_key(remote_addr), policy.ip_threshold, throttle, now
        )
        if factor == FACTOR_POSTAL:
            day = timedelta(days=1)
            daily = ThrottlePolicy(policy.postal_per_day, policy.postal_per_day, day, day)
            locked_case = (
                await login_throttle.record_failure(
                    session, postal_day_key(case_id), policy.postal_per_day, daily, now
                )
                or locked_case
            )
        await audit.record(
            session,
            "anonymous",
            "portal.failed",
            "case",
            case_id,
            remote_addr,
            {"factor": factor, "locked_case": locked_case, "locked_address": locked_ip},
        )
    log.info("portal: wrong %s for case %s", factor, case_id)


async def _open_session(
    database: Database,
    policy: PortalPolicy,
    case_id: int,
    language: Language | None,
    factor: str,
    remote_addr: str | None,
) -> str:
    """A new portal session in ``language``, else in the debtor's own language."""
    now = utcnow()
    token = new_token()
    async with database.transaction() as session:
        if language is None:
            stored = await session.scalar(
                select(Debtor.language)
                .join(Case, Case.debtor_id == Debtor.id)
                .where(Case.id == case_id)
            )
            language = language_or_default(stored, "en")
        session.add(
            PortalSession(
                token_hash=token_hash(token),
                case_id=case_id,
                language=language,
                factor=factor,
                created_at=now,
                expires_at=now + policy.session_lifetime,
            )
        )
        await login_throttle.clear(session, case_key(case_id))
        await audit.record(
            session, f"debtor:case:{case_id}", "portal.opened", "case", case_id, remote_addr,
            {"factor": factor},
        )  # fmt: skip
    log.info("portal: case %s opened by %s", case_id, factor)
    return token


async def request_code(
    database: Database,
    settings: Settings,
    secret: bytes,
    policy: PortalPolicy,
    case_id: int,
    remote_addr: str | None,
    now: datetime | None = None,
) -> bool:
    """Mail a new code to the debtor's verified address; True when one was queued.

    The caller answers the same either way: a stranger learns neither whether an address is
    on file nor whether the limit of codes per window was reached.
    """
    moment = now or utcnow()
    async with database.transaction() as session:
        case = await session.scalar(
            select(Case)
            .where(Case.id == case_id)
            .options(selectinload(Case.debtor).selectinload(Debtor.emails))
        )
        if case is None:
            return False
        emails = case.debtor.emails
        recent = await session.scalar(
            select(func.count(PortalCode.id)).where(
                PortalCode.case_id == case_id, PortalCode.created_at > moment - policy.window
            )
        )
        usable = [e for e in emails if e.status == "active" and e.verified]
        why = None
        if any(e.status == "opted_out" for e in emails) or not usable:
            why = "no_address"
        elif (recent or 0) >= policy.codes_per_window:
            why = "too_many_codes"
        if why is not None:
            await audit.record(
                session, "anonymous", "portal.code_withheld", "case", case_id, remote_addr,
                {"reason": why},
            )  # fmt: skip
            log.info("portal: case %s code withheld (%s)", case_id, why)
            return False
        address = next((e for e in usable if e.is_primary), usable[0]).address
        code = new_code()
        row = PortalCode(
            case_id=case_id,
            code_hash=code_hash(secret, case_id, code),
            created_at=moment,
            expires_at=moment + policy.code_lifetime,
        )
        session.add(row)
        await session.flush()
        minutes = int(policy.code_lifetime.total_seconds() // 60)
        mail = PortalCodeMail(
            code=code,
            minutes=minutes,
            language=_language(case.debtor.language, settings),
            to_addr=address,
        )
        await queue_code_mail(session, settings, mail, idempotency_key=f"portal-code:{row.id}")
        await audit.record(
            session, "anonymous", "portal.code_sent", "case", case_id, remote_addr,
            {"code_id": row.id},
        )  # fmt: skip
    return True


def _language(code: str | None, settings: Settings) -> Language:
    return language_or_default(code, settings.hub.default_language)


async def verify_code(
    database: Database,
    secret: bytes,
    policy: PortalPolicy,
    case_id: int,
    code: str,
    language: Language | None,
    remote_addr: str | None,
) -> str:
    """A portal session's token for the right unused, unexpired code; else raise."""
    await _check_lock(database, case_id, remote_addr)
    offered = "".join(code.split())
    now = utcnow()
    claimed = False
    if offered.isdigit() and len(offered) == CODE_DIGITS:
        async with database.transaction() as session:
            result = await session.execute(
                update(PortalCode)
                .where(
                    PortalCode.case_id == case_id,
                    PortalCode.code_hash == code_hash(secret, case_id, offered),
                    PortalCode.used_at.is_(None),
                    PortalCode.expires_at > now,
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            claimed = bool(result.rowcount)  # type: ignore[attr-defined]
            if claimed:
                # one code opens the portal once; any other outstanding code dies with it
                await session.execute(
                    update(PortalCode)
                    .where(PortalCode.case_id == case_id, PortalCode.used_at.is_(None))
                    .values(used_at=now)
                    .execution_options(synchronize_session=False)
                )
    if not claimed:
        await _fail(database, policy, case_id, remote_addr, FACTOR_CODE)
        raise PortalDeniedError("the code is wrong or no longer valid")
    return await _open_session(database, policy, case_id, language, FACTOR_CODE, remote_addr)


async def verify_postal(
    database: Database,
    policy: PortalPolicy,
    case_id: int,
    reference: str,
    postal_code: str,
    language: Language | None,
    remote_addr: str | None,
) -> str:
    """A portal session's token when reference and postal code both match the case."""
    await _check_lock(database, case_id, remote_addr, postal_day_key(case_id))
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(Case.reference, Debtor.postal_code)
                .join(Debtor, Debtor.id == Case.debtor_id)
                .where(Case.id == case_id)
            )
        ).one_or_none()
    ok = False
    if row is not None and row[1] and postal_code.strip():
        same_ref = hmac.compare_digest(
            normal_reference(row[0]).encode(), normal_reference(reference).encode()
        )
        same_postal = hmac.compare_digest(
            normal_postal(row[1]).encode(), normal_postal(postal_code).encode()
        )
        ok = same_ref and same_postal
    if not ok:
        await _fail(database, policy, case_id, remote_addr, FACTOR_POSTAL)
        raise PortalDeniedError("the details do not match")
    return await _open_session(database, policy, case_id, language, FACTOR_POSTAL, remote_addr)


async def load_portal_session(database: Database, token: str) -> PortalSessionInfo | None:
    """The live portal session a cookie names, or None (unknown, expired)."""
    if not token or len(token) > 100:
        return None
    async with database.sessions() as session:
        row = await session.scalar(
            select(PortalSession).where(PortalSession.token_hash == token_hash(token))
        )
    if row is None or row.expires_at <= utcnow():
        return None
    return PortalSessionInfo(
        row.id, token, row.case_id, language_or_default(row.language, "en"), row.expires_at
    )


async def set_language(database: Database, session_id: int, language: Language) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(PortalSession).where(PortalSession.id == session_id).values(language=language)
        )


async def end_session(database: Database, token: str) -> None:
    async with database.transaction() as session:
        await session.execute(
            delete(PortalSession).where(PortalSession.token_hash == token_hash(token))
        )


async def purge_expired(database: Database, now: datetime | None = None) -> int:
    """Delete expired portal sessions and codes; how many rows went."""
    moment = now or utcnow()
    async with database.transaction() as session:
        sessions = await session.execute(
            delete(PortalSession).where(PortalSession.expires_at <= moment)
        )
        codes = await session.execute(
            delete(PortalCode).where(PortalCode.expires_at <= moment - timedelta(days=1))
        )
    return int(sessions.rowcount or 0) + int(codes.rowcount or 0)  # type: ignore[attr-defined]


__all__ = [
    "PortalDeniedError",
    "PortalLockedError",
    "PortalPolicy",
    "PortalSessionInfo",
    "case_for_token",
    "load_portal_session",
    "request_code",
    "verify_code",
    "verify_postal",
]

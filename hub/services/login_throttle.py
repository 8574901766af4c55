"""Login throttling: failures counted per account and per client address, in the database.

A key (``user:<name>``, ``ip:<address>``) that collects ``threshold`` failures within the
window is locked for the lock-out period. The counters live in the ``login_throttle`` table,
so a restart does not reset them and every web node sharing the database sees the same lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import WebSection
from hub.storage.models_web import LoginThrottle


@dataclass(frozen=True)
class ThrottlePolicy:
    user_threshold: int
    ip_threshold: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, web: WebSection) -> ThrottlePolicy:
        return cls(
            user_threshold=web.lockout_user_threshold,
            ip_threshold=web.lockout_ip_threshold,
            window=timedelta(minutes=web.lockout_window_minutes),
            lockout=timedelta(minutes=web.lockout_minutes),
        )


def user_key(username: str) -> str:
    return "user:" + username.strip().casefold()[:150]


def ip_key(remote_addr: str | None) -> str:
    return "ip:" + (remote_addr or "unknown")


async def locked_until(session: AsyncSession, keys: list[str], now: datetime) -> datetime | None:
    """The latest lock-out end among ``keys`` that is still in the future, or None."""
    rows = (
        await session.execute(
            select(LoginThrottle.locked_until).where(
                LoginThrottle.key.in_(keys), LoginThrottle.locked_until > now
            )
        )
    ).scalars()
    ends = [end for end in rows if end is not None]
    return max(ends) if ends else None


async def record_failure(
    session: AsyncSession, key: str, threshold: int, policy: ThrottlePolicy, now: datetime
) -> bool:
    """Count one failure for ``key``; True when this failure locked it."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = (
        await session.execute(
            select(LoginThrottle)
            .where(LoginThrottle.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if now - row.window_started_at > policy.window:
        row.failures = 0
        row.window_started_at = now
    row.failures += 1
    locked = row.failures >= threshold
    if locked:
        row.locked_until = now + policy.lockout
        row.failures = 0
        row.window_started_at = now
    await session.flush()
    return locked


async def clear(session: AsyncSession, key: str) -> None:
    await session.execute(
        update(LoginThrottle).where(LoginThrottle.key == key).values(failures=0, locked_until=None)
    )

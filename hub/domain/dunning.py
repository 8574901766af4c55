"""Dunning policies: which reminder level is due for a case, and when it may be sent.

Pure rules, no I/O. A creditor's policy is a list of levels, each due a number of days after the
claim's due date (level 1) or after the previous level was sent, with a fee; plus the debtor's
quiet hours, during which no mail goes out, and the encryption policy for the creditor's mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.domain.case_state import CaseState, may_dun
from hub.errors import UserError


class LevelKind(StrEnum):
    FRIENDLY = "friendly"
    FIRST = "first"
    SECOND = "second"
    FINAL = "final"


class EncryptionPolicy(StrEnum):
    #: encrypt when the debtor has a usable key, otherwise a notice without personal data
    ENCRYPT_OR_NOTICE = "encrypt-or-notice"
    #: encrypt, or send nothing and show why on the case
    REQUIRE_ENCRYPTION = "require-encryption"
    #: encrypt when possible, otherwise send the reminder in clear
    OPPORTUNISTIC = "opportunistic"


@dataclass(frozen=True)
class DunningLevel:
    level: int
    kind: LevelKind
    #: days after the due date (level 1) or after the previous level was sent
    days_after: int
    fee: Decimal


@dataclass(frozen=True)
class QuietHours:
    """Local times between which nothing is sent (start > end wraps over midnight)."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class DunningPolicy:
    levels: tuple[DunningLevel, ...]
    quiet_hours: QuietHours = QuietHours()
    encryption: EncryptionPolicy = EncryptionPolicy.ENCRYPT_OR_NOTICE
    #: days a promised date is given before dunning resumes by itself
    promise_grace_days: int = 3

    def level(self, number: int) -> DunningLevel:
        for candidate in self.levels:
            if candidate.level == number:
                return candidate
        raise KeyError(number)

    def fees_up_to(self, number: int) -> Decimal:
        return sum((lvl.fee for lvl in self.levels if lvl.level <= number), Decimal("0"))


DEFAULT_POLICY = DunningPolicy(
    levels=(
        DunningLevel(1, LevelKind.FRIENDLY, 7, Decimal("0")),
        DunningLevel(2, LevelKind.FIRST, 14, Decimal("5.00")),
        DunningLevel(3, LevelKind.SECOND, 14, Decimal("5.00")),
        DunningLevel(4, LevelKind.FINAL, 14, Decimal("10.00")),
    )
)


def _parse_time(value: Any, key: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"dunning.{key}: {value!r} is not a time like 21:00") from None


def policy_from_settings(raw: Mapping[str, Any] | None) -> DunningPolicy:
    """Read a creditor's ``settings["dunning"]`` mapping; missing keys take the defaults."""
    if not raw:
        return DEFAULT_POLICY
    levels = DEFAULT_POLICY.levels
    if "levels" in raw:
        parsed = []
        for index, item in enumerate(raw["levels"], start=1):
            try:
                parsed.append(
                    DunningLevel(
                        level=index,
                        kind=LevelKind(item.get("kind", LevelKind.FIRST)),
                        days_after=int(item["days_after"]),
                        fee=Decimal(str(item.get("fee", "0"))),
                    )
                )
            except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
                raise UserError(f"dunning.levels[{index}]: {exc}") from None
        if not parsed:
            raise UserError("dunning.levels: at least one level is needed")
        levels = tuple(parsed)
    quiet = DEFAULT_POLICY.quiet_hours
    if "quiet_hours" in raw:
        start, end = raw["quiet_hours"]
        quiet = QuietHours(_parse_time(start, "quiet_hours"), _parse_time(end, "quiet_hours"))
    try:
        encryption = EncryptionPolicy(raw.get("encryption", DEFAULT_POLICY.encryption))
    except ValueError:
        raise UserError(
            f"dunning.encryption: must be one of {', '.join(p.value for p in EncryptionPolicy)}"
        ) from None
    grace = int(raw.get("promise_grace_days", DEFAULT_POLICY.promise_grace_days))
    return DunningPolicy(levels, quiet, encryption, grace)


@dataclass(frozen=True)
class CaseDunningView:
    """What the rules need to know about a case."""

    state: CaseState
    due_date: date
    dunning_level: int
    last_reminder_at: datetime | None
    paused_until: datetime | None


def due_level(case: CaseDunningView, policy: DunningPolicy, now: datetime) -> DunningLevel | None:
    """The next level to send now, or None (paused, finished, or not yet due)."""
    if not may_dun(case.state):
        return None
    if case.paused_until is not None and case.paused_until > now:
        return None
    number = case.dunning_level + 1
    try:
        level = policy.level(number)
    except KeyError:
        return None  # every level was sent: handing over is a person's decision
    if number == 1 or case.last_reminder_at is None:
        since = datetime.combine(case.due_date, time(0), tzinfo=UTC)
    else:
        since = case.last_reminder_at
    return level if now >= since + timedelta(days=level.days_after) else None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_send_time(now: datetime, timezone: str, quiet: QuietHours) -> datetime:
    """``now`` if it is outside the debtor's quiet hours, else when they end (in UTC)."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return now
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += timedelta(days=1)
    end_local = datetime.combine(end_day, quiet.end, tzinfo=tz)
    return end_local.astimezone(UTC)

"""The pure dunning rules: which level is due, quiet hours, policy parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from hub.domain.case_state import CaseState
from hub.domain.dunning import (
    DEFAULT_POLICY,
    CaseDunningView,
    EncryptionPolicy,
    LevelKind,
    QuietHours,
    due_level,
    next_send_time,
    policy_from_settings,
)
from hub.errors import UserError

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def view(**kw: object) -> CaseDunningView:
    base: dict[str, object] = {
        "state": CaseState.OPEN,
        "due_date": date(2026, 2, 1),
        "dunning_level": 0,
        "last_reminder_at": None,
        "paused_until": None,
    }
    base.update(kw)
    return CaseDunningView(**base)  # type: ignore[arg-type]


def test_first_level_due_days_after_due_date() -> None:
    first = DEFAULT_POLICY.levels[0]
    due = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=first.days_after)
    assert due_level(view(), DEFAULT_POLICY, due - timedelta(seconds=1)) is None
    level = due_level(view(), DEFAULT_POLICY, due)
    assert level is not None and level.level == 1


def test_next_level_counts_from_previous_reminder() -> None:
    sent = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    case = view(state=CaseState.REMINDED, dunning_level=1, last_reminder_at=sent)
    gap = DEFAULT_POLICY.level(2).days_after
    assert due_level(case, DEFAULT_POLICY, sent + timedelta(days=gap - 1)) is None
    level = due_level(case, DEFAULT_POLICY, sent + timedelta(days=gap))
    assert level is not None and level.level == 2 and level.fee == Decimal("5.00")


@pytest.mark.parametrize(
    "state",
    [s for s in CaseState if s not in (CaseState.OPEN, CaseState.REMINDED)],
)
def test_no_reminder_in_paused_or_finished_states(state: CaseState) -> None:
    assert due_level(view(state=state), DEFAULT_POLICY, NOW) is None


def test_paused_until_blocks_until_it_passes() -> None:
    case = view(paused_until=NOW + timedelta(hours=1))
    assert due_level(case, DEFAULT_POLICY, NOW) is None
    assert due_level(case, DEFAULT_POLICY, NOW + timedelta(hours=2)) is not None


def test_after_last_level_nothing_more() -> None:
    last = len(DEFAULT_POLICY.levels)
    case = view(state=CaseState.REMINDED, dunning_level=last, last_reminder_at=NOW)
    assert due_level(case, DEFAULT_POLICY, NOW + timedelta(days=365)) is None


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(20, 59), False),
        (time(21, 0), True),
        (time(2, 0), True),
        (time(7, 59), True),
        (time(8, 0), False),
    ],
)
def test_quiet_hours_wrap_midnight(local: time, quiet: bool) -> None:
    assert QuietHours().contains(local) is quiet


def test_next_send_time_in_debtor_zone() -> None:
    # 22:30 in Copenhagen (UTC+1 in winter) -> 08:00 local next day = 07:00 UTC
    now = datetime(2026, 1, 15, 21, 30, tzinfo=UTC)
    assert next_send_time(now, "Europe/Copenhagen", QuietHours()) == datetime(
        2026, 1, 16, 7, 0, tzinfo=UTC
    )
    # 03:00 local -> 08:00 the same local day
    now = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    assert next_send_time(now, "Europe/Copenhagen", QuietHours()) == datetime(
        2026, 1, 15, 7, 0, tzinfo=UTC
    )
    # midday: now
    assert next_send_time(NOW, "Europe/Berlin", QuietHours()) == NOW
    # New York evening while it is day in Europe
    late_ny = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)  # 22:00 in New York
    assert next_send_time(late_ny, "America/New_York", QuietHours()) == datetime(
        2026, 1, 16, 13, 0, tzinfo=UTC
    )


def test_policy_from_settings() -> None:
    policy = policy_from_settings(
        {
            "levels": [
                {"kind": "friendly", "days_after": 3},
                {"kind": "final", "days_after": 10, "fee": "12.50"},
            ],
            "quiet_hours": ["20:00", "09:00"],
            "encryption": "require-encryption",
        }
    )
    assert [lvl.kind for lvl in policy.levels] == [LevelKind.FRIENDLY, LevelKind.FINAL]
    assert policy.fees_up_to(2) == Decimal("12.50")
    assert policy.quiet_hours.contains(time(20, 30))
    assert policy.encryption is EncryptionPolicy.REQUIRE_ENCRYPTION
    assert policy_from_settings(None) is DEFAULT_POLICY


@pytest.mark.parametrize(
    "raw",
    [
        {"levels": []},
        {"levels": [{"kind": "friendly"}]},
        {"levels": [{"kind": "nope", "days_after": 1}]},
        {"quiet_hours": ["25:00", "08:00"]},
        {"encryption": "sometimes"},
    ],
)
def test_bad_policy_is_a_clear_error(raw: dict[str, object]) -> None:
    with pytest.raises(UserError, match="dunning"):
        policy_from_settings(raw)

"""The case state machine, exhaustively: every (state, event) pair, reachability, invariants."""

from __future__ import annotations

import itertools
from collections import deque

import pytest

from hub.domain.case_state import (
    ACTIVE_STATES,
    PAUSED_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    CaseEvent,
    CaseState,
    allowed_events,
    may_dun,
    transition,
)
from hub.errors import IllegalTransitionError, UserError

ALL_PAIRS = list(itertools.product(CaseState, CaseEvent))
LEAVE_TERMINAL = {CaseEvent.REOPENED, CaseEvent.PAYMENT_REVERSED}


def test_table_only_names_known_states_and_events() -> None:
    for (state, event), target in TRANSITIONS.items():
        assert isinstance(state, CaseState)
        assert isinstance(event, CaseEvent)
        assert isinstance(target, CaseState)


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=lambda v: str(v))
def test_every_pair(state: CaseState, event: CaseEvent) -> None:
    if (state, event) in TRANSITIONS:
        result = transition(state, event)
        assert result is TRANSITIONS[(state, event)]
        assert event in allowed_events(state)
    else:
        with pytest.raises(IllegalTransitionError) as info:
            transition(state, event)
        assert isinstance(info.value, UserError)  # the caller's mistake, never retried
        assert repr(state.value) in str(info.value)
        assert repr(event.value) in str(info.value)
        assert event not in allowed_events(state)


def test_table_is_neither_empty_nor_total() -> None:
    # both branches of test_every_pair are exercised
    assert 0 < len(TRANSITIONS) < len(ALL_PAIRS)


def test_some_expected_moves() -> None:
    assert transition(CaseState.OPEN, CaseEvent.REMINDER_SENT) is CaseState.REMINDED
    assert transition(CaseState.REMINDED, CaseEvent.REMINDER_SENT) is CaseState.REMINDED
    assert transition(CaseState.PROMISED, CaseEvent.PROMISE_BROKEN) is CaseState.REMINDED
    assert transition(CaseState.PLAN_REQUESTED, CaseEvent.PLAN_APPROVED) is CaseState.PLAN_ACTIVE
    assert transition(CaseState.DISPUTED, CaseEvent.DISPUTE_UPHELD) is CaseState.CLOSED
    assert transition(CaseState.PAID, CaseEvent.PAYMENT_REVERSED) is CaseState.REMINDED
    with pytest.raises(IllegalTransitionError):
        transition(CaseState.PAID, CaseEvent.REMINDER_SENT)
    with pytest.raises(IllegalTransitionError):
        transition(CaseState.DISPUTED, CaseEvent.REMINDER_SENT)


def test_every_event_is_used_somewhere() -> None:
    used = {event for (_state, event) in TRANSITIONS}
    assert used == set(CaseEvent)


def test_every_state_is_reachable_from_open() -> None:
    seen = {CaseState.OPEN}
    queue = deque([CaseState.OPEN])
    while queue:
        state = queue.popleft()
        for event in allowed_events(state):
            target = transition(state, event)
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(CaseState)


def test_every_active_state_can_end() -> None:
    for state in ACTIVE_STATES:
        targets = {transition(state, event) for event in allowed_events(state)}
        assert targets & TERMINAL_STATES, state


def test_states_partition_into_dunning_paused_and_terminal() -> None:
    dunning = {CaseState.OPEN, CaseState.REMINDED}
    assert dunning | PAUSED_STATES | TERMINAL_STATES == set(CaseState)
    assert not dunning & PAUSED_STATES
    assert not dunning & TERMINAL_STATES
    assert not PAUSED_STATES & TERMINAL_STATES
    assert set(CaseState) - TERMINAL_STATES == ACTIVE_STATES


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_states_are_left_only_by_reopen_or_reversal(state: CaseState) -> None:
    events = allowed_events(state)
    assert events, f"{state} cannot be left at all"
    assert events <= LEAVE_TERMINAL
    for event in events:
        assert transition(state, event) in ACTIVE_STATES


def test_reopen_and_reversal_only_apply_to_terminal_states() -> None:
    for (state, event), _target in TRANSITIONS.items():
        if event in LEAVE_TERMINAL:
            assert state in TERMINAL_STATES, (state, event)


@pytest.mark.parametrize("state", sorted(ACTIVE_STATES))
def test_dispute_is_accepted_in_every_live_state(state: CaseState) -> None:
    assert transition(state, CaseEvent.DISPUTE_RECEIVED) is CaseState.DISPUTED


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_dispute_is_refused_in_terminal_states(state: CaseState) -> None:
    with pytest.raises(IllegalTransitionError):
        transition(state, CaseEvent.DISPUTE_RECEIVED)


@pytest.mark.parametrize("state", list(CaseState))
def test_may_dun_only_when_open_or_reminded(state: CaseState) -> None:
    assert may_dun(state) is (state in {CaseState.OPEN, CaseState.REMINDED})


@pytest.mark.parametrize("state", list(CaseState))
def test_reminder_sent_only_where_dunning_or_a_plan_runs(state: CaseState) -> None:
    accepted = CaseEvent.REMINDER_SENT in allowed_events(state)
    assert accepted is (may_dun(state) or state is CaseState.PLAN_ACTIVE)


@pytest.mark.parametrize("state", sorted(ACTIVE_STATES))
def test_partial_payment_keeps_the_state(state: CaseState) -> None:
    assert transition(state, CaseEvent.PARTIAL_PAYMENT) is state


def test_values_are_stable_strings() -> None:
    # the database stores the values: renaming one needs a migration
    assert CaseState("plan_active") is CaseState.PLAN_ACTIVE
    assert {s.value for s in CaseState} >= {"open", "reminded", "disputed", "paid", "closed"}

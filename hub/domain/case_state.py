"""The case state machine: states, events, and one transition table.

``transition(state, event)`` is pure: it returns the next state or raises
:class:`~hub.errors.IllegalTransitionError`. Every other part of the hub moves a case only
through it, so the table below is the whole truth about what may happen to a case.
"""

from __future__ import annotations

from enum import StrEnum

from hub.errors import IllegalTransitionError


class CaseState(StrEnum):
    OPEN = "open"  # handed over to us, nothing sent yet
    REMINDED = "reminded"  # at least one reminder sent, dunning runs
    DISPUTED = "disputed"  # the debtor contests the claim: dunning paused
    PROMISED = "promised"  # the debtor promised to pay by a date: dunning suspended until then
    PLAN_REQUESTED = "plan_requested"  # an installment plan awaits a collector's decision
    PLAN_ACTIVE = "plan_active"  # an approved plan runs: reminders per installment only
    ON_HOLD = "on_hold"  # paused by a collector (hardship, cease contact, bounced address…)
    HANDED_OVER = "handed_over"  # passed on to legal proceedings: no more dunning mail
    PAID = "paid"  # settled in full (terminal unless a payment is reversed)
    CLOSED = "closed"  # closed without full payment: written off, dispute upheld
    WITHDRAWN = "withdrawn"  # withdrawn by the creditor


class CaseEvent(StrEnum):
    REMINDER_SENT = "reminder_sent"
    DISPUTE_RECEIVED = "dispute_received"
    DISPUTE_REJECTED = "dispute_rejected"  # a collector found the claim valid: dunning resumes
    DISPUTE_UPHELD = "dispute_upheld"  # the claim is dropped
    PROMISE_RECEIVED = "promise_received"
    PROMISE_BROKEN = "promise_broken"  # the date plus grace passed without the money
    PROMISE_KEPT = "promise_kept"  # a partial payment promised came: dunning resumes for the rest
    PLAN_REQUESTED = "plan_requested"
    PLAN_APPROVED = "plan_approved"
    PLAN_REJECTED = "plan_rejected"
    PLAN_DEFAULTED = "plan_defaulted"  # an installment was missed
    PUT_ON_HOLD = "put_on_hold"
    RESUMED = "resumed"
    PARTIAL_PAYMENT = "partial_payment"
    PAID_IN_FULL = "paid_in_full"
    PAYMENT_REVERSED = "payment_reversed"
    HANDED_OVER = "handed_over"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    REOPENED = "reopened"


S, E = CaseState, CaseEvent

#: States in which no dunning reminder may be sent.
PAUSED_STATES = frozenset({S.DISPUTED, S.PROMISED, S.PLAN_REQUESTED, S.PLAN_ACTIVE, S.ON_HOLD})
#: States in which a case is finished; only a reopen (or a reversed payment) leaves them.
TERMINAL_STATES = frozenset({S.PAID, S.CLOSED, S.WITHDRAWN, S.HANDED_OVER})
ACTIVE_STATES = frozenset(S) - TERMINAL_STATES

_DUNNING = (S.OPEN, S.REMINDED)
_LIVE = (S.OPEN, S.REMINDED, S.DISPUTED, S.PROMISED, S.PLAN_REQUESTED, S.PLAN_ACTIVE, S.ON_HOLD)


def _table() -> dict[tuple[CaseState, CaseEvent], CaseState]:
    t: dict[tuple[CaseState, CaseEvent], CaseState] = {}

    def allow(sources: tuple[CaseState, ...], event: CaseEvent, target: CaseState) -> None:
        for source in sources:
            t[(source, event)] = target

    allow(_DUNNING, E.REMINDER_SENT, S.REMINDED)
    # a plan's installment reminders do not leave the plan
    allow((S.PLAN_ACTIVE,), E.REMINDER_SENT, S.PLAN_ACTIVE)

    # a dispute always wins: it can arrive whatever else is going on
    allow(_LIVE, E.DISPUTE_RECEIVED, S.DISPUTED)
    allow((S.DISPUTED,), E.DISPUTE_REJECTED, S.REMINDED)
    allow((S.DISPUTED,), E.DISPUTE_UPHELD, S.CLOSED)

    allow((*_DUNNING, S.PROMISED, S.ON_HOLD), E.PROMISE_RECEIVED, S.PROMISED)
    allow((S.PROMISED,), E.PROMISE_BROKEN, S.REMINDED)
    allow((S.PROMISED,), E.PROMISE_KEPT, S.REMINDED)

    allow((*_DUNNING, S.PROMISED, S.ON_HOLD, S.PLAN_ACTIVE), E.PLAN_REQUESTED, S.PLAN_REQUESTED)
    allow((S.PLAN_REQUESTED,), E.PLAN_APPROVED, S.PLAN_ACTIVE)
    allow((S.PLAN_REQUESTED,), E.PLAN_REJECTED, S.REMINDED)
    allow((S.PLAN_ACTIVE,), E.PLAN_DEFAULTED, S.REMINDED)

    allow((*_DUNNING, S.PROMISED, S.PLAN_REQUESTED), E.PUT_ON_HOLD, S.ON_HOLD)
    allow((S.ON_HOLD,), E.RESUMED, S.REMINDED)

    # a partial payment changes the balance, not the state
    for state in _LIVE:
        t[(state, E.PARTIAL_PAYMENT)] = state
    allow(_LIVE, E.PAID_IN_FULL, S.PAID)
    allow((S.PAID,), E.PAYMENT_REVERSED, S.REMINDED)

    allow(_LIVE, E.HANDED_OVER, S.HANDED_OVER)
    allow(_LIVE, E.CLOSED, S.CLOSED)
    allow(_LIVE, E.WITHDRAWN, S.WITHDRAWN)
    allow((S.CLOSED, S.WITHDRAWN, S.HANDED_OVER), E.REOPENED, S.REMINDED)
    return t


#: The whole state machine: (state, event) -> next state. Anything absent is illegal.
TRANSITIONS: dict[tuple[CaseState, CaseEvent], CaseState] = _table()


def transition(state: CaseState, event: CaseEvent) -> CaseState:
    """Return the state a case in ``state`` reaches by ``event``, or raise."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransitionError(
            f"a case in state {state.value!r} cannot take the event {event.value!r}"
        ) from None


def allowed_events(state: CaseState) -> frozenset[CaseEvent]:
    """The events a case in ``state`` accepts (for the UI's buttons)."""
    return frozenset(event for (source, event) in TRANSITIONS if source == state)


def may_dun(state: CaseState) -> bool:
    """True when a dunning reminder may be queued for a case in ``state``."""
    return state in _DUNNING

"""Which of a debtor's addresses a reminder or an answer goes to."""

from __future__ import annotations

from hub.services.dunning_facts import pick_address
from hub.storage.models import DebtorEmail


def _email(address: str, *, primary: bool = False, status: str = "active", verified: bool = True):
    return DebtorEmail(address=address, address_hash="h" + address, is_primary=primary,
                       status=status, verified=verified)  # fmt: skip


def test_primary_active_verified_wins() -> None:
    emails = [_email("a@example.com"), _email("b@example.com", primary=True)]
    assert pick_address(emails) == ("b@example.com", None)


def test_unverified_address_is_never_written_to() -> None:
    emails = [_email("new@example.com", primary=True, verified=False)]
    assert pick_address(emails) == (None, "undeliverable")
    emails.append(_email("old@example.com"))
    assert pick_address(emails) == ("old@example.com", None)


def test_opt_out_of_any_address_stops_email() -> None:
    emails = [_email("a@example.com", primary=True), _email("b@example.com", status="opted_out")]
    assert pick_address(emails) == (None, "opted_out")


def test_undeliverable_and_none() -> None:
    assert pick_address([]) == (None, "no_email")
    assert pick_address([_email("a@example.com", status="undeliverable")]) == (
        None,
        "undeliverable",
    )

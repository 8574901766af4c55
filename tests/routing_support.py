"""Test support for routing: a small world of creditors, debtors, cases and sent reminders.

Built directly with the ORM in the test's own database, so each routing test knows exactly
which case a message must land in (or that it must land in none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from hub.crypto.at_rest import Keyring
from hub.routing.reply_token import make_bounce_address, make_reply_address
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, DebtorEmail, OutboxMessage, ThreadEntry

REPLY_DOMAIN = "hub.example"
#: debtor name -> (creditor code, addresses, [(case name, reference, state)])
DEBTORS: dict[str, tuple[str, tuple[str, ...], list[tuple[str, str, str]]]] = {
    "alice": ("NORD", ("alice@example.org",), [("A1", "NL-2025-004711", "reminded")]),
    "bob": (
        "NORD",
        ("bob@example.net",),
        [("A2", "NL-2025-000002", "reminded"), ("A3", "NL-2025-000003", "open")],
    ),
    "dave": (
        "NORD",
        ("dave@example.org", "dave.old@example.org"),
        [("A4", "NL-2025-000004", "reminded"), ("A5", "NL-2024-000005", "paid")],
    ),
    "carol": ("KOBEN", ("carol@example.com",), [("B1", "KB-77-1234", "reminded")]),
    # the same reference string at two creditors
    "erin": ("NORD", ("erin@example.org",), [("A6", "DUP-1001", "reminded")]),
    "frank": ("KOBEN", ("frank@example.com",), [("B2", "DUP-1001", "reminded")]),
    # an address imported but never confirmed
    "gina": ("NORD", (), [("A7", "NL-2025-000007", "reminded")]),
}
UNVERIFIED_ADDRESS = "gina@example.org"


@dataclass
class World:
    key: bytes
    keyring: Keyring
    case: dict[str, int] = field(default_factory=dict)
    debtor: dict[str, int] = field(default_factory=dict)
    #: case name -> Message-ID of its reminder, and the outbox row that sent it
    reminder_id: dict[str, str] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    inbound_id: str = "<debtor-wrote-this@example.org>"

    def reply_address(self, case: str) -> str:
        return make_reply_address(self.key, self.case[case], REPLY_DOMAIN)

    def bounce_address(self, case: str) -> str:
        return make_bounce_address(self.key, self.outbox[case], REPLY_DOMAIN)

    def names(self, case_ids: tuple[int, ...]) -> set[str]:
        by_id = {v: k for k, v in self.case.items()}
        return {by_id[c] for c in case_ids}


def tamper(address: str) -> str:
    """The address with one token character changed: same shape, wrong HMAC."""
    local, _, domain = address.partition("@")
    last = local[-1]
    return f"{local[:-1]}{'a' if last != 'a' else 'b'}@{domain}"


async def build_world(database: Database, reply_key: bytes) -> World:
    world = World(key=reply_key, keyring=database.keyring)
    async with database.transaction() as session:
        creditors: dict[str, int] = {}
        for code in ("NORD", "KOBEN"):
            creditor = Creditor(code=code, name=f"{code} GmbH")
            session.add(creditor)
            await session.flush()
            creditors[code] = creditor.id
        for name, (code, addresses, cases) in DEBTORS.items():
            debtor = Debtor(
                creditor_id=creditors[code],
                external_ref=f"D-{name}",
                name=name.title(),
                name_hash=database.keyring.lookup_hash("name:" + name),
            )
            session.add(debtor)
            await session.flush()
            world.debtor[name] = debtor.id
            for index, address in enumerate(addresses):
                session.add(
                    DebtorEmail(
                        debtor_id=debtor.id,
                        address=address,
                        address_hash=database.keyring.email_hash(address),
                        is_primary=index == 0,
                    )
                )
            if name == "gina":
                session.add(
                    DebtorEmail(
                        debtor_id=debtor.id,
                        address=UNVERIFIED_ADDRESS,
                        address_hash=database.keyring.email_hash(UNVERIFIED_ADDRESS),
                        verified=False,
                    )
                )
            for case_name, reference, state in cases:
                case = Case(
                    creditor_id=creditors[code],
                    debtor_id=debtor.id,
                    reference=reference,
                    claim_amount=Decimal("120.00"),
                    currency="EUR",
                    due_date=date(2025, 1, 31),
                    state=state,
                )
                session.add(case)
                await session.flush()
                world.case[case_name] = case.id
                message_id = f"<reminder-{case_name.lower()}.x1@{REPLY_DOMAIN}>"
                entry = ThreadEntry(
                    case_id=case.id, seq=1, kind="reminder", actor="system:dunning",
                    message_id=message_id, subject="Payment reminder", body="...",
                )  # fmt: skip
                session.add(entry)
                await session.flush()
                row = OutboxMessage(
                    case_id=case.id, thread_entry_id=entry.id,
                    idempotency_key=f"reminder:{case.id}:1", envelope_from="x@hub.example",
                    recipients=addresses[0] if addresses else UNVERIFIED_ADDRESS,
                    recipient_domain="example.org", message_id=message_id, message=b"...",
                    state="sent",
                )  # fmt: skip
                session.add(row)
                await session.flush()
                world.reminder_id[case_name] = message_id
                world.outbox[case_name] = row.id
        # a message the debtor sent us: its Message-ID is NOT ours and names no case
        session.add(
            ThreadEntry(
                case_id=world.case["B1"], seq=2, kind="inbound", actor="debtor",
                message_id=world.inbound_id,
            )
        )  # fmt: skip
        # a password-reset mail of ours: in the outbox, but of no case
        session.add(
            OutboxMessage(
                case_id=None, idempotency_key="reset:1", envelope_from="x@hub.example",
                recipients="staff@hub.example", recipient_domain="hub.example",
                message_id=f"<reset-1@{REPLY_DOMAIN}>", message=b"...", state="sent",
            )
        )  # fmt: skip
    return world

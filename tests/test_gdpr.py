"""Export and erasure of one person (Art. 15/17 GDPR) on SQLite and PostgreSQL.

The first person of ``sample_personal_data`` has a value in every encrypted column; a second
person of the same creditor (``gdpr_sample``) must come through untouched. After the erasure
every column of every table is read back decrypted and searched, the SQLite files and pg_dump
are searched, and on SQLite the old ciphertext must be gone from the files (VACUUM).
"""

from __future__ import annotations

import asyncio
import json
import stat
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
import sample_personal_data as first
from gdpr_sample import (
    OTHER_STRINGS,
    PERSON_STRINGS,
    found_strings,
    owned_rows,
    populate_other,
    readable_text,
    snapshot,
)
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from test_no_plaintext_in_dump import assert_no_personal_data, pg_dump, sqlite_files

from hub.config import Settings
from hub.security.audit import chain_status
from hub.services.gdpr_archive import safe_name
from hub.services.gdpr_erase import LegalHoldError, erase_person, personal_needles, scrub
from hub.services.gdpr_export import export_person
from hub.services.gdpr_scope import NOT_SUBJECT_TABLES, SUBJECT_TABLES
from hub.storage.db import Database
from hub.storage.models import (
    Attachment,
    AuditEntry,
    Case,
    Classification,
    Debtor,
    InboundMessage,
    OutboxMessage,
    ThreadEntry,
    encrypted_columns,
    utcnow,
)
from hub.storage.models_cases import InstallmentPlan, Payment
from hub.storage.models_web import PortalCode

HOSTILE_NAME = "../../../etc/evil\\name.eml"


async def _setup(database: Database) -> tuple[dict[str, int], dict[str, int]]:
    ids = await first.populate(database)
    other = await populate_other(database, ids["creditor"])
    async with database.transaction() as s:
        s.add(
            Attachment(
                thread_entry_id=ids["entry"],
                filename=HOSTILE_NAME,
                content_type="message/rfc822",
                size=4,
                sha256="0" * 64,
                content=b"evil",
            )
        )
    return ids, other


def _zip_text(path: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        text = "\n".join(z.read(n).decode("utf-8", "replace") for n in names)
    return names, text.lower()


def test_every_encrypted_table_is_known_to_the_erasure() -> None:
    tables = {t for t, _ in encrypted_columns()}
    assert tables <= SUBJECT_TABLES | NOT_SUBJECT_TABLES, tables - SUBJECT_TABLES


def test_safe_names_stay_in_their_folder() -> None:
    assert safe_name(HOSTILE_NAME) == "name.eml"
    assert safe_name("..") == "file"
    assert safe_name("/etc/passwd") == "passwd"
    assert safe_name("Kontoauszug März.pdf") == "Kontoauszug_Marz.pdf"
    assert safe_name("a\x00b\r\n.txt") == "a_b_.txt"


def test_scrub_keeps_facts_and_drops_the_person() -> None:
    needles = personal_needles([first.NAME, first.EMAIL, first.CITY])
    meta = {
        "level": 2,
        "state": {"from": "open", "to": "reminded"},
        "protection": "pgp",
        "proposed_address": {"redacted": "q***@otter-post.example"},
        "why": "sender Quirinius wrote from Kleinwuppertalhausen",
        "note": "contact someone@example.org",
        "rules": [{"rule": "reply_token", "outcome": "matched"}],
        "in_reply_to": "<r-17.3@hub.invalid>",
        "references": ["<abc@zebrafinch-mail.example>", "<x1@hub.invalid>"],
    }
    assert scrub(meta, needles) == {
        "in_reply_to": "<r-17.3@hub.invalid>",
        "references": ["[erased]", "<x1@hub.invalid>"],
        "level": 2,
        "state": {"from": "open", "to": "reminded"},
        "protection": "pgp",
        "why": "[erased]",
        "note": "[erased]",
        "rules": [{"rule": "reply_token", "outcome": "matched"}],
    }


async def test_export_holds_the_person_and_no_one_else(database: Database, tmp_path: Path) -> None:
    ids, _ = await _setup(database)
    out = tmp_path / "export" / "person.zip"
    result = await export_person(
        database, first.EMAIL.upper(), out, creditor_code=None, actor="cli:tester"
    )
    assert result.debtor_id == ids["debtor"] and result.cases == 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    names, text = _zip_text(out)
    ref = first.CANARY
    for expected in ("person.json", "cases.json", f"threads/{ref}.json", "processing.json"):
        assert expected in names
    assert "README.txt" in names
    assert all(".." not in n and not n.startswith("/") and "\\" not in n for n in names)
    assert f"originals/{ref}/0001-attachments/name.eml" in names
    assert f"originals/{ref}/0001-attachments/{first.ATTACHMENT_NAME}" in names
    with zipfile.ZipFile(out) as z:
        assert z.read(f"originals/{ref}/0001-attachments/{first.ATTACHMENT_NAME}") == (
            first.ATTACHMENT
        )
        eml = [n for n in names if n.endswith(".eml") and "attachments" not in n]
        # the entry's raw message, the inbound raw, the outbox message, the quarantined copy
        assert len(eml) == 4, eml
        assert all(z.read(n) == first.RAW_MESSAGE for n in eml)
        person = json.loads(z.read("person.json"))
        cases = json.loads(z.read("cases.json"))
        thread = json.loads(z.read(f"threads/{ref}.json"))
    assert person["name"] == first.NAME and person["city"] == first.CITY
    assert {e["address"] for e in person["email_addresses"]} == {first.EMAIL, first.SECOND_EMAIL}
    assert person["keys"][0]["fingerprint"] == "ABCDEF"
    assert cases[0]["claim_amount"] == "1250.5000" or Decimal(cases[0]["claim_amount"]) == Decimal(
        "1250.50"
    )
    assert cases[0]["payments"][0]["remittance_text"] == first.PAYMENT_TEXT
    assert cases[0]["installment_plans"][0]["installments"] == []
    entry = thread["entries"][0]
    assert entry["body"] == first.BODY and entry["subject"] == first.SUBJECT
    assert entry["classifications"][0]["intent"] == "dispute"
    missing = found_strings(text, PERSON_STRINGS)
    assert sorted(missing) == sorted(PERSON_STRINGS), set(PERSON_STRINGS) - set(missing)
    assert found_strings(text, OTHER_STRINGS) == []
    async with database.sessions() as s:
        entry_row = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "gdpr.export"))
        ).one()
    assert entry_row.actor == "cli:tester" and entry_row.object_id == str(ids["debtor"])
    assert entry_row.details["sha256"] == result.sha256
    details = json.dumps(entry_row.details).lower()
    assert found_strings(details, PERSON_STRINGS) == []


async def test_erase_leaves_no_trace_and_keeps_the_claim(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    ids, other = await _setup(database)
    async with database.transaction() as s:
        for case_id in (ids["case"], other["case"]):
            s.add(PortalCode(case_id=case_id, code_hash="h" * 64, expires_at=utcnow()))
    before = await snapshot(database)
    assert found_strings(readable_text(before), PERSON_STRINGS) == PERSON_STRINGS
    other_rows = await owned_rows(database, other["debtor"])
    old_cipher = await first.raw_values(database)

    dry = await erase_person(
        database, "C-1001", creditor_code="ACME", actor="cli:tester", reason="test", dry_run=True
    )
    assert dry.dry_run and dry.rows["cases"] == 1 and dry.rows["debtor_emails"] == 2
    assert await snapshot(database) == before

    report = await erase_person(
        database, "C-1001", creditor_code="ACME", actor="cli:tester", reason="Art. 17 request"
    )
    assert report.whole_person and report.case_references == [first.CANARY]
    after = await snapshot(database)

    # nothing of the person can be read, even with the keys
    assert found_strings(readable_text(after), PERSON_STRINGS) == []
    # the other person is untouched, row for row
    for table, keys in other_rows.items():
        for key in keys:
            assert after[table][key] == before[table][key], (table, key)
    assert found_strings(readable_text(after), OTHER_STRINGS) == OTHER_STRINGS
    assert after["users"] == before["users"] and after["web_sessions"] == before["web_sessions"]

    async with database.sessions() as s:
        case = await s.get(Case, ids["case"])
        debtor = await s.get(Debtor, ids["debtor"])
        entries = (
            await s.scalars(
                select(ThreadEntry)
                .where(ThreadEntry.case_id == ids["case"])
                .order_by(ThreadEntry.seq)
            )
        ).all()
        payment = (await s.scalars(select(Payment).where(Payment.case_id == ids["case"]))).one()
        plan = (
            await s.scalars(select(InstallmentPlan).where(InstallmentPlan.case_id == ids["case"]))
        ).one()
        outbox = (
            await s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == ids["case"]))
        ).one()
        inbound = (
            await s.scalars(
                select(InboundMessage).where(InboundMessage.thread_entry_id == ids["entry"])
            )
        ).one()
        classification = (
            await s.scalars(
                select(Classification).where(Classification.thread_entry_id == ids["entry"])
            )
        ).one()
        status = await chain_status(s)
        erase_audit = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "gdpr.erase"))
        ).one()
    assert case is not None and debtor is not None
    # the claim's facts remain
    assert (case.reference, case.claim_amount, case.currency) == (
        first.CANARY,
        Decimal("1250.50"),
        "EUR",
    )
    assert case.due_date.isoformat() == "2026-01-31" and case.state == "open"
    assert case.description is None
    assert debtor.erased_at is not None and debtor.name == "[erased]"
    assert debtor.name_hash == "erased" and debtor.street is None and debtor.phone is None
    assert not [k for k in after["debtor_emails"].values() if k[1] == ids["debtor"]]
    assert not [k for k in after["debtor_keys"].values() if k[1] == ids["debtor"]]
    assert debtor.external_ref == "C-1001"
    assert [(e.seq, e.kind) for e in entries] == [(1, "inbound"), (2, "erasure")]
    assert entries[0].message_id == "<m1@zebrafinch-mail.example>"
    assert entries[0].body is None and entries[0].subject is None and entries[0].raw_message is None
    assert entries[1].meta == {"scope": "request", "whole_person": True}
    assert (payment.amount, payment.external_id, payment.reference_text) == (
        Decimal("250.50"),
        "bank-entry-1",
        None,
    )
    assert (plan.count, plan.amount_per_installment) == (4, Decimal("250.00"))
    assert plan.meta == {"terms": {"count": 4}, "proposal_entry": 1}
    assert outbox.message_id == "<out1@hub.invalid>" and outbox.message == b""
    assert outbox.recipients == "[erased]" and outbox.state == "failed"
    assert inbound.raw == b"" and inbound.route is not None
    assert "proposed_address" not in inbound.route and inbound.route["rule"] == "reply_token"
    assert classification.intent == "dispute" and "spans" not in classification.fields
    assert after["attachments"].keys() == other_rows["attachments"]
    assert [row[1] for row in after["portal_codes"].values()] == [other["case"]]
    # the audit chain still verifies and the audit entry names no one
    assert status.first_broken_id is None and status.entries == 1
    assert erase_audit.details["reason"] == "Art. 17 request"
    assert found_strings(json.dumps(erase_audit.details).lower(), PERSON_STRINGS) == []

    # dumps: no plaintext, and on SQLite not even the old ciphertext (VACUUM)
    if database.is_postgres:
        assert_no_personal_data(await pg_dump(settings.database_url()), "pg_dump")
    else:
        path = Path(make_url(settings.database_url()).database or "")
        files = await asyncio.to_thread(sqlite_files, path)
        raw = b"".join(files.values())
        assert_no_personal_data(raw, "the SQLite files")
        person_cipher = [
            blob[:40]
            for column, rows in old_cipher.items()
            if not column.startswith(("users.", "web_sessions."))
            for pk, blob in rows.items()
            if (pk,) not in other_rows.get(column.split(".")[0], set())
        ]
        assert person_cipher
        left = [c for c in person_cipher if c in raw]
        assert not left, f"{len(left)} old ciphertexts still in the SQLite files"

    # an export after the erasure holds nothing of the person
    out = tmp_path / "after.zip"
    await export_person(database, "C-1001", out, creditor_code="ACME", actor="cli:tester")
    names, text = _zip_text(out)
    assert found_strings(text, PERSON_STRINGS) == []
    assert "processing.json" in names and '"erasure"' in text
    assert not [n for n in names if n.startswith("originals/")]


async def test_old_ciphertext_is_found_before_the_erasure(
    database: Database, settings: Settings
) -> None:
    """The VACUUM check above would see the old ciphertext if it were there."""
    if database.is_postgres:
        pytest.skip("the ciphertext check reads the SQLite files")
    await first.populate(database)
    old = await first.raw_values(database)
    path = Path(make_url(settings.database_url()).database or "")
    raw = b"".join((await asyncio.to_thread(sqlite_files, path)).values())
    blobs = [b[:40] for rows in old.values() for b in rows.values()]
    assert blobs and all(b in raw for b in blobs)


async def test_legal_hold_refuses_and_changes_nothing(database: Database) -> None:
    ids, _ = await _setup(database)
    async with database.transaction() as s:
        await s.execute(update(Case).where(Case.id == ids["case"]).values(legal_hold=True))
    before = await snapshot(database)
    with pytest.raises(LegalHoldError) as caught:
        await erase_person(
            database, first.EMAIL, creditor_code=None, actor="cli:tester", reason="request"
        )
    message = str(caught.value)
    assert first.CANARY in message and "legal hold" in message and "Nothing was erased" in message
    assert await snapshot(database) == before
    # a dry run says the same
    with pytest.raises(LegalHoldError):
        await erase_person(
            database, first.EMAIL, creditor_code=None, actor="t", reason="r", dry_run=True
        )

"""Payments: CSV and camt.053 files parsed, matched by reference, recorded, idempotent on
re-import; partial payments, overpayments, unmatched and ambiguous ones; on both backends."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from automation_support import NOW, case_row, entries, make_case, make_creditor, payments, tasks

from hub.domain.case_state import CaseState
from hub.errors import ImportFileError
from hub.services.payment_files import parse_camt053, parse_payment_csv
from hub.services.payment_import import import_payments
from hub.storage.db import Database

DATA = Path(__file__).parent / "data" / "payments"
CAMT = DATA / "camt053_sample.xml"


async def _cases(database: Database) -> dict[str, int]:
    creditor = await make_creditor(database)
    return {
        "INV-1001": await make_case(database, creditor, "INV-1001", amount="250.00"),
        "INV-1002": await make_case(database, creditor, "INV-1002", amount="250.00"),
        "INV-1003": await make_case(
            database, creditor, "INV-1003", amount="50.00", state=CaseState.PROMISED
        ),
        "INV-1004": await make_case(database, creditor, "INV-1004", amount="300.00"),
    }


def test_camt053_sample_is_read_entry_by_entry() -> None:
    parsed = parse_camt053(CAMT.read_bytes())
    assert parsed.errors == []
    assert [(str(p.where), p.reason) for p in parsed.ignored] == [
        ("entry 2", "a debit"),
        ("entry 5", "status PDNG, not booked"),
    ]
    rows = [(r.reference, r.amount, r.external_id) for r in parsed.rows]
    assert rows == [
        ("INV-1001", Decimal("250.00"), "2026120500001"),
        (None, Decimal("100.00"), "2026120500003"),
        ("INV-1003", Decimal("50.00"), "2026120500004/1"),
        (None, Decimal("30.00"), "2026120500004/2"),
        (None, Decimal("400.00"), "2026120500006"),
    ]
    assert parsed.rows[1].text is not None and "INV-1002" in parsed.rows[1].text
    assert {r.booked_on.isoformat() for r in parsed.rows} == {"2026-12-05"}


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Document><BkToCstmrStmt><Stmt>&x;</Stmt></BkToCstmrStmt></Document>",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<Document>&b;</Document>",
        b"<Document><BkToCstmrStmt></BkToCstmrStmt></Document>",
        b"this is not xml",
    ],
    ids=["xxe", "entity-expansion", "no-statement", "not-xml"],
)
def test_hostile_or_wrong_xml_is_refused(document: bytes) -> None:
    with pytest.raises(ImportFileError):
        parse_camt053(document)


async def test_camt053_import_and_reimport(database: Database) -> None:
    cases = await _cases(database)
    parsed = parse_camt053(CAMT.read_bytes())
    report = await import_payments(database, parsed, source="camt053", actor="import", now=NOW)
    assert (report.recorded, report.duplicates, report.paid_cases) == (4, 0, 3), report.summary()
    assert [p.where for p in report.unmatched] == ["entry 4, transaction 2"]
    assert "INV-9999" not in str(report.unmatched[0])  # listed by id and amount, not guessed
    assert [str(p) for p in report.overpaid] == ["entry 6: 100.00 EUR more than was open"]
    states = {ref: (await case_row(database, cid)).state for ref, cid in cases.items()}
    assert states == {
        "INV-1001": "paid",
        "INV-1002": "reminded",
        "INV-1003": "paid",
        "INV-1004": "paid",
    }
    partial = await case_row(database, cases["INV-1002"])
    assert partial.paid_amount == Decimal("100.00")
    [stored] = await payments(database, cases["INV-1002"])
    assert stored.source == "camt053" and stored.external_id == "2026120500003"
    assert stored.reference_text is not None and "INV-1002" in stored.reference_text
    last = (await entries(database, cases["INV-1002"]))[-1]
    assert last.kind == "payment" and Decimal(last.meta["balance"]) == Decimal("150.00")
    assert [t.kind for t in await tasks(database, cases["INV-1004"])] == ["refund_overpayment"]
    paid = await case_row(database, cases["INV-1003"])
    assert paid.paused_until is None

    before = {cid: len(await entries(database, cid)) for cid in cases.values()}
    again = await import_payments(database, parsed, source="camt053", actor="import", now=NOW)
    assert (again.recorded, again.duplicates) == (0, 4)
    assert len(await payments(database)) == 4
    assert {cid: len(await entries(database, cid)) for cid in cases.values()} == before


CSV = """reference;amount;currency;booked_date;external_id;text
INV-1001;250,00;EUR;05.12.2026;csv-1;
INV-1002;1.250,00;EUR;2026-12-05;csv-2;
;20.00;EUR;2026-12-05;csv-3;Zahlung fuer INV-1003 danke
INV-1004;abc;EUR;2026-12-05;csv-4;
INV-1004;10.00;EURO;2026-13-05;csv-5;
INV-1004;10.00;EUR;2026-12-05;;
;10.00;EUR;2026-12-05;csv-7;
INV-1004;10.00;EUR;2026-12-05;csv-1;
X-404;10.00;EUR;2026-12-05;csv-9;
INV-1004;10.00;USD;2026-12-05;csv-10;
SHARED;10.00;EUR;2026-12-05;csv-11;
"""


async def test_csv_import(database: Database) -> None:
    cases = await _cases(database)
    other = await make_creditor(database, "OTHER")
    shared_a = await make_case(database, other, "SHARED")
    shared_b = await make_case(
        database, (await case_row(database, cases["INV-1001"])).creditor_id, "SHARED"
    )
    parsed = parse_payment_csv(CSV.encode())
    assert [str(e).split(":")[0] for e in parsed.errors] == [
        "line 5",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
    ]
    reasons = " ".join(str(e) for e in parsed.errors)
    for expected in (
        "amount:",
        "currency:",
        "booked_date:",
        "external_id: missing",
        "reference: missing",
        "appears twice",
    ):
        assert expected in reasons, expected
    report = await import_payments(database, parsed, source="csv", actor="import", now=NOW)
    assert report.recorded == 3, report.summary()
    assert [str(p).split(":")[0] for p in report.unmatched] == ["line 10", "line 12"]
    assert "several cases match" in str(report.unmatched[1])
    assert [p.where for p in report.errors][-1] == "line 11"  # USD for an EUR claim
    assert "USD" in str(report.errors[-1])
    assert report.overpaid and "1000.00 EUR" in str(report.overpaid[0])
    assert (await case_row(database, cases["INV-1002"])).paid_amount == Decimal("1250.00")
    assert (await case_row(database, cases["INV-1003"])).paid_amount == Decimal("20.00")
    assert (await case_row(database, cases["INV-1003"])).state == CaseState.PROMISED.value

    # one creditor's cases only: the shared reference is no longer ambiguous
    only = await import_payments(
        database, parsed, source="csv", actor="import", now=NOW, creditor_code="OTHER"
    )
    assert only.recorded == 1 and only.duplicates == 3
    assert (await case_row(database, shared_a)).paid_amount == Decimal("10.00")
    assert (await case_row(database, shared_b)).paid_amount == Decimal("0")


async def test_dry_run_records_nothing(database: Database) -> None:
    await _cases(database)
    parsed = parse_camt053(CAMT.read_bytes())
    report = await import_payments(
        database, parsed, source="camt053", actor="import", now=NOW, dry_run=True
    )
    assert report.recorded == 4 and "4 to record" in report.summary()
    assert await payments(database) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"reference,amount\nX,1.00\n", "missing column"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_unusable_csv_files(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse_payment_csv(data)


async def test_one_external_id_is_recorded_once_even_by_concurrent_imports(
    database: Database,
) -> None:
    cases = await _cases(database)
    header = "reference,amount,currency,booked_date,external_id\n"
    first = parse_payment_csv((header + "INV-1001,10.00,EUR,2026-12-05,BANK-1\n").encode())
    second = parse_payment_csv((header + "INV-1002,10.00,EUR,2026-12-05,BANK-1\n").encode())
    reports = await asyncio.gather(
        *(
            import_payments(database, parsed, source="csv", actor="import", now=NOW)
            for parsed in (first, second)
        )
    )
    assert sorted((r.recorded, r.duplicates) for r in reports) == [(0, 1), (1, 0)]
    [stored] = await payments(database)
    assert stored.case_id in (cases["INV-1001"], cases["INV-1002"])

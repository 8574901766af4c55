"""Case import: CSV validation, idempotent storage on SQLite and PostgreSQL, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.config import Settings
from hub.errors import ImportFileError, UserError
from hub.services import validation
from hub.services.case_import import ImportReport, import_cases, name_hash
from hub.services.case_rows import RowDefaults
from hub.services.creditors import CreditorData, create_creditor, list_creditors
from hub.services.csv_fields import parse_amount
from hub.services.csv_rows import ParsedFile, parse_case_file
from hub.storage.db import Database
from hub.storage.models import Case, Debtor, DebtorEmail, ThreadEntry

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cases.csv"
HEADER = "creditor,reference,debtor_ref,name,email,amount,currency,due_date,country,language"


def defaults(settings: Settings, creditor: str | None = None) -> RowDefaults:
    return RowDefaults(settings.import_.default_language, settings.hub.default_timezone, creditor)


def parse(settings: Settings, text: str | bytes, creditor: str | None = None) -> ParsedFile:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_case_file(data, defaults(settings, creditor))


async def add_creditors(database: Database) -> None:
    await create_creditor(
        database,
        CreditorData("acme", "Acme Energie GmbH", iban="DE89 3704 0044 0532 0130 00"),
    )
    await create_creditor(
        database, CreditorData("NORDLYS", "Nordlys Telecom ApS", iban="DK5000400440116243")
    )


async def run_import(
    database: Database,
    settings: Settings,
    parsed: ParsedFile,
    *,
    source: str = "test.csv",
    batch_size: int | None = None,
    skip_invalid: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    return await import_cases(
        database,
        parsed,
        source=source,
        batch_size=batch_size or settings.import_.batch_size,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
    )


async def counts(database: Database) -> dict[str, int]:
    async with database.sessions() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (Debtor, DebtorEmail, Case, ThreadEntry)
        }


async def case_by_ref(database: Database, reference: str) -> Case:
    async with database.sessions() as session:
        return (await session.scalars(select(Case).where(Case.reference == reference))).one()


# --- pure parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1250.00", "1250.00"),
        ("1250,00", "1250.00"),
        ("1.250,00", "1250.00"),
        ("1,250.00", "1250.00"),
        ("1.250.000,5", "1250000.5"),
        ("1,250,000", "1250000"),
        ("0,10", "0.10"),
        ("89.9", "89.9"),
        (" 42 ", "42"),
    ],
)
def test_amounts_are_exact(text: str, expected: str) -> None:
    value = parse_amount(text)
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)
    assert str(value) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,250", "ambiguous"),
        ("1.250", "ambiguous"),
        ("1,25,0.00", "thousands separators"),
        ("1.250.00", "thousands separators"),
        ("1,250.00.5", "more than one decimal separator"),
        ("-5.00", "positive"),
        ("0,00", "greater than zero"),
        ("12 EUR", "not an amount"),
        ("1e5", "not an amount"),
        ("", "missing"),
    ],
)
def test_amounts_never_guessed(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_amount(text)


@pytest.mark.parametrize(
    ("iban", "ok"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("dk5000400440116243", True),
        ("GB82WEST12345698765432", True),
        ("DE89370400440532013001", False),  # one digit off: checksum fails
        ("DE8937040044053201300", False),  # one character short for DE
        ("XX89370400440532013000", False),
    ],
)
def test_iban_checksum(iban: str, ok: bool) -> None:
    if ok:
        assert validation.check_iban(iban) == iban.replace(" ", "").upper()
    else:
        with pytest.raises(ValueError):
            validation.check_iban(iban)


def test_validators() -> None:
    assert validation.check_bic("cobadeffxxx") == "COBADEFFXXX"
    with pytest.raises(ValueError):
        validation.check_bic("COBAXXFF")
    assert validation.check_email(" jane@example.com ") == "jane@example.com"
    for bad in ("jane.example.com", "jane@", "@example.com", "jane@example", "ja ne@example.com"):
        with pytest.raises(ValueError):
            validation.check_email(bad)
    assert validation.check_currency("dkk") == "DKK"
    with pytest.raises(ValueError):
        validation.check_currency("DEM")  # the Deutsche Mark is long gone
    assert validation.check_country("dk") == "DK"
    with pytest.raises(ValueError):
        validation.check_country("EU")


def test_header_problems_stop_the_file() -> None:
    def parse(text: str | bytes, creditor: str | None = None) -> ParsedFile:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return parse_case_file(data, RowDefaults("en", "Europe/Berlin", creditor))

    with pytest.raises(ImportFileError, match=r"missing required column.*amount"):
        parse("creditor,reference,debtor_ref,name,email,currency,due_date\n")
    with pytest.raises(ImportFileError, match=r"unknown column\(s\): emial"):
        parse(HEADER.replace("email", "emial") + "\n")
    with pytest.raises(ImportFileError, match="or give --creditor"):
        parse(HEADER.replace("creditor,", "") + "\n")
    with pytest.raises(ImportFileError, match="empty"):
        parse(b"")
    with pytest.raises(ImportFileError, match="empty"):
        parse("\ufeff\n \n")
    with pytest.raises(ImportFileError, match="no rows"):
        parse(HEADER + "\n\n")
    with pytest.raises(ImportFileError, match="line 2: the file is not UTF-8"):
        parse((HEADER + "\nACME,R1,D1,J\xfcrgen").encode("latin-1"))


BAD_FILE = "\n".join(
    [
        HEADER,
        "ACME,R1,D1,Jane Doe,jane@example.com,100.00,EUR,2026-10-01,DE,en",  # 2 good
        'ACME,R2,D2,John Roe,john(at)example.com,"1,250",EUR,2026-13-01,DE,en',  # 3
        "ACME,R3,D3,Anna Berg,anna@example.org,50.00,EUX,01.10.2026,XY,fr",  # 4
        "GHOST,R4,D4,Bo Ek,bo@example.net,10.00,EUR,2026-10-01,SE,en",  # 5 unknown creditor
        "ACME,R1,D5,Per Dal,per@example.net,20.00,EUR,2026-10-01,DK,da",  # 6 duplicate R1
        "ACME,R6,D6,Kim Lund,kim@example.net,20.00",  # 7 too few fields
        'NORDLYS,R7,D7,Mette Holm,"mette@example.com;  m.holm@example.org",'
        '"1.499,00",DKK,20.10.2026,DK,da',  # 8 good
        "ACME,R8,D1,Jane Dough,jane@example.com,30.00,EUR,2026-10-01,DE,en",  # 9 debtor differs
        "NORDLYS,R9,D9,Ole Bak,ole@example.com,12.345,DKK,2026-10-01,DK,da",  # 10 ambiguous
        "ACME,R10,D10,Eva Wolf,eva@example.com,9.999,JPY,2026-10-01,DE,de",  # 11 ambiguous
        "ACME,R11,D11,Eva Wolf,eva@example.com,12.5,JPY,2026-10-01,DE,de",  # 12 JPY decimals
    ]
)
BAD_CELLS = {
    (3, "email"),
    (3, "amount"),
    (3, "due_date"),
    (4, "language"),
    (4, "country"),
    (4, "currency"),
    (5, "creditor"),
    (6, "reference"),
    (7, None),
    (9, "debtor_ref"),
    (10, "amount"),
    (11, "amount"),
    (12, "amount"),
}


async def test_bad_file_reports_every_error_and_imports_nothing(
    database: Database, settings: Settings
) -> None:
    await add_creditors(database)
    report = await run_import(database, settings, parse(settings, BAD_FILE))
    assert {(e.line, e.column) for e in report.errors} == BAD_CELLS
    assert report.imported == 0
    assert report.aborted
    assert report.invalid == 9
    assert await counts(database) == {
        "debtors": 0,
        "debtor_emails": 0,
        "cases": 0,
        "thread_entries": 0,
    }
    messages = [str(e) for e in report.errors]
    assert "line 7: expected 10 fields, found 6" in messages
    assert any(m.startswith("line 5, column creditor: unknown creditor GHOST") for m in messages)
    assert "line 6, column reference: duplicate of line 2" in messages
    # reasons never repeat a name or an address from the file
    assert not any("john" in m.lower() or "jane" in m.lower() for m in messages)


async def test_skip_invalid_imports_the_good_rows(database: Database, settings: Settings) -> None:
    await add_creditors(database)
    report = await run_import(database, settings, parse(settings, BAD_FILE), skip_invalid=True)
    assert report.imported == 2
    assert not report.aborted
    assert {(e.line, e.column) for e in report.errors} == BAD_CELLS
    assert await counts(database) == {
        "debtors": 2,
        "debtor_emails": 3,
        "cases": 2,
        "thread_entries": 2,
    }
    case = await case_by_ref(database, "R7")
    assert case.claim_amount == Decimal("1499.00")
    assert case.currency == "DKK"
    assert case.due_date == date(2026, 10, 20)


async def test_example_file_imports(database: Database, settings: Settings) -> None:
    await add_creditors(database)
    parsed = parse(settings, EXAMPLE.read_bytes())
    assert parsed.errors == []
    report = await run_import(database, settings, parsed, source="cases.csv", batch_size=1)
    assert (report.imported, report.already_present, report.conflicts) == (12, 0, [])
    # two debtors have two cases each; two debtors give two addresses
    assert await counts(database) == {
        "debtors": 10,
        "debtor_emails": 12,
        "cases": 12,
        "thread_entries": 12,
    }
    case = await case_by_ref(database, "INV-2026-0412")
    assert case.claim_amount == Decimal("1250.00")
    assert (await case_by_ref(database, "INV-2026-0420")).claim_amount == Decimal("1980.50")
    assert (await case_by_ref(database, "INV-2026-0413")).due_date == date(2026, 10, 15)
    assert case.state == "open"
    assert case.description == "Stromrechnung Juli 2026"
    async with database.sessions() as session:
        debtor = await session.get_one(Debtor, case.debtor_id)
        assert debtor.name == "Jonas Weber"
        assert debtor.name_hash == name_hash(database.keyring, "  jonas   WEBER ")
        assert (debtor.language, debtor.country, debtor.street) == ("de", "DE", "Lindenstraße 12")
        freja = (await session.scalars(select(Debtor).where(Debtor.external_ref == "C-3342"))).one()
        assert freja.timezone == settings.hub.default_timezone  # empty cell: the default
        entry = (
            await session.scalars(select(ThreadEntry).where(ThreadEntry.case_id == case.id))
        ).one()
    assert (entry.seq, entry.kind, entry.actor) == (1, "imported", "system:import")
    assert entry.meta["source"] == "cases.csv"
    assert entry.meta["line"] == 2


async def test_emails_findable_by_hash(database: Database, settings: Settings) -> None:
    await add_creditors(database)
    await run_import(database, settings, parse(settings, EXAMPLE.read_bytes()))
    wanted = database.keyring.email_hash(" S.Koehler@Example.NET ")
    async with database.sessions() as session:
        found = (
            await session.scalars(select(DebtorEmail).where(DebtorEmail.address_hash == wanted))
        ).one()
        debtor = await session.get_one(Debtor, found.debtor_id)
        addresses = (
            await session.scalars(
                select(DebtorEmail)
                .where(DebtorEmail.debtor_id == debtor.id)
                .order_by(DebtorEmail.id)
            )
        ).all()
    assert debtor.name == "Sabine Köhler"
    assert found.address == "s.koehler@example.net"
    assert not found.is_primary
    assert [(a.address, a.is_primary) for a in addresses] == [
        ("sabine.koehler@example.org", True),
        ("s.koehler@example.net", False),
    ]


async def test_reimport_changes_nothing(database: Database, settings: Settings) -> None:
    await add_creditors(database)
    await run_import(database, settings, parse(settings, EXAMPLE.read_bytes()))
    before = await counts(database)
    async with database.sessions() as session:
        stamps = (await session.execute(select(Case.id, Case.updated_at))).all()
    again = await run_import(database, settings, parse(settings, EXAMPLE.read_bytes()))
    assert (again.imported, again.already_present, again.conflicts) == (0, 12, [])
    assert again.debtor_notes == []
    assert await counts(database) == before
    async with database.sessions() as session:
        assert (await session.execute(select(Case.id, Case.updated_at))).all() == stamps


async def test_conflicts_are_reported_not_applied(database: Database, settings: Settings) -> None:
    await add_creditors(database)
    text = EXAMPLE.read_text(encoding="utf-8")
    await run_import(database, settings, parse(settings, text))
    changed = text.replace('"1.250,00",EUR,2026-09-15', '"1.350,00",EUR,2026-09-16').replace(
        "Bredbånd september 2026", "Bredbånd oktober 2026"
    )
    assert changed != text
    before = await counts(database)
    report = await run_import(database, settings, parse(settings, changed))
    assert report.imported == 0
    assert report.already_present == 10
    assert [(c.line, c.reference, c.fields) for c in report.conflicts] == [
        (2, "INV-2026-0412", ("amount", "due_date")),
        (9, "NL-55121", ("description",)),
    ]
    assert "not changed" in str(report.conflicts[0])
    assert await counts(database) == before
    case = await case_by_ref(database, "INV-2026-0412")
    assert (case.claim_amount, case.due_date) == (Decimal("1250.00"), date(2026, 9, 15))


async def test_existing_debtor_is_reused_and_differences_noted(
    database: Database, settings: Settings
) -> None:
    await add_creditors(database)
    await run_import(database, settings, parse(settings, EXAMPLE.read_bytes()))
    later = "\n".join(
        [
            HEADER,
            "ACME,INV-2026-0999,K-100231,Jonas Weber,jonas.weber@example.com,"
            "10.00,EUR,2026-11-30,DE,de",
            "ACME,INV-2026-1000,K-100587,Sabine Koehler,new@example.com,20.00,EUR,2026-11-30,DE,de",
        ]
    )
    report = await run_import(database, settings, parse(settings, later))
    assert report.imported == 2
    assert report.debtors_created == 0
    assert [(n.line, n.fields) for n in report.debtor_notes] == [(3, ("name", "email"))]
    after = await counts(database)
    assert (after["debtors"], after["debtor_emails"], after["cases"]) == (10, 12, 14)
    first = await case_by_ref(database, "INV-2026-0412")
    assert (await case_by_ref(database, "INV-2026-0999")).debtor_id == first.debtor_id


async def test_bom_semicolon_file_with_default_creditor(
    database: Database, settings: Settings
) -> None:
    await add_creditors(database)
    text = (
        "\ufeffReference;Debtor_Ref;Name;Email;Amount;Currency;Due_Date;Phone;Description\r\n"
        'NL-1;C-1;Søren Ågård;"soren@example.com, s.aagaard@example.org";1.234,56;DKK;'
        '31.12.2026;+45 12 34 56 78;"Faktura; rykker 1"\r\n'
        "NL-2;C-2;Astrid Møller;astrid@example.net;99,95;dkk;2026-12-01;;\r\n"
    )
    parsed = parse(settings, text, creditor="nordlys")
    assert parsed.delimiter == ";"
    assert parsed.errors == []
    report = await run_import(database, settings, parsed)
    assert report.imported == 2
    first = await case_by_ref(database, "NL-1")
    assert first.claim_amount == Decimal("1234.56")
    assert first.description == "Faktura; rykker 1"
    assert (await case_by_ref(database, "NL-2")).currency == "DKK"
    async with database.sessions() as session:
        debtor = await session.get_one(Debtor, first.debtor_id)
        emails = (await session.scalars(select(DebtorEmail.address))).all()
    assert (debtor.name, debtor.phone, debtor.language) == ("Søren Ågård", "+45 12 34 56 78", "en")
    assert sorted(emails) == ["astrid@example.net", "s.aagaard@example.org", "soren@example.com"]
    mismatch = parse(
        settings,
        text.replace("Reference;", "Creditor;Reference;", 1)
        .replace("NL-1;", "ACME;NL-1;")
        .replace("NL-2;", "NORDLYS;NL-2;"),
        creditor="NORDLYS",
    )
    assert [(e.line, e.column) for e in mismatch.errors] == [(2, "creditor")]


async def test_dry_run_stores_nothing(database: Database, settings: Settings) -> None:
    await add_creditors(database)
    report = await run_import(
        database, settings, parse(settings, EXAMPLE.read_bytes()), dry_run=True
    )
    assert report.imported == 12
    assert "would import 12" in report.summary()
    assert (await counts(database))["cases"] == 0


async def test_creditors_service(database: Database) -> None:
    await add_creditors(database)
    with pytest.raises(UserError, match="already exists"):
        await create_creditor(database, CreditorData("Acme", "Another Acme"))
    with pytest.raises(UserError, match="IBAN checksum"):
        await create_creditor(database, CreditorData("X1", "X", iban="DE89370400440532013001"))
    creditors = await list_creditors(database)
    assert [(c.code, c.iban) for c in creditors] == [
        ("ACME", "DE89370400440532013000"),
        ("NORDLYS", "DK5000400440116243"),
    ]


# --- the real command ---------------------------------------------------------------------


def hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "hub"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_cli_import(hub_env: dict[str, str], tmp_path: Path) -> None:
    assert hub(hub_env, "db", "upgrade").returncode == 0
    for args in (
        ("ACME", "--name", "Acme Energie GmbH", "--iban", "DE89370400440532013000"),
        ("NORDLYS", "--name", "Nordlys Telecom ApS", "--bic", "DABADKKK"),
    ):
        done = hub(hub_env, "creditor", "add", *args)
        assert done.returncode == 0, done.stderr
    bad_iban = hub(hub_env, "creditor", "add", "X", "--name", "X", "--iban", "DE00123")
    assert bad_iban.returncode == 2
    assert "IBAN" in bad_iban.stderr
    listing = hub(hub_env, "creditor", "list")
    assert "ACME" in listing.stdout and "DABADKKK" in listing.stdout

    first = hub(hub_env, "import", str(EXAMPLE))
    assert first.returncode == 0, first.stderr
    assert "imported 12, already present 0, conflicts 0, invalid 0" in first.stdout
    second = hub(hub_env, "import", str(EXAMPLE))
    assert second.returncode == 0, second.stderr
    assert "imported 0, already present 12, conflicts 0, invalid 0" in second.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_FILE, encoding="utf-8")
    refused = hub(hub_env, "import", str(bad))
    assert refused.returncode == 2
    assert "invalid: line 3, column amount: '1,250' is ambiguous" in refused.stdout
    assert "nothing imported" in refused.stderr
    assert "imported 0" in refused.stdout

    skipped = hub(hub_env, "import", "--skip-invalid", str(bad))
    assert skipped.returncode == 0, skipped.stderr
    assert "imported 2, already present 0, conflicts 0, invalid 9" in skipped.stdout

    header_only = tmp_path / "header.csv"
    header_only.write_text("reference;name\n", encoding="utf-8")
    broken = hub(hub_env, "import", "--creditor", "ACME", str(header_only))
    assert broken.returncode == 2
    assert "missing required column(s): debtor_ref, email, amount" in broken.stderr

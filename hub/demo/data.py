"""The demo's creditors and debtors: fictitious people in English, German and Danish.

Due dates are relative to the day the demo runs, so that some reminders are due and some are
not yet. Every address uses the reserved example domains. The cases go through the real CSV
import, exactly as a creditor's file would.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

from hub.services.creditors import CreditorData
from hub.services.csv_rows import COLUMNS

CREDITORS = (
    CreditorData(
        code="BRIGHT",
        name="Brightwater Utilities Ltd",
        legal_identity="Brightwater Utilities Ltd, 1 Example Street, Leeds LS1 1AA, "
        "registered in England and Wales no. 01234567",
        contact_email="collections@example.com",
        iban="GB82WEST12345698765432",
        bic="WESTGB2L",
    ),
    CreditorData(
        code="STADTWERK",
        name="Stadtwerke Musterstadt GmbH",
        legal_identity="Stadtwerke Musterstadt GmbH, Beispielweg 1, 10115 Berlin, "
        "HRB 123456 B, Amtsgericht Charlottenburg",
        contact_email="forderungen@example.com",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
    ),
    CreditorData(
        code="CYKEL",
        name="Københavns Cykelservice ApS",
        legal_identity="Københavns Cykelservice ApS, Eksempelvej 2, 2100 København Ø, CVR 12345678",
        contact_email="inkasso@example.org",
        iban="DK5000400440116243",
        bic="DABADKKK",
    ),
)


@dataclass(frozen=True)
class DemoDebtor:
    creditor: str
    reference: str
    debtor_ref: str
    name: str
    email: str
    language: str
    timezone: str
    street: str
    postal_code: str
    city: str
    country: str
    amount: str
    currency: str
    days_overdue: int
    description: str
    #: what the simulated debtor can read: "pgp", "smime", "smime-aead" or "" (no key)
    key: str


DEBTORS = (
    DemoDebtor(
        "BRIGHT",
        "BW-2026-1001",
        "C-501",
        "Oliver Bennett",
        "oliver.bennett@example.com",
        "en",
        "Europe/London",
        "12 Station Road",
        "LS6 2AB",
        "Leeds",
        "GB",
        "184.20",
        "GBP",
        12,
        "Electricity, August 2026",
        "pgp",
    ),
    DemoDebtor(
        "BRIGHT",
        "BW-2026-1002",
        "C-502",
        "Amelia Clarke",
        "amelia.clarke@example.org",
        "en",
        "Europe/London",
        "4 Mill Lane",
        "YO1 7HH",
        "York",
        "GB",
        "96.75",
        "GBP",
        30,
        "Water and sewerage, Q3 2026",
        "",
    ),
    DemoDebtor(
        "BRIGHT",
        "BW-2026-1003",
        "C-503",
        "Harry Patel",
        "harry.patel@example.net",
        "en",
        "Europe/London",
        "88 Queen Street",
        "M1 1AD",
        "Manchester",
        "GB",
        "1250.00",
        "GBP",
        9,
        "Gas, annual settlement 2025/26",
        "smime",
    ),
    DemoDebtor(
        "STADTWERK",
        "SW-2026-2001",
        "K-701",
        "Lena Hoffmann",
        "lena.hoffmann@example.com",
        "de",
        "Europe/Berlin",
        "Lindenstraße 12",
        "10969",
        "Berlin",
        "DE",
        "1.250,00",
        "EUR",
        15,
        "Stromrechnung Juli 2026",
        "pgp",
    ),
    DemoDebtor(
        "STADTWERK",
        "SW-2026-2002",
        "K-702",
        "Maximilian Schulz",
        "max.schulz@example.org",
        "de",
        "Europe/Berlin",
        "Am Markt 3",
        "80331",
        "München",
        "DE",
        "89,90",
        "EUR",
        21,
        "Abschlag August 2026",
        "",
    ),
    DemoDebtor(
        "STADTWERK",
        "SW-2026-2003",
        "K-703",
        "Katrin Vogel",
        "katrin.vogel@example.net",
        "de",
        "Europe/Vienna",
        "Ringstraße 7",
        "1010",
        "Wien",
        "AT",
        "432,10",
        "EUR",
        8,
        "Nachzahlung Gas 2025",
        "smime-aead",
    ),
    DemoDebtor(
        "CYKEL",
        "KC-2026-3001",
        "D-801",
        "Mette Jensen",
        "mette.jensen@example.com",
        "da",
        "Europe/Copenhagen",
        "Nørrebrogade 20",
        "2200",
        "København N",
        "DK",
        "1.499,00",
        "DKK",
        11,
        "Reparation af ladcykel",
        "pgp",
    ),
    DemoDebtor(
        "CYKEL",
        "KC-2026-3002",
        "D-802",
        "Søren Nielsen",
        "soeren.nielsen@example.org",
        "da",
        "Europe/Copenhagen",
        "Vestergade 5",
        "8000",
        "Aarhus C",
        "DK",
        "650,00",
        "DKK",
        40,
        "Cykelleje, september 2026",
        "",
    ),
    DemoDebtor(
        "CYKEL",
        "KC-2026-3003",
        "D-803",
        "Freja Larsen",
        "freja.larsen@example.net",
        "da",
        "Europe/Copenhagen",
        "Strandvejen 101",
        "2900",
        "Hellerup",
        "DK",
        "2.100,00",
        "DKK",
        -5,
        "Ny elcykel, rate 1",
        "pgp",
    ),
)


def cases_csv(today: date) -> bytes:
    """The demo's cases as the CSV file a creditor would hand over."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for d in DEBTORS:
        due = today - timedelta(days=d.days_overdue)
        writer.writerow(
            (
                d.creditor,
                d.reference,
                d.debtor_ref,
                d.name,
                d.email,
                d.language,
                d.timezone,
                d.street,
                d.postal_code,
                d.city,
                d.country,
                "",
                d.amount,
                d.currency,
                due.isoformat(),
                d.description,
            )
        )
    return out.getvalue().encode("utf-8")

"""Benchmark of ``hub import``: N generated rows into a fresh, migrated SQLite database.

Prints the seconds and rows/s of the real import (parse + validate + encrypt + bulk insert)
and of a bare baseline doing the same amount of storage work without validation or encryption
(``csv.reader`` plus plain ``sqlite3`` ``executemany`` into four tables of the same shape), and
the ratio between the two. Usage::

    .venv/bin/python bench/import_bench.py [-n 100000] [--batch-size 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from hub.config import load_settings
from hub.crypto.at_rest import generate_key
from hub.services.case_import import import_cases
from hub.services.case_rows import RowDefaults
from hub.services.creditors import CreditorData, create_creditor
from hub.services.csv_rows import COLUMNS, parse_case_file
from hub.storage import migrate
from hub.storage.db import open_database

FIRST = ["Jonas", "Sabine", "Emily", "Mette", "Lars", "Freja", "Oliver", "Katrin", "Mehmet"]
LAST = ["Weber", "Köhler", "Clarke", "Sørensen", "Christensen", "Nielsen", "Grant", "Hansen"]
CITIES = [("10969", "Berlin", "DE"), ("2200", "København N", "DK"), ("BS1 5TT", "Bristol", "GB")]


def _amount(rng: random.Random) -> str:
    cents = rng.randint(1_000, 500_000)
    euros, rest = divmod(cents, 100)
    style = rng.randrange(4)
    if style == 0:
        return f"{euros}.{rest:02d}"
    if style == 1:
        return f"{euros},{rest:02d}"
    if style == 2:
        return f"{euros:,}.{rest:02d}"
    return f"{euros:,}".replace(",", ".") + f",{rest:02d}"


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """``rows`` cases of about rows/1.3 debtors, in the formats creditors send."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        debtor = 0
        for number in range(rows):
            if number == 0 or rng.random() > 0.25:
                debtor += 1
            first, last = FIRST[debtor % len(FIRST)], LAST[debtor % len(LAST)]
            postal, city, country = CITIES[debtor % len(CITIES)]
            language = {"DE": "de", "DK": "da", "GB": "en"}[country]
            day = rng.randint(1, 28)
            writer.writerow(
                [
                    "BENCH",
                    f"INV-{number:07d}",
                    f"D-{debtor:07d}",
                    f"{first} {last}",
                    f"{first.lower()}.{debtor}@example.com",
                    language,
                    "Europe/Berlin",
                    f"Musterweg {debtor % 200 + 1}",
                    postal,
                    city,
                    country,
                    f"+49 30 {debtor:07d}",
                    _amount(rng),
                    "EUR",
                    f"2026-10-{day:02d}" if number % 2 else f"{day:02d}.10.2026",
                    "Invoice" if number % 3 else "",
                ]
            )


async def hub_import(csv_path: Path, workdir: Path, batch_size: int) -> tuple[float, float, int]:
    env = {
        "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
        "HUB_SECURITY_LOOKUP_KEY": generate_key(),
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'hub.db'}",
        "HUB_IMPORT_BATCH_SIZE": str(batch_size),
    }
    settings = load_settings(None, env)
    database = open_database(settings)
    try:
        await migrate.upgrade(database.engine)
        await create_creditor(database, CreditorData("BENCH", "Bench Creditor"))
        defaults = RowDefaults(settings.import_.default_language, settings.hub.default_timezone)
        started = time.perf_counter()
        data = await asyncio.to_thread(csv_path.read_bytes)
        parsed = await asyncio.to_thread(parse_case_file, data, defaults)
        parsed_at = time.perf_counter()
        if parsed.errors:
            raise SystemExit(f"generated file has errors, e.g. {parsed.errors[0]}")
        report = await import_cases(
            database, parsed, source=csv_path.name, batch_size=settings.import_.batch_size
        )
        finished = time.perf_counter()
        again = time.perf_counter()
        second = await import_cases(
            database, parsed, source=csv_path.name, batch_size=settings.import_.batch_size
        )
        print(
            f"  re-import: {time.perf_counter() - again:.1f} s, "
            f"{second.already_present} already present, {second.imported} imported"
        )
        return parsed_at - started, finished - parsed_at, report.imported
    finally:
        await database.close()


def bare_baseline(csv_path: Path, workdir: Path) -> float:
    """csv.reader + plain sqlite3 executemany of the same rows (no validation, no crypto)."""
    db = sqlite3.connect(workdir / "bare.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(
        """
        CREATE TABLE debtors (id INTEGER PRIMARY KEY, ref TEXT UNIQUE, name BLOB, street BLOB,
            postal BLOB, city BLOB, country TEXT, phone BLOB, language TEXT, tz TEXT);
        CREATE TABLE emails (id INTEGER PRIMARY KEY, debtor_id INT, address BLOB, hash TEXT);
        CREATE TABLE cases (id INTEGER PRIMARY KEY, debtor_ref TEXT, reference TEXT UNIQUE,
            amount TEXT, currency TEXT, due TEXT, description BLOB);
        CREATE TABLE entries (id INTEGER PRIMARY KEY, case_id INT, seq INT, kind TEXT, meta TEXT);
        """
    )
    started = time.perf_counter()
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = list(reader)
    debtors: dict[str, list[str]] = {}
    for row in rows:
        debtors.setdefault(row[2], row)
    with db:
        db.executemany(
            "INSERT INTO debtors (ref, name, street, postal, city, country, phone, language, tz)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [(r[2], r[3], r[7], r[8], r[9], r[10], r[11], r[5], r[6]) for r in debtors.values()],
        )
        db.executemany(
            "INSERT INTO emails (debtor_id, address, hash) VALUES (?,?,?)",
            [(n, r[4], r[4]) for n, r in enumerate(debtors.values(), start=1)],
        )
        db.executemany(
            "INSERT INTO cases (debtor_ref, reference, amount, currency, due, description)"
            " VALUES (?,?,?,?,?,?)",
            [(r[2], r[1], r[12], r[13], r[14], r[15]) for r in rows],
        )
        db.executemany(
            "INSERT INTO entries (case_id, seq, kind, meta) VALUES (?,?,?,?)",
            [(n, 1, "imported", json.dumps({"line": n})) for n in range(1, len(rows) + 1)],
        )
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-import-bench-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "cases.csv"
        generate(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"{args.rows} rows, {size_mb:.1f} MB, batch size {args.batch_size}")
        parse_s, store_s, imported = asyncio.run(hub_import(csv_path, workdir, args.batch_size))
        total = parse_s + store_s
        bare = bare_baseline(csv_path, workdir)
        print(
            f"  hub import: {total:.1f} s ({parse_s:.1f} s parse+validate, {store_s:.1f} s store)"
        )
        print(f"  hub import: {imported / total:,.0f} rows/s ({imported} imported)")
        print(f"  bare csv + sqlite3 executemany: {bare:.2f} s, {args.rows / bare:,.0f} rows/s")
        print(f"  ratio hub / bare: {total / bare:.1f}x")


if __name__ == "__main__":
    main()

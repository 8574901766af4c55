"""Records of processing and the ``hub gdpr`` commands, on SQLite and PostgreSQL.

A case with a known timeline (import, reminder, key learnt, reply, routing, classification,
automated decision) lists those steps in order with their legal basis; the export and the
erasure done through the CLI join the list, and ``hub audit verify`` still passes afterwards.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sample_personal_data as first
from gdpr_sample import PERSON_STRINGS, found_strings
from sqlalchemy import update

from hub.cli.gdpr_cmd import format_records
from hub.services.processing_records import find_case, records_for_case
from hub.storage.db import Database
from hub.storage.models import (
    Case,
    Classification,
    Debtor,
    DebtorKey,
    InboundMessage,
    ThreadEntry,
)

HUB = str(Path(sys.executable).parent / "hub")
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


async def _timeline(database: Database) -> dict[str, int]:
    """The sample person's case, its thread re-timed and completed to a known history."""
    ids = await first.populate(database)
    at = {n: T0 + timedelta(hours=n) for n in range(8)}
    async with database.transaction() as s:
        await s.execute(update(ThreadEntry).values(seq=3, occurred_at=at[3]))
        s.add_all(
            [
                ThreadEntry(
                    case_id=ids["case"], seq=1, kind="imported", actor="system:importer",
                    occurred_at=at[0], meta={"batch": 1},
                ),
                ThreadEntry(
                    case_id=ids["case"], seq=2, kind="reminder", actor="worker:dunning",
                    occurred_at=at[1], meta={"level": 1, "protection": "pgp",
                                             "state": {"from": "open", "to": "reminded"}},
                ),
                ThreadEntry(
                    case_id=ids["case"], seq=4, kind="decision", actor="system:automation",
                    occurred_at=at[5], meta={"intent": "dispute", "event": "dispute_received"},
                ),
            ]
        )  # fmt: skip
        await s.execute(update(DebtorKey).values(added_at=at[2]))
        await s.execute(update(InboundMessage).values(processed_at=at[3]))
        await s.execute(update(Classification).values(created_at=at[4]))
    return ids


async def test_records_list_the_steps_in_order_with_their_basis(database: Database) -> None:
    await _timeline(database)
    async with database.sessions() as s:
        case = await find_case(s, first.CANARY, None)
        records = await records_for_case(s, case)
    assert [r.step for r in records] == [
        "import",
        "reminder sent",
        "key learnt",
        "reply received",
        "routing decision",
        "reply classified",
        "automated decision",
    ]
    by_step = {r.step: r for r in records}
    assert "Art. 6(1)(b)" in by_step["import"].basis and "6(1)(f)" in by_step["import"].basis
    assert "level=1" in by_step["reminder sent"].what
    assert "protection=pgp" in by_step["reminder sent"].what
    assert "state open -> reminded" in by_step["reminder sent"].what
    assert "rule reply_token" in by_step["routing decision"].what
    assert "intent=dispute" in by_step["reply classified"].what
    assert "Art. 32" in by_step["key learnt"].basis
    assert all(r.basis for r in records) and all(r.automated for r in records[:3])
    assert by_step["reply received"].automated is False  # the debtor wrote it
    text = json.dumps([r.as_json() for r in records]).lower()
    assert found_strings(text, PERSON_STRINGS) == []
    lines = format_records(records).splitlines()
    assert len(lines) == 2 * len(records) and "import" in lines[0]
    assert lines[1].strip().startswith("basis: contract (Art. 6(1)(b))")


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, "gdpr", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_cli_export_erase_records(
    database: Database, hub_env: dict[str, str], tmp_path: Path
) -> None:
    await _timeline(database)
    out = tmp_path / "export.zip"

    done = await asyncio.to_thread(_hub, hub_env, "export", first.SECOND_EMAIL, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "1 case(s)" in done.stdout
    with zipfile.ZipFile(out) as z:
        assert json.loads(z.read("person.json"))["name"] == first.NAME

    async with database.transaction() as s:
        await s.execute(update(Case).values(legal_hold=True))
    held = await asyncio.to_thread(_hub, hub_env, "erase", "C-1001")
    assert held.returncode == 2 and first.CANARY in held.stderr and "legal hold" in held.stderr
    async with database.transaction() as s:
        await s.execute(update(Case).values(legal_hold=False))

    erased = await asyncio.to_thread(_hub, hub_env, "erase", first.CANARY, "--reason", "Art. 17")
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.startswith("anonymized debtor and 1 case(s)")
    async with database.sessions() as s:
        debtor = await s.get(Debtor, 1)
    assert debtor is not None and debtor.erased_at is not None

    listed = await asyncio.to_thread(_hub, hub_env, "records", first.CANARY, "--json")
    assert listed.returncode == 0, listed.stderr
    steps = [r["step"] for r in json.loads(listed.stdout)]
    assert steps[:2] == ["import", "reminder sent"]
    assert steps[-3:] == ["export", "erasure", "erasure"]  # the audit entry and the thread entry

    retention = await asyncio.to_thread(_hub, hub_env, "retention", "--dry-run")
    assert retention.returncode == 0 and "due=0" in retention.stdout

    verify = await asyncio.to_thread(
        subprocess.run,
        [HUB, "audit", "verify"],
        env=hub_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0 and "audit log intact: 2 entries" in verify.stdout

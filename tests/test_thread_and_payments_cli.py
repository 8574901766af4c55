"""The ``hub payments import`` and ``hub thread`` commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from automation_support import NOW, case_row, make_case, make_creditor
from sqlalchemy import select

from hub.domain.dunning import DEFAULT_POLICY
from hub.errors import NotFoundError
from hub.services.automation import apply_intent
from hub.services.thread import append_entry, lock_case
from hub.services.thread_listing import read_thread
from hub.storage.db import Database
from hub.storage.models import AuditEntry

HUB = str(Path(sys.executable).parent / "hub")
CAMT = Path(__file__).parent / "data" / "payments" / "camt053_sample.xml"


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_payments_import_command(database: Database, hub_env: dict[str, str]) -> None:
    creditor = await make_creditor(database)
    paid = await make_case(database, creditor, "INV-1001", amount="250.00")
    partial = await make_case(database, creditor, "INV-1002", amount="250.00")

    dry = _hub(hub_env, "payments", "import", str(CAMT), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 to record" in dry.stdout and "dry run" in dry.stdout
    assert (await case_row(database, paid)).state == "reminded"

    done = _hub(hub_env, "payments", "import", str(CAMT))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("unmatched: ") for line in lines) == 3  # 1003, 1004, 9999
    assert sum(line.startswith("ignored: ") for line in lines) == 2
    assert "2 recorded" in lines[-1] and "1 case(s) paid in full" in lines[-1]
    assert (await case_row(database, paid)).state == "paid"
    assert str((await case_row(database, partial)).paid_amount).startswith("100.00")

    bad = CAMT.parent / "bad.csv"
    bad.write_text(
        "reference,amount,currency,booked_date,external_id\nINV-1002,x,EUR,2026-12-01,z\n"
    )
    try:
        invalid = _hub(hub_env, "payments", "import", str(bad))
    finally:
        bad.unlink()
    assert invalid.returncode == 2
    assert "invalid: line 2: amount:" in invalid.stdout


async def test_thread_command(database: Database, hub_env: dict[str, str]) -> None:
    creditor = await make_creditor(database)
    case_id = await make_case(database, creditor, "T-1")
    async with database.transaction() as session:
        await lock_case(session, case_id)
        await append_entry(
            session,
            case_id,
            kind="note",
            actor="user:5",
            now=NOW,
            meta={},
            internal=True,
            body="called the debtor\nno answer",
        )
        await apply_intent(
            session,
            case_id,
            intent="dispute",
            fields={"reason": "defective"},
            confidence=0.91,
            is_suggestion=False,
            sender_verified=True,
            source_entry_id=None,
            now=NOW,
            policy=DEFAULT_POLICY,
        )

    text = _hub(hub_env, "thread", "T-1")
    assert text.returncode == 0, text.stderr
    out = text.stdout.splitlines()
    assert out[0].startswith("case T-1 (creditor ACME") and "disputed, 3 entries" in out[0]
    seqs = [line.split()[0] for line in out if line[:4].strip().isdigit()]
    assert seqs == ["1", "2", "3"]
    note = next(line for line in out if " note " in line)
    assert "[internal]" in note and "user:5" in note
    assert "      | no answer" in out
    decision = out.index(next(line for line in out if "state_change" in line))
    assert "rule=dispute intent=dispute confidence=0.91 reminded -> disputed" in out[decision + 1]
    assert out[decision + 2].startswith("      why: the debtor disputes the claim")

    raw = _hub(hub_env, "thread", "T-1", "--json")
    assert raw.returncode == 0, raw.stderr
    listed = json.loads(raw.stdout)
    assert [e["seq"] for e in listed] == [1, 2, 3]
    assert [e["kind"] for e in listed] == ["reminder", "note", "state_change"]
    assert listed[1]["internal"] is True and listed[1]["body"] == "called the debtor\nno answer"
    assert listed[2]["meta"]["to_state"] == "disputed"

    # the same reference at another creditor: the command asks which one
    other = await make_creditor(database, "ZETA")
    await make_case(database, other, "T-1")
    ambiguous = _hub(hub_env, "thread", "T-1")
    assert ambiguous.returncode == 2 and "ACME, ZETA" in ambiguous.stderr
    chosen = _hub(hub_env, "thread", "T-1", "--creditor", "ZETA", "--json")
    assert chosen.returncode == 0 and len(json.loads(chosen.stdout)) == 1
    with pytest.raises(NotFoundError, match="no case"):
        await read_thread(database, "NOPE", creditor_code=None, actor="test")

    async with database.sessions() as session:
        reads = (
            await session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "case.read"))
        ).all()
    assert reads == ["cli:thread"] * 3

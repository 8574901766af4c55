"""``hub demo`` end to end: it runs, it narrates what really happened, and it leaks nothing."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from hub.demo import data


def _run_demo(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    hub = Path(sys.executable).with_name("hub")
    return subprocess.run(
        [str(hub), "demo", "--once", "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


def test_demo_runs_and_dump_has_no_personal_data(tmp_path: Path) -> None:
    result = _run_demo(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"imported {len(data.DEBTORS)}" in out
    assert "no debtor name, email or street in clear text" in out

    # the loop really ran: every due case got its reminder, through the real relay and SMTP
    due = [d for d in data.DEBTORS if d.days_overdue >= 7]
    assert f"queued {len(due)}" in out
    for debtor in due:
        assert f"{debtor.name} ({debtor.language}) received" in out
    pgp = [d for d in due if d.key == "pgp"]
    smime = [d for d in due if d.key.startswith("smime")]
    assert out.count(") received PGP/MIME, encrypted and signed; good signature") == len(pgp)
    assert out.count("encrypted and signed; valid S/MIME signature") == len(smime)
    assert "S/MIME (AES-256-GCM)" in out and "S/MIME (AES-256-CBC)" in out
    # what reached a debtor without a key carries none of their personal data
    mailboxes = tmp_path / "demo" / "mailboxes"
    for debtor in (d for d in due if not d.key):
        raw = b"".join(p.read_bytes() for p in (mailboxes / debtor.email).iterdir())
        assert raw, debtor.email
        for value in (debtor.name, debtor.reference, debtor.description, debtor.amount):
            assert value.encode() not in raw
    # the encrypted mail hides the reference from anyone on the way
    for debtor in pgp + smime:
        raw = b"".join(p.read_bytes() for p in (mailboxes / debtor.email).iterdir())
        assert debtor.reference.encode() not in raw and debtor.name.encode() not in raw

    _assert_replies(out, mailboxes)

    db_path = tmp_path / "demo" / "hub.db"
    with sqlite3.connect(db_path) as conn:
        dump = "\n".join(conn.iterdump())
        cases = conn.execute("select count(*) from cases").fetchone()[0]
    assert cases == len(data.DEBTORS)
    # the dump holds the encrypted values (as hex); none of the personal data in any form
    for debtor in data.DEBTORS:
        for value in (debtor.name, debtor.email, debtor.street):
            assert value not in dump
            assert value.encode("utf-8").hex() not in dump.lower()
    # but it does hold the non-personal facts, so the check above is not vacuous
    assert data.DEBTORS[0].reference in dump

    # secrets are owner-only
    for secret in (tmp_path / "demo" / "secrets").iterdir():
        assert secret.stat().st_mode & 0o077 == 0


#: the scripted replies: reference -> (kind, route rule, intent, state after) (None: no intent)
REPLIES = {
    "BW-2026-1001": ("reply", "reply_token", "payment_promise", "promised"),
    "SW-2026-2001": ("reply", "reply_token", "dispute", "disputed"),
    "KC-2026-3001": ("reply", "reply_token", "installment_request", "plan_requested"),
    "BW-2026-1002": ("auto_reply", "reply_token", None, "reminded"),
    "KC-2026-3002": ("bounce", "bounce_envelope", None, "reminded"),
}


def _block(out: str, reference: str) -> str:
    """The narration of the inbound message routed to ``reference``."""
    match = re.search(
        rf"inbound #\d+ -> case {reference}:.*?(?=\n\[demo\] (?!      )|\Z)", out, re.S
    )
    assert match, f"no inbound message narrated for {reference}"
    return match.group(0)


def _assert_replies(out: str, mailboxes: Path) -> None:
    """Every reply routed to its case with its intent and state change; answers exactly owed."""
    by_ref = {d.reference: d for d in data.DEBTORS}
    assert f"delivered {len(REPLIES)} messages into the hub's inbox by LMTP" in out
    assert f"stored={len(REPLIES)} " in out and "triage=0" in out
    for reference, (kind, rule, intent, state) in REPLIES.items():
        # a confident intent: no ", a suggestion" after the figure
        block = _block(out, reference)
        assert f"case {reference}: {kind} (" in block and f"route rule {rule}" in block, block
        if by_ref[reference].key == "pgp":
            assert "pgp decrypted, signature valid, signer matches From" in block, block
        if intent is None:
            assert "intent " not in block and f"case state stays {state}" in block, block
        else:
            assert re.search(rf"intent {intent} \(confidence [01]\.\d\d\)", block), block
            assert f"case reminded -> {state}" in block, block
            assert "reply text: '" in block
    assert "the debtor's address is now marked undeliverable" in _block(out, "KC-2026-3002")
    # the answers reached exactly the debtors who should get one, and they could open them
    owed = {by_ref[r].name for r, (_, _, intent, _) in REPLIES.items() if intent}
    answered = set(
        re.findall(r"\] (.+?) got the hub's answer \(PGP/MIME, encrypted and signed; good", out)
    )
    assert answered == owed
    for reference, (_, _, intent, _) in REPLIES.items():
        debtor = by_ref[reference]
        got = len(list((mailboxes / debtor.email).iterdir()))
        assert got == (2 if intent else 1), (debtor.email, got)
        if not intent:
            assert f"no answer to {debtor.name}" in out
    assert "the thread of case BW-2026-1001 (state promised)" in out


def test_demo_runs_again_from_scratch(tmp_path: Path) -> None:
    assert _run_demo(tmp_path).returncode == 0
    second = _run_demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "removed the previous demo" in second.stdout
    assert f"imported {len(data.DEBTORS)}" in second.stdout

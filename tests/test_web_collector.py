"""The collector's pages on both backends, through a real server: the triage queue (confirm and
correct an intent, the correction exported for training), unmatched messages attached or
discarded, a plan approved with a change, a decision reverted, a debtor's new address added,
the creditor's report, and CSRF on every new form."""

from __future__ import annotations

import asyncio
import csv
import email.policy
import io
import json
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from collector_support import debtor_reply, open_tasks, unmatched_message
from dunning_support import HubKeys, hub_settings, make_hub_keys
from sqlalchemy import select, update
from web_support import client, get_csrf, login, seed, serve, web_settings

from hub.cli.main import cli
from hub.config import Settings
from hub.services.corrections_export import correction_records
from hub.storage.db import Database
from hub.storage.models import (
    AuditEntry,
    Case,
    Classification,
    Creditor,
    DebtorEmail,
    InboundMessage,
    OutboxMessage,
    ThreadEntry,
)
from hub.storage.models_cases import Installment, InstallmentPlan
from hub.web.routes import ROUTES

NEW_ROUTES = (
    "triage_label",
    "triage_done",
    "triage_attach",
    "triage_discard",
    "case_reply",
    "case_plan",
    "case_revert",
    "case_address",
    "case_draft",
)
RAW = (
    b"From: Stranger <stranger@elsewhere.example>\r\nTo: hub@hub.example\r\n"
    b"Subject: about my bill\r\nMessage-ID: <m@elsewhere.example>\r\n\r\nHello\r\n"
)


async def _case(database: Database, case_id: int) -> Case:
    async with database.sessions() as session:
        found = await session.get(Case, case_id)
        assert found is not None
        return found


async def test_triage_confirm_and_correct_with_export(
    settings: Settings, database: Database, tmp_path: Path, hub_env: dict[str, str]
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    promised = (date.today() + timedelta(days=10)).isoformat()
    _, task_a = await debtor_reply(
        database,
        data.case_a,
        text="I will pay everything by the date given.",
        intent="payment_promise",
        fields={"amount": None, "currency": None, "date": promised},
        confidence=0.41,
        is_suggestion=True,
        sender_verified=True,
    )
    entry_b, task_b = await debtor_reply(
        database,
        data.case_b,
        text="I never ordered this. Not mine.",
        intent="payment_promise",
        fields={"amount": None, "currency": None, "date": None},
        confidence=0.93,
        is_suggestion=False,
        sender_verified=False,  # unverified: a triage task too
        message_id="<reply-b@debtor.example>",
    )
    assert task_a is not None and task_b is not None
    assert (await _case(database, data.case_a)).state == "open"
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        async with http.get("/triage") as response:
            html = await response.text()
            assert response.status == 200
        assert f'id="task-{task_a}"' in html and f'id="task-{task_b}"' in html
        assert "triage_low_confidence" in html and "triage_unverified_sender" in html
        assert "0.41" in html and "only a suggestion" in html  # why it waits
        assert "token valid" in html  # the route decision's outcomes
        assert html.index(f'id="task-{task_a}"') < html.index(f'id="task-{task_b}"')  # oldest
        assert 'accesskey="p"' in html and "Confirm payment_promise" in html
        async with http.get("/triage", params={"creditor": "CRB"}) as response:
            filtered = await response.text()
        assert f'id="task-{task_b}"' in filtered and f'id="task-{task_a}"' not in filtered
        async with http.get("/triage", params={"intent": "dispute"}) as response:
            assert 'id="no-tasks"' in await response.text()
        async with http.get("/triage", params={"age": "7"}) as response:
            assert 'id="no-tasks"' in await response.text()

        csrf = await get_csrf(http, "/triage")
        async with http.post(
            f"/triage/tasks/{task_a}/label", data={"label": "payment_promise", "csrf_token": csrf}
        ) as response:
            assert response.status == 200
            assert "confirmed (payment_promise)" in await response.text()
        async with http.post(
            f"/triage/tasks/{task_b}/label", data={"label": "dispute", "csrf_token": csrf}
        ) as response:
            assert "corrected (dispute)" in await response.text()
        # a handled task takes no second decision
        async with http.post(
            f"/triage/tasks/{task_b}/label", data={"label": "other:thanks", "csrf_token": csrf}
        ) as response:
            assert response.status == 400

    case_a, case_b = await _case(database, data.case_a), await _case(database, data.case_b)
    assert case_a.state == "promised" and case_a.paused_until is not None
    assert case_b.state == "disputed"
    assert "review_dispute" in {k for _, k in await open_tasks(database, data.case_b)}
    async with database.sessions() as session:
        rows = {c.thread_entry_id: c for c in (await session.scalars(select(Classification))).all()}
        decision = await session.scalar(
            select(ThreadEntry)
            .where(ThreadEntry.case_id == data.case_b)
            .order_by(ThreadEntry.seq.desc())
            .limit(1)
        )
        actions = set((await session.scalars(select(AuditEntry.action))).all())
    collector_id = data.accounts["collector"][2]
    corrected = rows[entry_b]
    assert corrected.corrected_intent == "dispute" and corrected.corrected_by == collector_id
    assert not corrected.is_suggestion
    confirmed = next(c for k, c in rows.items() if k != entry_b)
    assert confirmed.corrected_intent is None and confirmed.corrected_by == collector_id
    assert decision is not None and decision.actor == f"user:{collector_id}"
    assert decision.meta["rule"] == "dispute" and decision.meta["suggestion"] is False
    assert {"triage.confirm", "triage.correct", "triage.list"} <= actions

    records = [r async for r in correction_records(database, "test")]
    by_intent = {r["intent"]: r for r in records}
    assert by_intent["dispute"]["corrected"] is True
    assert by_intent["dispute"]["model_intent"] == "payment_promise"
    assert by_intent["dispute"]["text"] == "I never ordered this. Not mine."
    assert by_intent["dispute"]["fields"] == {"reason": None}
    assert by_intent["payment_promise"]["fields"]["date"] == promised
    assert by_intent["payment_promise"]["claim"]["reference"] == "A-1"

    out = tmp_path / "corrections.jsonl"
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["nlp", "export-corrections", "--out", str(out)], env=hub_env
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["intent"] for r in lines) == ["dispute", "payment_promise"]
    assert {"id", "lang", "received", "claim", "text", "intent", "fields", "also"} <= set(lines[0])
    assert out.stat().st_mode & 0o777 == 0o600


async def test_unmatched_message_attached_or_discarded(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    first = await unmatched_message(database, 1, RAW)
    second = await unmatched_message(database, 2, RAW)
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        async with http.get("/triage") as response:
            html = await response.text()
        assert f'id="message-{first}"' in html and "none found" in html
        csrf = await get_csrf(http, "/triage")
        async with http.post(
            f"/triage/messages/{first}/attach",
            data={"reference": "NO-SUCH", "csrf_token": csrf},
        ) as response:
            assert response.status == 400
        async with http.post(
            f"/triage/messages/{first}/attach", data={"reference": "A-1", "csrf_token": csrf}
        ) as response:
            assert str(response.url).endswith(f"/cases/{data.case_a}")
            assert "attached by user:" in await response.text()
        async with http.post(
            f"/triage/messages/{second}/discard", data={"confirm": "yes", "csrf_token": csrf}
        ) as response:
            assert "discarded" in await response.text()
        async with http.get("/triage") as response:
            html = await response.text()
        assert f'id="message-{first}"' not in html and f'id="message-{second}"' not in html
    async with database.sessions() as session:
        rows = {r.id: r for r in (await session.scalars(select(InboundMessage))).all()}
        entry = await session.get(ThreadEntry, rows[first].thread_entry_id)
    assert rows[first].state == "routed" and rows[second].state == "discarded"
    assert rows[second].raw == RAW  # nothing is lost
    assert entry is not None and entry.case_id == data.case_a and entry.raw_message == RAW


async def test_plan_approved_with_a_change_revert_and_new_address(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    start = date.today() + timedelta(days=14)
    keyring = database.keyring
    await debtor_reply(
        database,
        data.case_a,
        text="Can I pay in 2 parts?",
        intent="installment_request",
        fields={"installments": 2, "frequency": "monthly", "start_date": start.isoformat()},
        confidence=0.95,
        is_suggestion=False,
        sender_verified=True,
    )
    address = "alice.new@elsewhere.example"
    entry_b, _ = await debtor_reply(
        database,
        data.case_b,
        text="I dispute this.",
        intent="dispute",
        fields={"reason": "not_owed"},
        confidence=0.97,
        is_suggestion=False,
        sender_verified=True,
        route={
            "proposed_address": {
                "case_id": data.case_b,
                "debtor_id": 0,
                "address_hash": keyring.email_hash(address),
                "redacted": "a***@elsewhere.example",
                "authenticated": True,
            }
        },
        raw=f"From: Bob <{address}>\r\nSubject: x\r\n\r\nI dispute this.\r\n".encode(),
    )
    async with database.transaction() as session:
        case_b = await session.get(Case, data.case_b)
        assert case_b is not None
        entry = await session.get(ThreadEntry, entry_b)
        assert entry is not None
        route = dict(entry.meta["route"])
        route["proposed_address"] = {**route["proposed_address"], "debtor_id": case_b.debtor_id}
        entry.meta = {**entry.meta, "route": route}
    async with database.sessions() as session:
        plan_id = await session.scalar(
            select(InstallmentPlan.id).where(InstallmentPlan.case_id == data.case_a)
        )
        dispute_entry = await session.scalar(
            select(ThreadEntry.id).where(
                ThreadEntry.case_id == data.case_b, ThreadEntry.kind == "state_change"
            )
        )
    assert (await _case(database, data.case_a)).state == "plan_requested"
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        async with http.get(f"/cases/{data.case_a}") as response:
            html = await response.text()
        assert (
            f'id="plan-{plan_id}"' in html and "Decision <code>installment_request</code>" in html
        )
        csrf = await get_csrf(http, f"/cases/{data.case_a}")
        async with http.post(
            f"/cases/{data.case_a}/plans/{plan_id}",
            data={
                "decision": "approve",
                "count": "4",  # the collector's change: 4 parts instead of 2
                "amount": "",
                "frequency": "monthly",
                "start_date": start.isoformat(),
                "csrf_token": csrf,
            },
        ) as response:
            assert 'id="case-state">plan_active<' in await response.text()
        async with http.get(f"/cases/{data.case_b}") as response:
            html = await response.text()
        assert "a***@elsewhere.example" in html and f'id="address-{entry_b}"' in html
        async with http.post(
            f"/cases/{data.case_b}/address/{entry_b}", data={"csrf_token": csrf}
        ) as response:
            assert response.status == 200
        async with http.post(
            f"/cases/{data.case_b}/address/{entry_b}", data={"csrf_token": csrf}
        ) as response:
            assert response.status == 400  # offered once, added once
        async with http.post(
            f"/cases/{data.case_b}/revert/{dispute_entry}", data={"csrf_token": csrf}
        ) as response:
            html = await response.text()
        assert 'id="case-state">disputed<' not in html and "reverted" in html
        # another case's plan through this case's URL: not found
        async with http.post(
            f"/cases/{data.case_b}/plans/{plan_id}",
            data={"decision": "reject", "csrf_token": csrf},
        ) as response:
            assert response.status == 404
    async with database.sessions() as session:
        plan = await session.get(InstallmentPlan, plan_id)
        parts = (
            await session.scalars(select(Installment).where(Installment.plan_id == plan_id))
        ).all()
        approval = await session.scalar(
            select(ThreadEntry.meta)
            .where(ThreadEntry.case_id == data.case_a, ThreadEntry.kind == "state_change")
            .order_by(ThreadEntry.seq.desc())
            .limit(1)
        )
        emails = (
            await session.scalars(
                select(DebtorEmail).where(DebtorEmail.address_hash == keyring.email_hash(address))
            )
        ).all()
    assert plan is not None and plan.status == "approved" and len(parts) == 4
    assert sum(p.amount for p in parts) == (await _case(database, data.case_a)).claim_amount
    assert approval is not None and approval["changes"]["count"] == "4"
    assert len(emails) == 1 and emails[0].verified
    assert (await _case(database, data.case_b)).state != "disputed"


async def test_creditor_report_has_own_cases_and_no_notes(
    settings: Settings, database: Database
) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    async with serve(s, database) as base, client(base) as collector, client(base) as creditor:
        await login(collector, *data.accounts["collector"][:2])
        csrf = await get_csrf(collector, f"/cases/{data.case_a}")
        async with collector.post(
            f"/cases/{data.case_a}/notes", data={"text": "internal only", "csrf_token": csrf}
        ):
            pass
        await login(creditor, *data.accounts["creditor"][:2])
        async with creditor.get("/report.csv") as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"].startswith("attachment")
            text = await response.text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["reference"] for r in rows] == ["A-1"]
    assert rows[0]["state"] == "open" and rows[0]["balance"] == "100.00"
    assert rows[0]["last_activity"]
    assert "internal only" not in text and "Alice" not in text


async def test_csrf_is_required_on_every_new_form(settings: Settings, database: Database) -> None:
    s = web_settings(settings)
    data = await seed(database, s)
    routes = [r for r in ROUTES if r.name in NEW_ROUTES]
    assert len(routes) == len(NEW_ROUTES)
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        for route in routes:
            path = (
                route.path.replace("{case_id}", str(data.case_a))
                .replace("{task_id}", "1")
                .replace("{inbound_id}", "1")
                .replace("{plan_id}", "1")
                .replace("{entry_id}", "1")
            )
            for token in (None, "forged"):
                form = {"text": "x", "label": "dispute", "decision": "approve"}
                if token:
                    form["csrf_token"] = token
                async with http.post(path, data=form, allow_redirects=False) as response:
                    assert response.status == 403, (route.name, token)


@pytest.fixture(scope="module")
def hub_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubKeys]:
    keys = make_hub_keys(tmp_path_factory.mktemp("hub"))
    yield keys
    subprocess.run(
        ["gpgconf", "--homedir", str(keys.gnupg_home), "--kill", "gpg-agent"], check=False
    )


async def test_collector_reply_goes_to_the_outbox_in_the_thread(
    settings: Settings, database: Database, hub_keys: HubKeys
) -> None:
    s = web_settings(hub_settings(settings, hub_keys))
    data = await seed(database, s)
    async with database.transaction() as session:
        await session.execute(
            update(Creditor).values(settings={"dunning": {"encryption": "opportunistic"}})
        )
    await debtor_reply(
        database,
        data.case_a,
        text="What is this about?",
        intent="other",
        fields={"subtype": "question"},
        confidence=0.9,
        is_suggestion=False,
        sender_verified=True,
        message_id="<question-1@debtor.example>",
    )
    async with serve(s, database) as base, client(base) as http:
        await login(http, *data.accounts["collector"][:2])
        csrf = await get_csrf(http, f"/cases/{data.case_a}")
        async with http.post(
            f"/cases/{data.case_a}/reply",
            data={"text": "It is invoice A-1 of Creditor A.", "csrf_token": csrf},
        ) as response:
            assert response.status == 200
            html = await response.text()
    assert "It is invoice A-1 of Creditor A." in html
    async with database.sessions() as session:
        queued = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.case_id == data.case_a))
        ).all()
    assert len(queued) == 1 and queued[0].state == "pending"
    message = BytesParser(policy=email.policy.default).parsebytes(queued[0].message)
    assert message["In-Reply-To"] == "<question-1@debtor.example>"
    assert json.loads(queued[0].recipients) == ["alice@example.org"]

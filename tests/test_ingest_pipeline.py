"""The whole inbound pipeline on real messages, on SQLite and PostgreSQL: stored bytes in,
an understanding out (parse -> unprotect -> detect -> reply_text -> understood).

Messages are made with real GnuPG keys (the hub's home with a passphrase, as [signing] names
it); nothing is mocked. Each test stores raw bytes the way the fetcher does (``store_raw``),
runs :func:`process_stored` and reads back what routing will read (:func:`load_understood`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_support import (
    DEBTOR,
    REMINDER_ID,
    STRANGER,
    Homes,
    autocrypt_reply,
    bounce,
    encrypted_reply,
    make_homes,
    no_mdc_reply,
    out_of_office,
    with_hub_keys,
)
from sqlalchemy import select

from hub.config import Settings
from hub.domain.routing import MessageKind
from hub.inbound.pipeline import STAGES, StageEnv, process_stored
from hub.inbound.store import MailboxKey, store_raw
from hub.inbound.understand import load_understood
from hub.storage.db import Database
from hub.storage.models import (
    Creditor,
    Debtor,
    DebtorEmail,
    DebtorKey,
    InboundMessage,
    QuarantinedMessage,
)

KEY = MailboxKey("hub@127.0.0.1:993", "INBOX", 1)


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homes]:
    made = make_homes(tmp_path_factory.mktemp("ingest-gpg"))
    yield made
    made.close()


async def _store(database: Database, *messages: bytes) -> list[int]:
    ids = []
    async with database.transaction() as session:
        start = await session.scalar(select(InboundMessage.uid).order_by(InboundMessage.uid.desc()))
        for offset, raw in enumerate(messages, start=(start or 0) + 1):
            ids.append((await store_raw(session, KEY, offset, raw)).id)
    return ids


async def _process(database: Database, settings: Settings, homes: Homes) -> tuple[int, int]:
    counts = await process_stored(database, StageEnv.from_settings(with_hub_keys(settings, homes)))
    return counts.parsed, counts.quarantined


async def _row(database: Database, inbound_id: int) -> InboundMessage:
    async with database.transaction() as session:
        row = await session.get(InboundMessage, inbound_id)
        assert row is not None
        return row


def test_stage_order_is_written_once() -> None:
    assert [stage.name for stage in STAGES] == [
        "parse", "unprotect", "detect", "reply_text", "understood",
    ]  # fmt: skip


async def test_encrypted_reply_is_decrypted_and_its_reply_text_extracted(
    settings: Settings, database: Database, homes: Homes
) -> None:
    (inbound_id,) = await _store(database, encrypted_reply(homes))
    assert await _process(database, settings, homes) == (1, 0)
    row = await _row(database, inbound_id)
    assert row.state == "processed" and row.processed_at is not None
    async with database.transaction() as session:
        understood = await load_understood(session, inbound_id)
    assert understood.kind is MessageKind.REPLY
    assert understood.crypto.encrypted and understood.crypto.decrypted
    assert understood.crypto.method == "pgp" and understood.crypto.integrity_protected
    # signed by the debtor, whose key the hub does not hold yet
    assert understood.crypto.signed and not understood.crypto.signature_valid
    assert understood.crypto.signature_verdict == "unknown_key"
    assert understood.reply_text.strip() == "Ich zahle am Freitag den ganzen Betrag."
    assert "Bitte zahlen Sie" in understood.text
    assert understood.in_reply_to == REMINDER_ID
    assert understood.from_ is not None and understood.from_.address == DEBTOR
    routing = understood.routing_input()
    assert routing.from_address == DEBTOR and routing.reply_text == understood.reply_text
    # the clear half holds no address, no text; the sealed half is not readable in the row
    analysis = json.dumps(row.analysis)
    assert DEBTOR not in analysis and "Freitag" not in analysis
    assert row.analysis is not None and row.analysis["crypto"]["decrypted"] is True
    assert row.analysis["reply_text"]["rules"]
    async with database.engine.connect() as conn:
        sealed = (
            await conn.exec_driver_sql(
                "SELECT understood FROM inbound_messages WHERE id = ?"
                if not database.is_postgres
                else "SELECT understood FROM inbound_messages WHERE id = $1",
                (inbound_id,),
            )
        ).scalar_one()
    assert b"Freitag" not in bytes(sealed) and DEBTOR.encode() not in bytes(sealed)


async def test_bounce_out_of_office_and_refused_message_are_recorded(
    settings: Settings, database: Database, homes: Homes
) -> None:
    ids = await _store(database, bounce(), out_of_office(), no_mdc_reply(homes))
    assert await _process(database, settings, homes) == (3, 0)
    async with database.transaction() as session:
        bounced, away, refused = [await load_understood(session, i) for i in ids]
    assert bounced.kind is MessageKind.BOUNCE
    assert bounced.original_message_id == REMINDER_ID
    assert bounced.bounce_recipients == (DEBTOR,)
    assert bounced.bounce_permanent is True and bounced.bounce_status == "5.1.1"
    assert away.kind is MessageKind.AUTO_REPLY
    assert away.analysis["detection"]["auto_reply"]["category"] == "vacation"
    # no MDC: never decrypted, but recorded with that verdict, not dropped
    assert refused.crypto.encrypted and not refused.crypto.decrypted and refused.crypto.refused
    assert refused.crypto.integrity_protected is False
    assert "exfiltrate" not in refused.text
    row = await _row(database, ids[2])
    assert row.state == "processed" and b"BEGIN PGP MESSAGE" in row.raw


async def test_malformed_message_is_quarantined_and_the_next_processed(
    settings: Settings, database: Database, homes: Homes
) -> None:
    ids = await _store(database, b"\x00\x01 no mail at all\r\n", out_of_office())
    assert await _process(database, settings, homes) == (1, 1)
    assert (await _row(database, ids[0])).state == "quarantined"
    assert (await _row(database, ids[1])).state == "processed"
    async with database.transaction() as session:
        entry = (await session.execute(select(QuarantinedMessage))).scalar_one()
    assert entry.inbound_message_id == ids[0] and entry.reason.startswith("parse")
    assert await _process(database, settings, homes) == (0, 0)  # nothing left, nothing twice


async def test_autocrypt_key_learnt_for_a_known_debtor_only(
    settings: Settings, database: Database, homes: Homes
) -> None:
    async with database.transaction() as session:
        creditor = Creditor(code="NORD", name="Nord GmbH")
        session.add(creditor)
        await session.flush()
        debtor = Debtor(
            creditor_id=creditor.id,
            external_ref="D-1",
            name="Dana Debtor",
            name_hash=database.keyring.lookup_hash("name:dana"),
        )
        session.add(debtor)
        await session.flush()
        session.add(
            DebtorEmail(
                debtor_id=debtor.id,
                address=DEBTOR,
                address_hash=database.keyring.email_hash(DEBTOR),
                is_primary=True,
            )
        )
        debtor_id = debtor.id
    await _store(
        database,
        autocrypt_reply(homes, message_id="<ac-1@debtor.example>"),
        autocrypt_reply(homes, stranger=True, message_id="<ac-2@stranger.example>"),
    )
    assert await _process(database, settings, homes) == (2, 0)
    async with database.transaction() as session:
        keys = list((await session.scalars(select(DebtorKey))).all())
    assert [(k.debtor_id, k.fingerprint, k.source) for k in keys] == [
        (debtor_id, homes.debtor_fpr, "autocrypt")
    ]
    assert keys[0].email_hash == database.keyring.email_hash(DEBTOR) and keys[0].can_encrypt
    # the stranger's key is nowhere, not even in the hub's GnuPG home
    assert homes.hub.key(homes.stranger_fpr) is None
    assert STRANGER not in json.dumps([k.fingerprint for k in keys])


async def test_hub_keys_missing_means_no_key_verdict(
    settings: Settings, database: Database, homes: Homes, tmp_path: Path
) -> None:
    """Without the hub's key (no GnuPG home configured) the reply is still recorded."""
    (inbound_id,) = await _store(database, encrypted_reply(homes, "<enc-2@debtor.example>"))
    counts = await process_stored(database, StageEnv())
    assert (counts.parsed, counts.quarantined) == (1, 0)
    async with database.transaction() as session:
        understood = await load_understood(session, inbound_id)
    assert understood.crypto.encrypted and not understood.crypto.decrypted
    assert understood.crypto.decryptions == ("no_key",)
    assert understood.text == ""

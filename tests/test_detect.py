"""Each detection rule on small hand-made messages (table-driven), and the rule order."""

from __future__ import annotations

import email
import email.policy

import pytest

from hub.inbound.detect import Detection, Kind, Outcome, detect
from hub.inbound.detect.reasons import decide_reason, is_hard

HEAD = (
    "Date: Mon, 6 Jan 2025 10:00:00 +0100\n"
    "Message-ID: <incoming-1@mail.example.net>\n"
    "MIME-Version: 1.0\n"
)


def _detect(text: str) -> Detection:
    raw = (HEAD + text).replace("\n", "\r\n").encode("utf-8")
    return detect(email.message_from_bytes(raw, policy=email.policy.default))


PERSON = (
    "From: Anna Schmidt <anna@example.de>\nTo: reply+abc@hub.example.org\n"
    "Subject: Re: Zahlungserinnerung\n{extra}Content-Type: text/plain; charset=utf-8\n\n"
    "{body}\n"
)

AUTO_REPLY_CASES = [
    pytest.param(
        "Auto-Submitted: auto-replied\n",
        "Subject: Re: Reminder",
        "I am out of the office until 15 January.",
        "Auto-Submitted",
        id="rfc3834-auto-replied",
    ),
    pytest.param(
        "Auto-Submitted: auto-generated\n",
        "Subject: Ticket received",
        "Your request has been received.",
        "Auto-Submitted",
        id="rfc3834-auto-generated",
    ),
    pytest.param(
        "X-Autoreply: yes\n", "Subject: Re: x", "Thanks.", "x-autoreply", id="x-autoreply"
    ),
    pytest.param(
        "X-Autorespond: on\n", "Subject: Re: x", "Thanks.", "x-autorespond", id="x-autorespond"
    ),
    pytest.param(
        "Precedence: auto_reply\n", "Subject: Re: x", "Hi.", "Precedence", id="precedence"
    ),
    pytest.param(
        "X-MS-Exchange-Inbox-Rules-Loop: anna@example.de\n",
        "Subject: Automatic reply: Reminder",
        "I am away.",
        "x-ms-exchange-inbox-rules-loop",
        id="exchange-rules-loop",
    ),
    pytest.param(
        "",
        "Subject: Automatische Antwort: Zahlungserinnerung",
        "Ich bin bis zum 20.01. nicht im Büro und habe keinen Zugriff auf meine E-Mails.",
        "subject",
        id="german-exchange-subject",
    ),
    pytest.param(
        "",
        "Subject: Abwesenheitsnotiz",
        "Vielen Dank für Ihre Nachricht. Ich bin bis 10. Februar im Urlaub.",
        "subject",
        id="german-abwesenheitsnotiz",
    ),
    pytest.param(
        "",
        "Subject: Autosvar: Betalingspåmindelse",
        "Jeg er på ferie indtil den 3. marts og læser ikke mails.",
        "subject",
        id="danish-autosvar",
    ),
    pytest.param(
        "",
        "Subject: Fravær",
        "Jeg er ikke på kontoret. Tilbage igen mandag.",
        "subject",
        id="danish-fravaer",
    ),
    pytest.param(
        "",
        "Subject: Out of Office: Payment reminder",
        "I am currently out of the office with limited access to email.",
        "subject",
        id="english-out-of-office",
    ),
]


@pytest.mark.parametrize(("extra", "subject", "body", "signal"), AUTO_REPLY_CASES)
def test_auto_replies(extra: str, subject: str, body: str, signal: str) -> None:
    found = _detect(
        f"From: anna@example.de\nTo: hub@hub.example.org\n{subject}\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
    assert found.kind is Kind.AUTO_REPLY, found.explain()
    assert found.auto_reply is not None
    assert signal.lower() in found.auto_reply.signal.lower()
    decided = found.decided_by
    assert decided is not None and decided.rule == "auto_reply"


@pytest.mark.parametrize(
    ("extra", "body", "expected_outcome"),
    [
        pytest.param(
            "Auto-Submitted: no\n",
            "I will pay the 250 EUR on Friday.",
            Outcome.PERSON,
            id="auto-submitted-no-is-a-person",
        ),
        pytest.param(
            "X-Auto-Response-Suppress: All\n",
            "Bitte senden Sie mir die Rechnung noch einmal.",
            Outcome.MISS,
            id="x-auto-response-suppress-is-no-marker",
        ),
        pytest.param(
            "",
            "I am on holiday until the 5th and will pay the rest when I am back.",
            Outcome.WEAK,
            id="holiday-words-alone-stay-a-reply",
        ),
        pytest.param(
            "Auto-Submitted: no\n",
            "Jeg er på ferie, men jeg betaler i morgen.",
            Outcome.PERSON,
            id="danish-person-with-auto-submitted-no",
        ),
    ],
)
def test_people_stay_replies(extra: str, body: str, expected_outcome: Outcome) -> None:
    found = _detect(PERSON.format(extra=extra, body=body))
    assert found.kind is Kind.REPLY, found.explain()
    assert found.decided_by is None
    assert found.rules[-1].rule == "auto_reply"
    assert found.rules[-1].outcome is expected_outcome
    assert found.envelope_to == ("reply+abc@hub.example.org",)


DSN_WITH_AUTO_SUBMITTED = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounce+tok3n@hub.example.org
Delivered-To: bounce+tok3n@hub.example.org
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system at host mx.example.net.
I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; debtor@example.com
Original-Recipient: rfc822;debtor@example.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.com
Diagnostic-Code: smtp; 550 5.1.1 <debtor@example.com>: Recipient address rejected: User unknown

--B
Content-Type: text/rfc822-headers

From: Collections <noreply@hub.example.org>
To: debtor@example.com
Subject: Payment reminder
Message-ID: <reminder-42@hub.example.org>

--B--
"""


def test_dsn_with_auto_submitted_is_a_bounce() -> None:
    found = _detect(DSN_WITH_AUTO_SUBMITTED)
    assert found.kind is Kind.BOUNCE, found.explain()
    bounce = found.bounce
    assert bounce is not None and bounce.format == "rfc3464"
    assert [r.address for r in bounce.recipients] == ["debtor@example.com"]
    recipient = bounce.recipients[0]
    assert (recipient.status, recipient.reply_code, recipient.reason) == (
        "5.1.1",
        "550",
        "userunknown",
    )
    assert recipient.permanent and recipient.hard and bounce.permanent
    assert recipient.remote_mta == "mail.example.com"
    assert bounce.original_message_id == "<reminder-42@hub.example.org>"
    assert bounce.reporting_mta == "mx.example.net"
    assert "bounce+tok3n@hub.example.org" in bounce.envelope_to
    # the auto-reply rule never ran: the bounce decided first
    assert found.rules[-1].outcome is Outcome.SKIPPED


TEXT_BOUNCES = [
    pytest.param(
        "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        "Subject: Mail delivery failed: returning message to sender\n"
        "X-Failed-Recipients: debtor@example.com\nAuto-Submitted: auto-replied\n",
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  debtor@example.com\n"
        "    host mail.example.com [192.0.2.1]\n"
        "    SMTP error from remote mail server after RCPT TO:<debtor@example.com>:\n"
        "    552 5.2.2 Mailbox full\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        "Message-ID: <reminder-7@hub.example.org>\nTo: debtor@example.com\n",
        ("debtor@example.com", "5.2.2", "mailboxfull", False),
        id="exim-mailbox-full-is-soft",
    ),
    pytest.param(
        "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n",
        "Hi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<debtor@example.com>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Message-ID: <reminder-8@hub.example.org>\n",
        ("debtor@example.com", "5.1.1", "userunknown", True),
        id="qmail-no-mailbox",
    ),
    pytest.param(
        "From: postmaster@example.com\nSubject: Undeliverable: Zahlungserinnerung\n",
        "Delivery has failed to these recipients or groups:\n\n"
        "debtor@example.com\n"
        "The email address you entered couldn't be found.\n\n"
        "Diagnostic information for administrators:\n"
        "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found'\n",
        ("debtor@example.com", "5.1.10", "userunknown", True),
        id="exchange-ndr",
    ),
    pytest.param(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "Subject: Delivery Status Notification (Delay)\n",
        "Delivery to the following recipient has been delayed:\n\n"
        "     debtor@example.com\n\n"
        "Message will be retried for 2 more day(s)\n\n"
        "Technical details of temporary failure:\n"
        "The recipient server did not accept our requests to connect.\n",
        ("debtor@example.com", "4.4.7", "expired", False),
        id="gmail-delay-is-temporary",
    ),
]


@pytest.mark.parametrize(("head", "body", "expected"), TEXT_BOUNCES)
def test_text_bounces(head: str, body: str, expected: tuple[str, str, str, bool]) -> None:
    found = _detect(
        f"{head}To: bounce+tok3n@hub.example.org\nReturn-Path: <>\n"
        f"Content-Type: text/plain; charset=us-ascii\n\n{body}"
    )
    assert found.kind is Kind.BOUNCE, found.explain()
    assert found.bounce is not None
    recipient = found.bounce.recipients[0]
    address, status, reason, hard = expected
    assert (recipient.address, recipient.status, recipient.reason, recipient.hard) == (
        address,
        status,
        reason,
        hard,
    )
    assert recipient.permanent is status.startswith("5")
    assert found.bounce.envelope_to == ("bounce+tok3n@hub.example.org",)


def test_forwarded_bounce_from_a_person_is_a_reply() -> None:
    found = _detect(
        PERSON.format(
            extra="",
            body="Your mail bounced, see below. Use my new address please.\n\n"
            "> This message was created automatically by mail delivery software.\n"
            ">   old@example.com",
        )
    )
    assert found.kind is Kind.REPLY, found.explain()


def test_bounce_original_message_id_from_returned_message() -> None:
    found = _detect(
        "From: MAILER-DAEMON@mx.example.net\nTo: bounce+x@hub.example.org\n"
        "Subject: Returned mail: see transcript for details\n"
        'Content-Type: multipart/mixed; boundary="M"\n\n'
        "--M\nContent-Type: text/plain\n\n"
        "The original message was received at Mon, 6 Jan 2025\n"
        "   ----- The following addresses had permanent fatal errors -----\n"
        "<debtor@example.com>\n"
        "    (reason: 550 5.1.2 Host unknown (Name server: example.com: host not found))\n\n"
        "--M\nContent-Type: message/rfc822\n\n"
        "From: noreply@hub.example.org\nTo: debtor@example.com\n"
        "Message-ID: <reminder-9@hub.example.org>\nSubject: Reminder\n\nPay.\n"
        "--M--\n"
    )
    assert found.kind is Kind.BOUNCE, found.explain()
    assert found.bounce is not None
    assert found.bounce.original_message_id == "<reminder-9@hub.example.org>"
    recipient = found.bounce.recipients[0]
    assert (recipient.address, recipient.reason, recipient.hard) == (
        "debtor@example.com",
        "hostunknown",
        True,
    )


def test_delivered_dsn_is_a_delivery_report() -> None:
    found = _detect(
        "From: MAILER-DAEMON@mx.example.net\nTo: bounce+x@hub.example.org\n"
        "Subject: Successful Mail Delivery Report\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="D"\n\n'
        "--D\nContent-Type: text/plain\n\nYour message was successfully delivered.\n\n"
        "--D\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        "Final-Recipient: rfc822; debtor@example.com\nAction: delivered\nStatus: 2.0.0\n\n--D--\n"
    )
    assert found.kind is Kind.DELIVERY_REPORT, found.explain()
    assert found.bounce is None


def test_mdn_read_receipt() -> None:
    found = _detect(
        "From: debtor@example.com\nTo: collections@hub.example.org\n"
        "Subject: Read: Payment reminder\nAuto-Submitted: auto-replied\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="R"\n\n'
        "--R\nContent-Type: text/plain\n\nYour message was displayed.\n\n"
        "--R\nContent-Type: message/disposition-notification\n\n"
        "Reporting-UA: mail.example.com; Thunderbird\n"
        "Final-Recipient: rfc822;debtor@example.com\n"
        "Original-Message-ID: <reminder-10@hub.example.org>\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n\n--R--\n"
    )
    assert found.kind is Kind.READ_RECEIPT, found.explain()
    receipt = found.read_receipt
    assert receipt is not None
    assert receipt.disposition_type == "displayed"
    assert receipt.original_message_id == "<reminder-10@hub.example.org>"
    assert receipt.final_recipient == "debtor@example.com"


def test_arf_abuse_report() -> None:
    found = _detect(
        "From: feedback@isp.example\nTo: abuse@hub.example.org\nSubject: Abuse report\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\n\n'
        "--F\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n"
        "--F\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
        "Original-Mail-From: <bounce+x@hub.example.org>\n"
        "Original-Rcpt-To: <debtor@example.com>\nSource-IP: 192.0.2.1\n\n"
        "--F\nContent-Type: text/rfc822-headers\n\n"
        "From: noreply@hub.example.org\nMessage-ID: <reminder-11@hub.example.org>\n\n--F--\n"
    )
    assert found.kind is Kind.FEEDBACK_REPORT, found.explain()
    report = found.feedback
    assert report is not None
    assert report.feedback_type == "abuse"
    assert report.original_mail_from == "bounce+x@hub.example.org"
    assert report.original_rcpt_to == ("debtor@example.com",)
    assert report.original_message_id == "<reminder-11@hub.example.org>"
    assert report.source_ip == "192.0.2.1"


def test_malformed_message_gets_a_verdict() -> None:
    found = _detect(
        "From: =?bogus?Q?broken?= <<<\nSubject: =?utf-8?B?not base64!?=\n"
        'Content-Type: multipart/report; boundary="missing"\n\n'
        "no parts here at all\n"
    )
    assert found.kind is Kind.REPLY
    assert len(found.rules) == 6


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason", "hard"),
    [
        ("5.1.1", "550 5.1.1 User unknown", "userunknown", True),
        ("5.0.0", "550 Requested action not taken: mailbox unavailable", "userunknown", True),
        ("5.2.2", "552 5.2.2 Mailbox full", "mailboxfull", False),
        ("4.2.2", "452 4.2.2 Over quota", "mailboxfull", False),
        (
            "5.7.1",
            "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
            "blocked",
            False,
        ),
        ("5.7.1", "550 5.7.1 Message rejected as spam", "spamdetected", False),
        ("5.1.2", "Host or domain name not found", "hostunknown", True),
        ("4.4.7", "delivery time expired", "expired", False),
        ("5.0.0", "Postfach voll", "mailboxfull", False),
    ],
)
def test_reason_table(status: str, diagnostic: str, reason: str, hard: bool) -> None:
    assert decide_reason(status, diagnostic) == reason
    assert is_hard(reason, status) is hard

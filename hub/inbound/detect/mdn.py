"""Read receipts: RFC 8098 message disposition notifications.

An MDN is a ``multipart/report; report-type=disposition-notification`` whose
``message/disposition-notification`` part says what happened to the message (Disposition:
``manual-action/MDN-sent-manually; displayed``), for whom (Final-Recipient) and to which
message (Original-Message-ID).
"""

from __future__ import annotations

from email.message import Message

from hub.inbound.detect.fields import first, part_blocks, parts_of_type, typed_value
from hub.inbound.detect.mime import addresses, normal_message_id, original_message_id, param
from hub.inbound.detect.result import ReadReceipt

STATUS_TYPES = ("message/disposition-notification", "message/global-disposition-notification")


def read_receipt(message: Message) -> tuple[ReadReceipt | None, str]:
    """The read receipt the message is, and why; or None and why not."""
    parts = parts_of_type(message, *STATUS_TYPES)
    if not parts and param(message, "report-type") != "disposition-notification":
        return None, "no message/disposition-notification part"
    fields = [field for part in parts for block in part_blocks(part) for field in block]
    disposition = first(fields, "disposition")
    # "action-mode/sending-mode; type/modifier" (RFC 8098, 3.2.6)
    disposition_type = disposition.partition(";")[2].strip().split("/")[0].strip().lower()
    original = normal_message_id(first(fields, "original-message-id"))
    if original is None:
        original = original_message_id(message, "")
    receipt = ReadReceipt(
        disposition=disposition,
        disposition_type=disposition_type or "unknown",
        original_message_id=original,
        final_recipient=(addresses(typed_value(first(fields, "final-recipient"))) or [""])[0],
    )
    return receipt, f"RFC 8098 disposition notification ({disposition_type or 'no disposition'})"

"""``hub thread CASE_REF``: print a case's thread in order, or as JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from hub.cli.context import CliContext, pass_context, run
from hub.services.thread_listing import CaseThreadListing, ThreadLine, read_thread

#: meta keys shown in the first place of an entry's facts, in this order
_LEADING = ("rule", "intent", "confidence")
#: meta keys never printed in the text form (shown by --json)
_HIDDEN = frozenset({"why", "from_state", "to_state", "paused_until_before"})


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def facts(meta: dict[str, Any]) -> str:
    """The decision facts of an entry's meta on one line: rule, intent, states, the rest."""
    parts = [f"{key}={meta[key]}" for key in _LEADING if meta.get(key) is not None]
    if "from_state" in meta and "to_state" in meta:
        parts.append(f"{meta['from_state']} -> {meta['to_state']}")
    parts += [
        f"{key}={value}"
        for key, value in meta.items()
        if key not in _LEADING and key not in _HIDDEN and _scalar(value) and value not in (None, "")
    ]
    return " ".join(parts)


def format_line(line: ThreadLine) -> list[str]:
    head = f"{line.seq:>4}  {line.occurred_at}  {line.kind:<16} {line.actor}"
    if line.internal:
        head += "  [internal]"
    out = [head]
    if line.subject:
        out.append(f"      subject: {line.subject}")
    if line.meta:
        summary = facts(line.meta)
        if summary:
            out.append(f"      {summary}")
        if line.meta.get("why"):
            out.append(f"      why: {line.meta['why']}")
    if line.reply_text is not None:
        out.append("      reply text:")
        out += [f"      > {text}" for text in line.reply_text.splitlines()]
    out += [f"      attachment: {name}" for name in line.attachments]
    if line.body:
        if line.reply_text is not None:
            out.append("      full text:")
        out += [f"      | {text}" for text in line.body.splitlines()]
    return out


def format_thread(listing: CaseThreadListing) -> str:
    lines = [
        f"case {listing.reference} (creditor {listing.creditor}, id {listing.case_id}): "
        f"{listing.state}, {len(listing.entries)} entries"
    ]
    for entry in listing.entries:
        lines += format_line(entry)
    return "\n".join(lines)


@click.command("thread")
@click.argument("case_ref")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the entries.")
@click.option(
    "--creditor", "creditor_code", metavar="CODE", help="The creditor, when several use CASE_REF."
)
@pass_context
def thread(ctx: CliContext, case_ref: str, as_json: bool, creditor_code: str | None) -> None:
    """Print the thread of the case CASE_REF: every message, note and decision, in order.

    Internal notes are marked [internal]; decisions show their rule, intent, confidence, the
    state change and why. The read is written to the audit log.
    """

    async def go() -> CaseThreadListing:
        async with ctx.database() as database:
            return await read_thread(
                database, case_ref, creditor_code=creditor_code, actor="cli:thread"
            )

    listing = run(go())
    if as_json:
        click.echo(json.dumps([e.as_json() for e in listing.entries], indent=2, default=str))
    else:
        click.echo(format_thread(listing))

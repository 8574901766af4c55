"""``hub debtor add-key``: give a debtor an OpenPGP public key or an S/MIME certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hub.cli.context import CliContext, pass_context, run
from hub.services.debtor_keys import AddedKey, add_debtor_key
from hub.services.hub_identity import open_keystore


@click.group()
def debtor() -> None:
    """Manage debtors."""


@debtor.command("add-key")
@click.argument("ref_or_debtor")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--creditor", "creditor_code", metavar="CODE", help="Narrow REF to one creditor.")
@click.option(
    "--supports-aead",
    is_flag=True,
    help="S/MIME only: the debtor's client reads AES-GCM (AuthEnvelopedData).",
)
@pass_context
def add_key(
    ctx: CliContext, ref_or_debtor: str, file: Path, creditor_code: str | None, supports_aead: bool
) -> None:
    """Store the key in FILE for the debtor of case REF (or with the creditor's debtor ref).

    FILE is an OpenPGP public key (armored or binary) or an S/MIME certificate (PEM or DER). The
    key must name one of the debtor's email addresses (user id or subjectAltName).
    """
    settings = ctx.settings()

    async def go() -> AddedKey:
        data = await asyncio.to_thread(file.read_bytes)
        keystore = await asyncio.to_thread(open_keystore, settings)
        try:
            async with ctx.database() as database:
                return await add_debtor_key(
                    database,
                    keystore,
                    ref=ref_or_debtor,
                    data=data,
                    creditor_code=creditor_code,
                    supports_aead=supports_aead,
                )
        finally:
            await asyncio.to_thread(keystore.close)

    added = run(go())
    expires = added.expires_at.date().isoformat() if added.expires_at else "never"
    click.echo(
        f"{'added' if added.new else 'updated'} {added.kind} key {added.fingerprint} "
        f"for debtor {added.debtor_id} (expires {expires}"
        + (", AES-GCM" if added.supports_aead else "")
        + ")"
    )
    if added.unusable:
        click.echo(f"warning: the key cannot be used now: {added.unusable}", err=True)

"""``hub creditor``: add and list the creditors whose cases the hub collects."""

from __future__ import annotations

import click

from hub.cli.context import CliContext, pass_context, run
from hub.services.creditors import CreditorData, create_creditor, list_creditors


@click.group()
def creditor() -> None:
    """Manage creditors (the companies whose claims are collected)."""


@creditor.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Name shown to debtors, e.g. 'Acme Energy GmbH'.")
@click.option(
    "--legal-identity",
    default="",
    help="Legal name, address and register number, as a first demand must state them.",
)
@click.option("--contact-email", default="", help="Address for the creditor's own contact.")
@click.option("--iban", default="", help="Account debtors pay to (checksum is verified).")
@click.option("--bic", default="", help="BIC of that account (8 or 11 characters).")
@pass_context
def add(
    ctx: CliContext,
    code: str,
    name: str,
    legal_identity: str,
    contact_email: str,
    iban: str,
    bic: str,
) -> None:
    """Add the creditor CODE (letters, digits, '_', '.', '-'; stored upper case)."""
    data = CreditorData(code, name, legal_identity, contact_email, iban, bic)

    async def go() -> str:
        async with ctx.database() as database:
            created = await create_creditor(database, data)
            return f"creditor {created.code} added (id {created.id})"

    click.echo(run(go()))


@creditor.command("list")
@pass_context
def list_(ctx: CliContext) -> None:
    """List the creditors, one per line: code, name, IBAN, BIC, contact email."""

    async def go() -> list[tuple[str, ...]]:
        async with ctx.database() as database:
            return [
                (c.code, c.name, c.iban or "-", c.bic or "-", c.contact_email or "-")
                for c in await list_creditors(database)
            ]

    rows = run(go())
    if not rows:
        click.echo("no creditors yet: add one with 'hub creditor add CODE --name NAME'")
        return
    header = ("CODE", "NAME", "IBAN", "BIC", "CONTACT")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))

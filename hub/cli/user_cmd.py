"""``hub user``: web accounts (add, list, end sessions) and their API tokens."""

from __future__ import annotations

import sys

import click

from hub.cli.context import CliContext, pass_context, run
from hub.security.roles import Role, Scope
from hub.services import users


@click.group("user")
def user() -> None:
    """Web accounts and API tokens."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--email", required=True, help="Where password reset links are sent.")
@click.option("--creditor", "creditor_code", metavar="CODE", help="For --role creditor.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@pass_context
def add(
    ctx: CliContext,
    username: str,
    role: str,
    email: str,
    creditor_code: str | None,
    password_stdin: bool,
) -> None:
    """Create an account; prints a one-time initial password unless one comes from stdin."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None

    async def go() -> tuple[int, str]:
        async with ctx.database() as database:
            return await users.add_user(
                database,
                username=username,
                email=email,
                role=Role(role),
                creditor_code=creditor_code,
                password=password,
            )

    user_id, initial = run(go())
    click.echo(f"user {username} created (id {user_id}, role {role})")
    if password is None:
        click.echo(f"initial password (shown once, to be changed at first login): {initial}")


@user.command("list")
@pass_context
def list_(ctx: CliContext) -> None:
    """List the accounts."""

    async def go() -> list[users.UserRow]:
        async with ctx.database() as database:
            return await users.list_users(database)

    for row in run(go()):
        click.echo(
            f"{row.id}\t{row.username}\t{row.role}\t{row.creditor_code or '-'}\t"
            f"{'active' if row.is_active else 'inactive'}\t"
            f"{'totp' if row.totp_enrolled else 'no-totp'}"
        )


@user.command("token-add")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope]),
)
@pass_context
def token_add(ctx: CliContext, username: str, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API token for USERNAME; the token is printed once."""

    async def go() -> tuple[int, str]:
        async with ctx.database() as database:
            return await users.create_api_token(
                database, username, name, [Scope(s) for s in scopes]
            )

    token_id, token = run(go())
    click.echo(f"token {token_id}: {token}")


@user.command("token-revoke")
@click.argument("token_id", type=int)
@pass_context
def token_revoke(ctx: CliContext, token_id: int) -> None:
    """Revoke an API token."""

    async def go() -> None:
        async with ctx.database() as database:
            await users.revoke_api_token(database, token_id)

    run(go())
    click.echo(f"token {token_id} revoked")

"""``hub keys``: create the hub's secret files, add at-rest keys, and rotate data at rest.

Secret files are written with mode 0600 (owner only, as :mod:`hub.config` demands) and never
overwritten; keys are never printed, only the paths to put in the configuration.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from hub.cli.context import CliContext, pass_context, run
from hub.cli.signing_cmd import init_signing
from hub.config import ENV_PREFIX
from hub.crypto.at_rest import generate_key, parse_keyring_text
from hub.errors import ConfigError
from hub.security.secret_files import (
    config_sections,
    generate_secret_files,
    write_secret,
)
from hub.services.rotate_at_rest import DEFAULT_BATCH, ColumnRotation, rotate_at_rest

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@click.group()
def keys() -> None:
    """Create secret files, add at-rest keys, re-encrypt stored data under a new key."""


@keys.command()
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for the secret files (created with mode 0700 if missing).",
)
def generate(directory: Path) -> None:
    """Write new secret files (at-rest, lookup, reply-token and web session keys), mode 0600.

    Existing files are never overwritten. Prints the [security] and [web] settings to add.
    """
    try:
        paths = generate_secret_files(directory)
    except FileExistsError as exc:
        raise click.ClickException(f"refusing to overwrite existing secret file {exc}") from None
    directory = directory.resolve()
    click.echo(f"# wrote {len(paths)} secret files (mode 0600) to {directory}")
    click.echo("# add to the configuration file:")
    for section, lines in config_sections(paths).items():
        click.echo(f"[{section}]")
        for line in lines:
            click.echo(line)


def _next_key_id(existing: set[str]) -> str:
    numbers = [int(k[1:]) for k in existing if re.fullmatch(r"k\d+", k)]
    candidate = max(numbers, default=0) + 1
    while f"k{candidate}" in existing:
        candidate += 1
    return f"k{candidate}"


@keys.command("add-at-rest")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The at-rest key file (security.at_rest_keys_file).",
)
@click.option("--id", "key_id", help="Id of the new key (default: the next kN).")
def add_at_rest(path: Path, key_id: str | None) -> None:
    """Append a new at-rest key to FILE (which stays mode 0600)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise click.ClickException(
            f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
        )
    current = path.read_text(encoding="ascii")
    try:
        existing = set(parse_keyring_text(current))
    except ConfigError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    if key_id is None:
        key_id = _next_key_id(existing)
    elif not _KEY_ID.fullmatch(key_id):
        raise click.BadParameter("use 1-32 letters, digits, '_', '.' or '-'", param_hint="--id")
    if key_id in existing:
        raise click.BadParameter(f"{path} already holds a key {key_id!r}", param_hint="--id")
    if current and not current.endswith("\n"):
        current += "\n"
    # write a new file beside the old one and rename it over: never a half-written key file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_secret(tmp, f"{current}{key_id}:{generate_key()}\n")
    os.replace(tmp, path)
    click.echo(f"added at-rest key {key_id!r} to {path}")
    click.echo(
        f'To seal new values with it, set security.at_rest_active_key = "{key_id}" (or '
        f"{ENV_PREFIX}SECURITY_AT_REST_ACTIVE_KEY={key_id}), restart the hub, then run "
        "'hub keys rotate-at-rest'. Keep the old keys in the file until the rotation is done."
    )


def _print_report(reports: list[ColumnRotation], *, dry_run: bool) -> None:
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    width = max((len(r.name) for r in reports), default=0)
    for report in reports:
        keys_found = ", ".join(f"{k}: {n}" for k, n in sorted(report.by_key.items()))
        line = f"{report.name:<{width}}  {verb} {report.resealed}"
        if keys_found:
            line += f"  (from {keys_found})"
        if report.changed_meanwhile:
            line += f"  {report.changed_meanwhile} changed meanwhile"
        click.echo(line)
    total = sum(r.resealed for r in reports)
    click.echo(f"total: {verb} {total} values")


@keys.command("rotate-at-rest")
@click.option(
    "--batch",
    default=DEFAULT_BATCH,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows per transaction.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be re-encrypted; change nothing.")
@pass_context
def rotate_at_rest_command(ctx: CliContext, batch: int, dry_run: bool) -> None:
    """Re-encrypt every stored value not sealed under security.at_rest_active_key.

    Each batch is its own transaction: after a crash, run it again to resume.
    """

    async def go() -> None:
        async with ctx.database() as database:
            click.echo(
                f"active at-rest key: {database.keyring.active_id}"
                f"{' (dry run: nothing is changed)' if dry_run else ''}"
            )
            reports = await rotate_at_rest(database, batch=batch, dry_run=dry_run)
        _print_report(reports, dry_run=dry_run)

    run(go())


keys.add_command(init_signing)

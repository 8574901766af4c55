"""``hub keys init-signing``: create the hub's own OpenPGP key and S/MIME certificate.

The OpenPGP key goes into the hub's GnuPG home (``signing.gnupg_home``, default
``<data_dir>/gnupg``, mode 0700); the S/MIME certificate, its key and a CSR (to have a CA sign
the same key) into ``<data_dir>/signing/``. Each key is protected by a new random passphrase
written to a file of mode 0600 beside it. Nothing secret is printed: only the ``[signing]``
lines to put into the configuration.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hub.cli.context import CliContext, pass_context, run
from hub.security.secret_files import write_secret
from hub.services.hub_identity import (
    create_pgp_identity,
    create_smime_identity,
    new_passphrase,
    open_keystore,
)


def _make(ctx: CliContext, pgp: bool, smime: bool, directory: Path | None) -> list[str]:
    settings = ctx.settings()
    name, address = settings.hub.name, settings.smtp.from_address
    target = (directory or settings.hub.data_dir / "signing").resolve()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = ["[signing]"]
    if pgp:
        passphrase_file = target / "pgp_passphrase"
        if passphrase_file.exists():
            raise click.ClickException(f"refusing to overwrite {passphrase_file}")
        passphrase = new_passphrase()
        keystore = open_keystore(settings)
        try:
            fingerprint = create_pgp_identity(keystore, name, address, passphrase)
        finally:
            keystore.close()
        write_secret(passphrase_file, passphrase.get_secret_value().encode() + b"\n")
        lines += [
            f'gnupg_home = "{keystore.home.resolve()}"',
            f'pgp_fingerprint = "{fingerprint}"',
            f'pgp_passphrase_file = "{passphrase_file}"',
        ]
    if smime:
        passphrase_file = target / "smime_key_passphrase"
        if passphrase_file.exists():
            raise click.ClickException(f"refusing to overwrite {passphrase_file}")
        passphrase = new_passphrase()
        files = create_smime_identity(target, name, address, passphrase)
        write_secret(passphrase_file, passphrase.get_secret_value().encode() + b"\n")
        lines += [
            f'smime_cert_file = "{files.cert}"',
            f'smime_key_file = "{files.key}"',
            f'smime_key_passphrase_file = "{passphrase_file}"',
            f"# the certificate is self-signed; {files.csr} asks a CA for one on the same key",
        ]
    return lines


@click.command("init-signing")
@click.option("--pgp", is_flag=True, help="Create the hub's OpenPGP key.")
@click.option("--smime", is_flag=True, help="Create the hub's S/MIME certificate and key.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the S/MIME files and passphrase files go (default: <data_dir>/signing).",
)
@pass_context
def init_signing(ctx: CliContext, pgp: bool, smime: bool, directory: Path | None) -> None:
    """Create the keys the hub signs its mail with, for smtp.from_address (both without flags).

    Prints the [signing] settings to add to the configuration; keys and passphrases are never
    printed. Existing files are never overwritten.
    """
    if not pgp and not smime:
        pgp = smime = True

    async def go() -> list[str]:
        return await asyncio.to_thread(_make, ctx, pgp, smime, directory)

    lines = run(go())
    click.echo("# add to the configuration file:")
    for line in lines:
        click.echo(line)

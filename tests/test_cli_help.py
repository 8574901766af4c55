"""Every command and sub-command of ``hub`` answers ``--help`` with its own text."""

from __future__ import annotations

import click
from click.testing import CliRunner

from hub.cli.main import cli


def _command(path: list[str]) -> click.Command:
    command: click.Command = cli
    ctx = click.Context(cli)
    for part in path:
        assert isinstance(command, click.Group)
        found = command.get_command(ctx, part)
        assert found is not None, path
        command = found
    return command


def _walk(group: click.Group, prefix: list[str]) -> list[list[str]]:
    paths = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            paths.extend(_walk(command, [*prefix, name]))
    return paths


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    names = cli.list_commands(click.Context(cli))
    for name in names:
        assert name in result.output
    # the commands the foundation promises
    for name in ("db", "import", "creditor", "keys", "demo"):
        assert name in names


def test_every_command_has_help() -> None:
    paths = _walk(cli, [])
    assert len(paths) > 10
    for path in paths:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output and " ".join(path) in result.output
        command = _command(path)
        assert (command.help or "").strip(), f"hub {' '.join(path)} has no help text"


def test_a_plain_command_does_not_import_the_heavy_parts() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from hub.cli.main import cli; "
        "cli.get_command(__import__('click').Context(cli), 'db'); "
        "print(','.join(m for m in ('spacy', 'hub.web.app', 'gnupg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

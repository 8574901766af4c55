"""Every command and sub-command of ``hub`` answers ``--help`` with its own text."""

from __future__ import annotations

import click
from click.testing import CliRunner

from hub.cli.main import cli


def _walk(group: click.Group, prefix: list[str]) -> list[list[str]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            paths.extend(_walk(command, [*prefix, name]))
    return paths


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in cli.commands:
        assert name in result.output
    # the commands the foundation promises
    for name in ("db", "import", "creditor", "keys", "demo"):
        assert name in cli.commands


def test_every_command_has_help() -> None:
    paths = _walk(cli, [])
    assert len(paths) > 10
    for path in paths:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output and " ".join(path) in result.output
        command = cli
        for part in path:
            assert isinstance(command, click.Group)
            command = command.commands[part]
        assert (command.help or "").strip(), f"hub {' '.join(path)} has no help text"

"""Every command's `--help` renders: help texts go through rich's markup, where a `[/PATH]` is a
closing tag and fails the whole page."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from lab.cli import app


def command_paths() -> list[list[str]]:
    # Typer carries its own copy of click: a group is whatever has subcommands.
    def walk(command: Any, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            found += walk(sub, [*path, name])
        return found

    return walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "lab")
def test_every_help_page_renders(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output or repr(result.exception)
    assert "Usage" in result.output


def test_a_registry_path_in_help_is_shown_as_written() -> None:
    result = CliRunner().invoke(app, ["images", "push", "--help"], terminal_width=200)
    assert "HOST[:PORT][/PATH]" in result.output

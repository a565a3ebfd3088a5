"""The `lab` command's Typer apps, consoles, exit codes and the one way it reports an error."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import typer
from rich.console import Console, ConsoleDimensions

from lab import strategies
from lab.errors import EXIT_USAGE

# What `lab compare` runs by default: every strategy (not the presets, which repeat them with vendors'
# timings), and rolling once more with a drain, so a hard stop and a drained one sit side by side.
DEFAULT_COMPARISON = [*(n for n in strategies.REGISTRY if n not in strategies.PRESETS), "rolling:drain_s=1"]


def default_comparison(engine: str) -> list[str]:
    """The default comparison on `engine`, with the platform's own update where it has one (Swarm's)."""
    own = [name for name, s in strategies.PLATFORM.items() if s.runs_on == engine]
    return [*DEFAULT_COMPARISON, *own]


BASES = ("auto", "official", "debootstrap")


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="A laptop lab that deploys a real fleet from v1 to v2 and measures what clients saw.",
)
images_app = typer.Typer(help="Build the app and proxy images (offline if no registry is reachable).")
err = Console(stderr=True, highlight=False)


class _Stdout(Console):
    """stdout's console. Into a pipe or a CI log, Rich would fold every table to 80 columns, a comparison's
    into a column of word fragments; there a table keeps its natural width (up to 240 columns) unless
    COLUMNS says otherwise. Decided at each print, from the environment as it is then (Rich would fix
    COLUMNS as it was at import)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._width = None

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and "COLUMNS" not in os.environ:
            return ConsoleDimensions(240, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = _Stdout(highlight=False)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"lab: error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)

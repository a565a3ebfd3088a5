"""One run for a command: the pipeline, with the live view or progress lines on stderr, and what a Ctrl-C
leaves. Shared by `run`, `compare` and `measure`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from lab.cli.app import err, fail
from lab.errors import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from lab.analysis.summary import Analysis
    from lab.experiments import Verdict
    from lab.live.feed import SampleFeed
    from lab.live.view import LiveView
    from lab.options import RunOptions
    from lab.pipeline import RunResult
    from lab.record import RunRecord
    from lab.targets.base import EventHook, Target


def progress_hook(quiet: bool) -> EventHook:
    def progress(line: str, _event: object) -> None:
        if not quiet:
            err.print(f"[dim]{escape(line)}[/dim]", soft_wrap=True)

    return progress


def run_target(
    target: Target,
    options: RunOptions,
    out_dir: Path,
    *,
    keep: bool,
    quiet: bool,
    live: bool,
    title: str,
    run_id: str | None = None,
    on_interrupt: Callable[[RunResult], None] | None = None,
    phases: dict[str, str] | None = None,
) -> RunResult:
    """`target` through the pipeline, drawn while it goes: the live view (a terminal), plain status lines
    (`live` False, or not a terminal), or nothing (`quiet`, for --json). A Ctrl-C ends the command with 130
    once the run's objects are gone, naming the folder that holds what it measured."""
    from lab.live.view import LiveView, choose_mode  # noqa: F811  (the type above, the class here)
    from lab.pipeline import Interrupted, run_once

    mode = choose_mode(err, quiet=quiet, live=live)

    def watch(feed: SampleFeed) -> LiveView:
        return LiveView(feed.snapshot, err, mode=mode, title=title, phases=phases)

    try:
        return run_once(
            options, target, out_dir=out_dir, run_id=run_id, keep=keep, hook=progress_hook(quiet), watch=watch
        )
    except Interrupted as stop:
        if on_interrupt is not None:
            on_interrupt(stop.result)
        record, folder = stop.result.record, stop.result.folder
        removed = f"; removed {record.removed}" if record.removed else ""
        fail(f"interrupted{removed}; what was measured: {folder}", EXIT_INTERRUPTED)


def execute(
    config: RunOptions, out_dir: Path, *, keep: bool = False, quiet: bool = False, live: bool = True
) -> tuple[RunRecord, Analysis, Path]:
    """One run of the lab's fleet, from start to clean-up, its folder written under `out_dir`."""
    import secrets

    from lab import engines
    from lab.targets.select import fleet_target

    run_id = secrets.token_hex(3)
    engine = engines.open_engine(config.engine, run_id, stop_grace_s=config.stop_grace_s)
    target = fleet_target(config, engine)
    result = run_target(
        target, config, out_dir, keep=keep, quiet=quiet, live=live, title=config.strategy, run_id=run_id
    )
    assert result.folder is not None
    return result.record, result.analysis, result.folder


def exit_with(v: Verdict) -> None:
    """End the command with a run's verdict: its code, and its one line when it has one."""
    if v.code and v.message:
        fail(v.message, v.code)
    if v.code:
        raise typer.Exit(v.code)

"""Drawing a run while it goes: a Rich live view on a terminal, one status line every 2 s elsewhere.

Everything here goes to the console it is given (stderr in the CLI): stdout stays for results and JSON.
The drawing runs in a background thread of the CLI process and only reads the runner's feed; the probe
runs in its own processes, so a slow frame cannot delay a tick.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from lab.live.feed import Progress, Snapshot
from lab.live.stats import Figures, LiveStats, Second
from lab.model import Route

REFRESH_PER_S = 4
PLAIN_EVERY_S = 2.0
BAR_WIDTH = 40
PROBING = ("baseline", "plan", "settle")
PHASE_TEXT = {
    "setup": "setting up: starting the v1 fleet and the proxy",
    "baseline": "baseline: probing before the first step",
    "settle": "settling: probing after the last step",
    "cleanup": "stopping the probe and removing the containers",
}
# `lab measure`'s own words for the phases where the lab's fleet is not involved.
MEASURE_PHASES = {
    "setup": "setting up: checking that the URL answers",
    "cleanup": "stopping the probe (and the deploy command, if it still runs)",
}
# Distinct glyphs, so the bar reads without colour too: the first version seen (the old one), the second.
GLYPHS = (("█", "blue"), ("▒", "green"))
GLYPH = {"v1": GLYPHS[0], "v2": GLYPHS[1]}
OTHER_GLYPH = ("?", "magenta")


def choose_mode(console: Console, *, quiet: bool, live: bool) -> str:
    """'off' under --json, 'plain' when asked or when the console is no terminal (or TERM=dumb),
    else 'live'."""
    if quiet:
        return "off"
    if not live or not console.is_terminal or console.is_dumb_terminal:
        return "plain"
    return "live"


# -- text shared by both modes -------------------------------------------------------------------------
def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _versions(counts: dict[str, int], palette: dict[str, tuple[str, str]] | None = None) -> list[str]:
    palette = GLYPH if palette is None else palette
    order = list(palette)
    return sorted(counts, key=lambda v: (order.index(v) if v in palette else len(order), v))


def route_text(route: Route | None) -> str:
    if route is None:
        return "nothing yet"
    shares = route.share_by_version()
    return " ".join(f"{v} {float(shares[v]):g}%" for v in sorted(shares) if shares[v] > 0)


def share_text(
    second: Second | None, *, short: bool = False, palette: dict[str, tuple[str, str]] | None = None
) -> str:
    """The last second's good answers by version; says so when there were none, never 0% / 0%."""
    if second is None:
        return "none yet" if short else "no second of probing yet"
    if not second.answered:
        return "none in the last second" if short else "no good answers in the last second"
    parts = " ".join(
        f"{v} {_pct(second.answers[v] / second.answered)}" for v in _versions(second.answers, palette)
    )
    return f"{parts} of {second.answered:,}" + ("" if short else " good answers")


def failures_text(failures: dict[str, int]) -> str:
    total = sum(failures.values())
    if not total:
        return "0"
    return f"{total:,} (" + ", ".join(f"{k} {n:,}" for k, n in sorted(failures.items())) + ")"


def rate_text(fig: Figures) -> str:
    target = f"{fig.target_rate:,g} req/s"
    if fig.last is None:
        return f"target {target}"
    text = f"sent {fig.last.rate:,.1f} req/s of {target}"
    return text + (f" ({fig.last.not_back:,} not back yet)" if fig.last.not_back > 0 else "")


def step_text(progress: Progress, phases: dict[str, str] | None = None) -> str:
    """Where the plan is: the runner's own 0-based step index (as in its step lines), and how far along."""
    if progress.phase == "plan":
        if progress.index is None:
            return "starting the plan"
        total = "" if progress.outlook is None else f" of {_total(progress)}"
        if progress.running:
            return f"step {progress.index} ({progress.index + 1}{total}): {progress.detail}"
        return f"step {progress.index} done ({progress.done}{total}): {progress.detail}"
    text = {**PHASE_TEXT, **(phases or {})}
    return text.get(progress.phase, f"run {progress.phase.replace('_', ' ')}")


def _total(progress: Progress) -> str:
    assert progress.outlook is not None
    exact = progress.outlook.assumed == 0
    return f"{progress.outlook.total}" if exact else f"~{progress.outlook.total}"


def status_line(
    snap: Snapshot, fig: Figures | None, palette: dict[str, tuple[str, str]] | None = None
) -> str:
    """One plain line: what a terminal without a live view shows every couple of seconds."""
    progress = snap.progress
    parts = [f"t={snap.at - snap.run_started:,.1f} s"]
    if progress.phase == "plan" and progress.index is not None:
        total = "" if progress.outlook is None else f"/{_total(progress)}"
        parts.append(f"step {progress.index} ({progress.index + 1}{total})")
    else:
        parts.append(progress.phase)
    if snap.route is not None or progress.outlook is not None:  # a fleet of the lab's: it routes
        parts.append(f"route {route_text(snap.route)}")
    if fig is not None:
        parts.append(f"answers {share_text(fig.last, short=True, palette=palette)}")
        parts.append(f"failed {failures_text(fig.failures)}")
        parts.append(rate_text(fig))
        parts.append(f"late {fig.late:,}")
        if fig.unsent:
            parts.append(f"unsent {fig.unsent:,} (client saturation)")
    if progress.failed:
        parts.append("verdict failed at step " + ", ".join(str(i) for i in progress.failed))
    return "  ".join(parts)


# -- the live view's frame -----------------------------------------------------------------------------
def share_bar(
    second: Second | None, width: int = BAR_WIDTH, palette: dict[str, tuple[str, str]] | None = None
) -> Text:
    if second is None or not second.answered:
        return Text("─" * width, style="dim")
    bar = Text()
    drawn, cumulative = 0, 0
    palette = GLYPH if palette is None else palette
    for version in _versions(second.answers, palette):
        cumulative += second.answers[version]
        end = round(width * cumulative / second.answered)  # cumulative rounding: the bar is always `width`
        glyph, style = palette.get(version, OTHER_GLYPH)
        bar.append(glyph * (end - drawn), style=style)
        drawn = end
    return bar


def _route_detail(route: Route | None) -> str:
    if route is None:
        return ""
    per_version = Counter(inst.version for inst in route.instances)
    return "  (" + " + ".join(f"{n} x {v}" for v, n in sorted(per_version.items())) + " instances)"


def render(
    snap: Snapshot,
    fig: Figures | None,
    title: str = "",
    *,
    phases: dict[str, str] | None = None,
    palette: dict[str, tuple[str, str]] | None = None,
) -> RenderableType:
    progress = snap.progress
    head = Text()
    if title:
        head.append(title, style="bold")
        head.append(" · ")
    head.append(step_text(progress, phases))
    if progress.failed:
        head.append(
            "  verdict failed at step " + ", ".join(str(i) for i in progress.failed), style="bold red"
        )

    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    done = progress.done
    if progress.outlook is not None:
        total = max(progress.outlook.total, done, 1)
        filled = round(BAR_WIDTH * done / total)
        bar = Text("━" * filled, style="bold") + Text("─" * (BAR_WIDTH - filled), style="dim")
        grid.add_row("steps", bar + Text(f" {done} of {_total(progress)} done"))
    else:
        grid.add_row("steps", f"{done} done (the plan's length is unknown)")
    if snap.route is not None or progress.outlook is not None:  # a fleet of the lab's: it routes
        grid.add_row("routing now", route_text(snap.route) + _route_detail(snap.route))
    if fig is None:
        grid.add_row("probe", "not started yet" if snap.probe_started is None else "no samples yet")
    else:
        last = fig.last
        bar = share_bar(last, palette=palette) + Text(" " + share_text(last, palette=palette))
        grid.add_row("last second", bar)
        failed = Text(failures_text(fig.failures), style="red" if fig.failed else "")
        if last is not None and last.failed:
            failed.append(f"; last second {failures_text(last.failed)}")
        grid.add_row("failed so far", failed)
        grid.add_row("probe rate", rate_text(fig))
        own = Text(f"late {fig.late:,} · unsent {fig.unsent:,}", style="yellow" if fig.unsent else "")
        own.append("  (unsent: client saturation, the probe's own, not a server failure)", style="dim")
        grid.add_row("probe ticks", own)
    elapsed = f"{snap.at - snap.run_started:,.1f} s"
    if snap.probe_started is not None:
        probing = min(snap.at, snap.probe_stopped or snap.at) - snap.probe_started
        elapsed += f" (probing for {max(0.0, probing):,.1f} s)"
    grid.add_row("elapsed", elapsed)
    return Group(head, grid)


# -- the listener --------------------------------------------------------------------------------------
class Model:
    """The listener's side of the feed: its cursor and the running figures."""

    def __init__(self, source: Callable[[int], Snapshot]) -> None:
        self.source = source
        self.cursor = 0
        self.stats: LiveStats | None = None
        self.lock = threading.Lock()
        # Versions in the order they first answered well, each with its glyph: the first (v1, the old one)
        # and the second, whatever the service calls them.
        self.palette: dict[str, tuple[str, str]] = {}

    def update(self) -> tuple[Snapshot, Figures | None]:
        with self.lock:
            snap = self.source(self.cursor)
            self.cursor = snap.cursor
            if self.stats is None and snap.probe_started is not None:
                self.stats = LiveStats(snap.rate, snap.probe_started)
            if self.stats is None:
                return snap, None
            self.stats.add(snap.samples)
            for s in snap.samples:
                if s.ok and s.version and s.version not in self.palette and len(self.palette) < len(GLYPHS):
                    self.palette[s.version] = GLYPHS[len(self.palette)]
            return snap, self.stats.figures(snap.at, stopped_at=snap.probe_stopped)


class LiveView:
    """`with LiveView(...):` around a run draws it; leaving the block (success, failure or Ctrl-C) stops
    the drawing before anything else is printed."""

    def __init__(
        self,
        source: Callable[[int], Snapshot],
        console: Console,
        *,
        mode: str,
        title: str = "",
        plain_every_s: float | None = None,
        phases: dict[str, str] | None = None,
    ) -> None:
        if mode not in ("live", "plain", "off"):
            raise ValueError(f"unknown live view mode {mode!r}")
        self.model, self.console, self.mode, self.title = Model(source), console, mode, title
        self.phases = phases
        self.plain_every_s = PLAIN_EVERY_S if plain_every_s is None else plain_every_s
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def frame(self) -> RenderableType:
        try:
            snap, fig = self.model.update()
            return render(snap, fig, title=self.title, phases=self.phases, palette=self.model.palette)
        except Exception as exc:  # a bug in the view must not end the run; show it instead
            return Text(f"live view error: {type(exc).__name__}: {exc}", style="red")

    def _plain_loop(self) -> None:
        while not self._stop.wait(self.plain_every_s):
            snap, fig = self.model.update()
            if snap.progress.phase in PROBING:
                line = status_line(snap, fig, self.model.palette)
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> LiveView:
        if self.mode == "live":
            self._live = Live(
                get_renderable=self.frame,
                console=self.console,
                refresh_per_second=REFRESH_PER_S,
                redirect_stdout=False,  # stdout is for results
                redirect_stderr=True,
            )
            self._live.start()
        elif self.mode == "plain":
            self._thread = threading.Thread(target=self._plain_loop, name="live-view", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._live.stop()  # draws the last frame: the run's final status and counts

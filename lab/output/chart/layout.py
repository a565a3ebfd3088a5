"""The timeline as shapes: step lane, failure lanes, stacked request bars, latency, capacity, time axis.

Drawn once here; svg.py and png.py only translate. Every panel shares one time axis, so a failure mark,
a latency spike and a capacity drop line up under the step that caused them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.analysis.timeline import OTHER, StepMark, TimeBin, Timeline
from lab.output.chart.shapes import Drawing, Line, Polyline, Rect, Shape, Text, text_width

WIDTH = 1000.0
LEFT, RIGHT = 150.0, 24.0  # the left margin holds the lane labels and the y axes' ticks
VERSION_COLOURS = {"old": "#4c78a8", "new": "#54a24b", OTHER: "#9d9d9d"}
FAILURE_COLOURS = {
    "refused": "#d62728",
    "reset": "#f58518",
    "timeout": "#7b4ea3",
    "http_5xx": "#e377c2",
    "http_4xx": "#8c564b",
    "other": "#333333",
}
SATURATED_COLOUR = "#d4a000"
P50_COLOUR, P99_COLOUR = "#3b3b98", "#c2410c"
CAPACITY_COLOUR = "#444444"
STEP_COLOUR, FAILED_STEP_COLOUR = "#8a94a6", "#c62828"
GRID, AXIS, MUTED = "#e6e8ec", "#555555", "#666666"
REQUESTS_H, LATENCY_H, CAPACITY_H = 190.0, 110.0, 64.0
CLIENTS_MAX_H, CLIENT_ROW_MAX_H = 160.0, 5.0
CLIENT_COLOURS = {
    "old": "#4c78a8",
    "new": "#54a24b",
    "both": "#9ecae1",
    "other": "#9d9d9d",
    "failed": "#d62728",
}
STEP_ROW_H, STEP_ROWS, LANE_H = 15.0, 6, 12.0


def failure_colour(cls: str) -> str:
    return FAILURE_COLOURS.get(cls, FAILURE_COLOURS["other"])


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `ticks` ticks over `span`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next((m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw), 10 * power)


def nice_max(value: float, ticks: int = 5) -> tuple[float, float]:
    """(top of the axis, tick step): the smallest round top at or above `value`."""
    step = nice_step(max(value, 1e-9), ticks)
    return max(step, math.ceil(value / step) * step), step


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:g}"


@dataclass
class _Frame:
    """Where the plot area is and how time maps onto it."""

    timeline: Timeline
    x0: float
    x1: float

    def x(self, t: float) -> float:
        span = self.timeline.end - self.timeline.start
        return self.x0 + (t - self.timeline.start) / span * (self.x1 - self.x0) if span > 0 else self.x0


def draw(
    timeline: Timeline, title: str = "", *, width: float = WIDTH, drawing_id: str = "timeline"
) -> Drawing:
    frame = _Frame(timeline, LEFT, width - RIGHT)
    shapes: list[Shape] = []
    y = 8.0
    if title:
        shapes.append(Text(8, y + 14, title, size=14, bold=True, cls="title"))
        y += 24
    y = _legend(shapes, timeline, y + 4, width)
    y = _steps_lane(shapes, frame, y + 8)
    y = _failure_lanes(shapes, frame, y + 6)
    panels: list[tuple[float, float]] = []  # (top, bottom) of each panel: the time grid and steps cross them
    drawn = (_requests_panel, _clients_panel, _latency_panel, _capacity_panel)
    for panel in (p for p in drawn if p is not _clients_panel or timeline.clients):
        top = y + 26
        y = panel(shapes, frame, top)
        panels.append((top, y))
    grid: list[Shape] = []
    y = _time_axis(grid, shapes, frame, panels)
    _step_lines(shapes, frame, panels)
    shapes[:0] = grid  # under everything else
    return Drawing(width, y + 8, shapes, id=drawing_id, title=title or "timeline")


# ---------------------------------------------------------------------------------------------------
# Legend and lanes.


def _legend(shapes: list[Shape], t: Timeline, y: float, width: float) -> float:
    entries: list[tuple[str, str, str, str]] = [  # (shape, colour, label, class)
        ("box", VERSION_COLOURS["old"], f"{t.old} answers", t.old),
        ("box", VERSION_COLOURS["new"], f"{t.new} answers", t.new),
    ]
    if t.has_other:
        entries.append(("box", VERSION_COLOURS[OTHER], "other answers", OTHER))
    entries += [("box", failure_colour(c), f"failed: {c}", f"fail-{c}") for c in t.failure_classes]
    if t.saturated:
        entries.append(("hollow", SATURATED_COLOUR, "probe saturated (client side)", "saturated"))
    entries += [
        ("line", P50_COLOUR, "latency p50", "p50"),
        ("line", P99_COLOUR, "latency p99", "p99"),
        ("line", CAPACITY_COLOUR, "instances in service", "capacity"),
        ("dash", STEP_COLOUR, "step start", "step"),
    ]
    if any(s.failed for s in t.steps):
        entries.append(("dash", FAILED_STEP_COLOUR, "step failed", "step-failed"))
    x, size = 8.0, 11.0
    for kind, colour, label, key in entries:
        cls = f"legend legend-{key}"  # not the drawn elements' classes: a legend swatch is no bar
        needed = 18 + text_width(label, size) + 14
        if x + needed > width - 8:
            x, y = 8.0, y + 18
        if kind == "box":
            shapes.append(Rect(x, y + 2, 12, 10, fill=colour, cls=cls))
        elif kind == "hollow":
            shapes.append(Rect(x, y + 2, 12, 10, stroke=colour, cls=cls))
        else:
            dash = (3.0, 2.0) if kind == "dash" else None
            shapes.append(Line(x, y + 7, x + 12, y + 7, colour, 2.0, dash, cls=cls))
        shapes.append(Text(x + 17, y + 11, label, size=size, fill="#333", cls="legend-label"))
        x += needed
    return y + 16


def _place(rows: list[float], left: float, right: float) -> int | None:
    """The first row whose last label ends before `left`; the row then ends at `right`."""
    for i, end in enumerate(rows):
        if end <= left:
            rows[i] = right
            return i
    return None


def _steps_lane(shapes: list[Shape], f: _Frame, y: float) -> float:
    shapes.append(Text(8, y + 11, "steps", size=11, bold=True, cls="lane-title"))
    if not f.timeline.steps:
        shapes.append(Text(LEFT, y + 11, "no step ran", size=10, fill=MUTED, cls="lane-empty"))
        return y + STEP_ROW_H
    rows = [-math.inf] * STEP_ROWS
    used = 0
    for step in f.timeline.steps:
        x0, x1 = f.x(step.start), max(f.x(step.end), f.x(step.start) + 2)
        colour = FAILED_STEP_COLOUR if step.failed else STEP_COLOUR
        # The full label where it fits, the index alone where it does not (the steps table has the rest).
        row = None
        label = ""
        for label in (step.label + (": failed" if step.failed else ""), str(step.index)):
            right = max(x1, x0 + text_width(label, 10)) + 6
            row = _place(rows, x0, right)
            if row is not None:
                break
        if row is None:  # more overlapping steps than rows: the emptiest row, at the cost of an overlap
            row = min(range(STEP_ROWS), key=lambda i: rows[i])
            rows[row] = x0 + text_width(label, 10) + 6
        used = max(used, row + 1)
        top = y + row * STEP_ROW_H
        tip = f"step {step.index} {step.kind}: {step.detail} ({step.start:.2f} to {step.end:.2f} s)"
        shapes.append(Rect(x0, top + 11, x1 - x0, 3, fill=colour, cls="step-span" + _failed(step), tip=tip))
        shapes.append(Text(x0, top + 9, label, size=10, fill=colour, cls="step-label" + _failed(step)))
    return y + used * STEP_ROW_H


def _failed(step: StepMark) -> str:
    return " failed" if step.failed else ""


def _failure_lanes(shapes: list[Shape], f: _Frame, y: float) -> float:
    t = f.timeline
    classes = t.failure_classes
    shapes.append(Text(8, y + 10, "failed requests", size=11, bold=True, cls="lane-title"))
    if not classes and not t.saturated:
        shapes.append(Text(LEFT, y + 10, "none", size=10, fill=MUTED, cls="lane-empty"))
        return y + LANE_H + 2
    shapes.append(Text(LEFT, y + 10, "by class, per bin (count in the margin)", size=10, fill=MUTED))
    row = 1  # the lanes start under their title: a class name in the margin would run into it
    for cls in classes:
        total = sum(b.failures.get(cls, 0) for b in t.bins)
        top = y + row * LANE_H
        colour = failure_colour(cls)
        shapes.append(Text(LEFT - 6, top + 9, f"{cls} {total:,}", size=10, fill=colour, anchor="end"))
        for b in t.bins:
            n = b.failures.get(cls, 0)
            if n:
                x0, x1 = f.x(b.start), max(f.x(b.end), f.x(b.start) + 2)
                tip = f"{n:,} {cls} scheduled {b.start:.2f} to {b.end:.2f} s"
                shapes.append(Rect(x0, top + 1, x1 - x0, LANE_H - 3, fill=colour, cls=f"fail {cls}", tip=tip))
        row += 1
    if t.saturated:
        # The probe's own shortfall: drawn hollow and labelled as the client's, never as a server failure.
        top = y + row * LANE_H
        shapes.append(
            Text(LEFT - 6, top + 9, f"probe saturated {t.saturated:,}", size=10, fill="#8a6d00", anchor="end")
        )
        for b in t.bins:
            if b.saturated:
                x0, x1 = f.x(b.start), max(f.x(b.end), f.x(b.start) + 2)
                tip = f"{b.saturated:,} ticks not sent: the probe was saturated (client side, not the server)"
                shapes.append(
                    Rect(x0, top + 1, x1 - x0, LANE_H - 3, stroke=SATURATED_COLOUR, cls="saturated", tip=tip)
                )
        row += 1
    return y + row * LANE_H + 2


# ---------------------------------------------------------------------------------------------------
# Panels.


def _y_axis(
    shapes: list[Shape], f: _Frame, top: float, height: float, top_value: float, step: float, unit: str
) -> Callable[[float], float]:
    def y(value: float) -> float:
        return top + height - (value / top_value * height if top_value > 0 else 0)

    value = 0.0
    while value <= top_value + 1e-9:
        shapes.append(Line(f.x0, y(value), f.x1, y(value), GRID, 1.0, cls="grid"))
        shapes.append(
            Text(f.x0 - 6, y(value) + 4, _num(value), size=10, fill=MUTED, anchor="end", cls="tick")
        )
        value += step
    shapes.append(Text(f.x0 - 6, top - 8, unit, size=10, fill=AXIS, anchor="end", bold=True, cls="unit"))
    shapes.append(Line(f.x0, top, f.x0, top + height, AXIS, 1.0, cls="axis"))
    return y


def _panel_title(shapes: list[Shape], f: _Frame, top: float, text: str) -> None:
    shapes.append(Text(f.x0, top - 8, text, size=11, fill="#333", bold=True, cls="panel-title"))


def _empty_note(f: _Frame, y: float, text: str, size: float) -> Text:
    """What a panel says, centred, when it has nothing to draw (so an empty chart never looks broken)."""
    return Text((f.x0 + f.x1) / 2, y, text, size=size, fill=MUTED, anchor="middle", cls="empty")


def _requests_panel(shapes: list[Shape], f: _Frame, top: float) -> float:
    t = f.timeline
    _panel_title(
        shapes, f, top, "requests per second, by scheduled time: answers by version, failures by class"
    )
    if not t.bins:
        _y_axis(shapes, f, top, REQUESTS_H, 1.0, 1.0, "req/s")
        shapes.append(_empty_note(f, top + REQUESTS_H / 2, "no samples: the probe recorded nothing", 13))
        return top + REQUESTS_H
    peak = max(b.rate(sum(b.versions.values()) + sum(b.failures.values())) for b in t.bins)
    top_value, step = nice_max(peak or 1.0)
    y = _y_axis(shapes, f, top, REQUESTS_H, top_value, step, "req/s")
    for b in t.bins:
        _bar(shapes, f, y, b)
    return top + REQUESTS_H


def _bar(shapes: list[Shape], f: _Frame, y: Callable[[float], float], b: TimeBin) -> None:
    t = f.timeline
    x0, x1 = f.x(b.start), f.x(b.end)
    gap = 0.5 if x1 - x0 > 3 else 0.0
    stack: list[tuple[str, str, int]] = [
        (f"bar {t.old}", VERSION_COLOURS["old"], b.versions.get(t.old, 0)),
        (f"bar {t.new}", VERSION_COLOURS["new"], b.versions.get(t.new, 0)),
        ("bar other", VERSION_COLOURS[OTHER], b.versions.get(OTHER, 0)),
    ]
    stack += [(f"bar fail {c}", failure_colour(c), b.failures.get(c, 0)) for c in t.failure_classes]
    base = 0.0
    when = f"{b.start:.2f} to {b.end:.2f} s"
    for cls, colour, n in stack:
        if not n:
            continue
        rate = b.rate(n)
        label = cls.removeprefix("bar ").replace("fail ", "failed: ")
        tip = f"{when}: {label} {n:,} ({rate:,.0f} req/s)"
        shapes.append(
            Rect(
                x0 + gap,
                y(base + rate),
                x1 - x0 - 2 * gap,
                y(base) - y(base + rate),
                fill=colour,
                cls=cls,
                tip=tip,
            )
        )
        base += rate


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of points with a value: a bin with no answer breaks the line rather than bridging it."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, v in points:
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, v))
    return [r for r in runs if r]


def _latency_panel(shapes: list[Shape], f: _Frame, top: float) -> float:
    t = f.timeline
    _panel_title(shapes, f, top, "latency of answered requests, from scheduled time: p50 and p99 per bin")
    peak = max((b.p99_ms for b in t.bins if b.p99_ms is not None), default=0.0)
    top_value, step = nice_max(peak or 1.0, 3)
    y = _y_axis(shapes, f, top, LATENCY_H, top_value, step, "ms")
    for name, colour, value in (
        ("p50", P50_COLOUR, lambda b: b.p50_ms),
        ("p99", P99_COLOUR, lambda b: b.p99_ms),
    ):
        points = [(f.x((b.start + b.end) / 2), value(b)) for b in t.bins]
        for run in _segments(points):
            shapes.append(Polyline(tuple((x, y(v)) for x, v in run), colour, 1.6, cls=f"latency {name}"))
    if t.bins and peak == 0:
        shapes.append(_empty_note(f, top + LATENCY_H / 2, "no answers", 11))
    return top + LATENCY_H


def _clients_panel(shapes: list[Shape], f: _Frame, top: float) -> float:
    """One thin row per client, by scheduled time: what it got in each bin, a failure over anything."""
    t = f.timeline
    testers = sum(1 for r in t.clients if r.tester)
    title = f"clients, one row each ({len(t.clients)}): {t.old}, {t.new}, both in one bin, failed"
    if testers:
        title += f"; the {testers} testers on top"
    _panel_title(shapes, f, top, title)
    row_h = min(CLIENT_ROW_MAX_H, CLIENTS_MAX_H / len(t.clients))
    colour = {**CLIENT_COLOURS, "old": VERSION_COLOURS["old"], "new": VERSION_COLOURS["new"]}
    for i, row in enumerate(t.clients):
        y = top + i * row_h
        run_start, state = 0, row.cells[0] if row.cells else None
        # One rectangle per run of equal cells: a row of a calm client is one shape, not one per bin.
        for j in range(1, len(row.cells) + 1):
            here = row.cells[j] if j < len(row.cells) else "end"
            if here == state:
                continue
            if state is not None:
                x0, x1 = f.x(t.bins[run_start].start), f.x(t.bins[j - 1].end)
                cls = f"client client-{state}" + (" tester" if row.tester else "")
                shapes.append(
                    Rect(x0, y, max(x1 - x0, 0.5), max(row_h - 0.5, 0.8), fill=colour[state], cls=cls)
                )
            run_start, state = j, here
    if testers:
        y = top + testers * row_h
        shapes.append(Line(f.x0 - 6, y, f.x0 - 2, y, AXIS, 1.0, cls="testers-mark"))
        shapes.append(
            Text(f.x0 - 8, top + testers * row_h / 2 + 4, "testers", size=9, fill=MUTED, anchor="end")
        )
    return top + row_h * len(t.clients)


def _capacity_panel(shapes: list[Shape], f: _Frame, top: float) -> float:
    t = f.timeline
    _panel_title(shapes, f, top, "instances in service (routed traffic, as planned)")
    peak = max((n for _, n in t.capacity), default=0)
    top_value, step = nice_max(max(peak, 1), 2)
    step = max(step, 1.0)
    y = _y_axis(shapes, f, top, CAPACITY_H, top_value, step, "instances")
    points: list[tuple[float, float]] = []
    for (t0, n0), (t1, _) in zip(t.capacity, t.capacity[1:], strict=False):
        points += [(f.x(t0), y(n0)), (f.x(t1), y(n0))]
    if t.capacity:
        points.append((f.x(t.capacity[-1][0]), y(t.capacity[-1][1])))
        shapes.append(Polyline(tuple(points), CAPACITY_COLOUR, 2.0, cls="capacity"))
    else:
        shapes.append(
            Text(
                (f.x0 + f.x1) / 2,
                top + CAPACITY_H / 2 + 4,
                "no capacity recorded",
                size=11,
                fill=MUTED,
                anchor="middle",
                cls="empty",
            )
        )
    return top + CAPACITY_H


def _time_axis(grid: list[Shape], shapes: list[Shape], f: _Frame, panels: list[tuple[float, float]]) -> float:
    t = f.timeline
    bottom = panels[-1][1]
    step = nice_step(t.end - t.start, 10)
    tick = math.ceil(t.start / step) * step
    shapes.append(Line(f.x0, bottom, f.x1, bottom, AXIS, 1.0, cls="axis"))
    while tick <= t.end + 1e-9:
        x = f.x(tick)
        grid.extend(Line(x, top, x, low, GRID, 1.0, cls="grid") for top, low in panels)
        shapes.append(Line(x, bottom, x, bottom + 4, AXIS, 1.0, cls="axis"))
        shapes.append(Text(x, bottom + 16, _num(tick), size=10, fill=MUTED, anchor="middle", cls="tick"))
        tick += step
    label = f"s since the run started (bins of {t.bin_s:g} s)"
    shapes.append(
        Text((f.x0 + f.x1) / 2, bottom + 32, label, size=11, fill=AXIS, anchor="middle", cls="unit")
    )
    return bottom + 36


def _step_lines(shapes: list[Shape], f: _Frame, panels: list[tuple[float, float]]) -> None:
    # Drawn last, over the bars, so a step is visible even where it cut through a full bar.
    for step in f.timeline.steps:
        x = f.x(step.start)
        colour = FAILED_STEP_COLOUR if step.failed else STEP_COLOUR
        tip = f"step {step.index} {step.kind} starts at {step.start:.2f} s: {step.detail}"
        for top, bottom in panels:
            shapes.append(
                Line(x, top, x, bottom, colour, 1.0, (4.0, 3.0), cls="step" + _failed(step), tip=tip)
            )

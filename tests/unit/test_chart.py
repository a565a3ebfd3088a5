"""The timeline chart on synthetic runs: the shapes, the SVG a browser gets and the PNG the README shows."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from lab.analysis import timeline
from lab.model import ErrorClass, Event, Sample
from lab.output.chart import layout
from lab.output.chart.png import to_png
from lab.output.chart.shapes import Drawing, Line, Rect, Text
from lab.output.chart.svg import to_svg

SVG = "{http://www.w3.org/2000/svg}"
RATE = 100.0
EVENTS = [
    Event(0, "Start", "start app-v2-1 and wait until healthy", 1.0, 4.0, True, in_service=1),
    Event(1, "Route", "route v2 100% over app-v2-1", 4.9, 5.0, in_service=1),
    Event(2, "Judge", "judge v2 (error rate <= 1.00%)", 7.0, 7.1, False, "error rate 3% > 1%"),
    Event(3, "Stop", 'stop app-v1-1 <&> "quoted"', 7.1, 8.0, in_service=1),
]


def run(
    switch_s: float = 5.0, burst: range = range(300, 320), saturated: tuple[int, ...] = ()
) -> list[Sample]:
    samples = []
    for i in range(1000):
        t = i / RATE
        if i in burst:
            samples.append(Sample(i, t, t, t + 0.001, error=ErrorClass.RESET))
        elif i in saturated:
            samples.append(Sample(i, t, None, None, error=ErrorClass.SATURATED))
        else:
            version = "v1" if t < switch_s else "v2"
            samples.append(Sample(i, t, t, t + 0.004, 200, version, f"app-{version}-1"))
    return samples


def chart(samples: list[Sample], events: list[Event] = EVENTS) -> Drawing:
    t = timeline.build(samples, events, [(1.0, 1), (5.0, 1)], bin_s=0.5)
    return layout.draw(t, "blue-green · completed · run abc123")


def svg_root(drawing: Drawing) -> ET.Element:
    return ET.fromstring(to_svg(drawing))  # also proves the SVG is well-formed XML


def with_class(root: ET.Element, *classes: str) -> list[ET.Element]:
    return [e for e in root.iter() if set(classes) <= set(e.get("class", "").split())]


def plot_x(drawing: Drawing, t_s: float, span: tuple[float, float] = (0.0, 10.0)) -> float:
    x0, x1 = layout.LEFT, drawing.width - layout.RIGHT
    return x0 + (t_s - span[0]) / (span[1] - span[0]) * (x1 - x0)


def test_svg_has_the_timeline_with_v1_bars_before_the_switch_and_v2_after() -> None:
    drawing = chart(run())
    root = svg_root(drawing)
    assert root.tag == f"{SVG}svg" and root.get("id") == "timeline"
    switch_x = plot_x(drawing, 5.0)
    v1, v2 = with_class(root, "bar", "v1"), with_class(root, "bar", "v2")
    assert len(v1) == 10 and len(v2) == 10
    assert all(float(r.get("x")) + float(r.get("width")) <= switch_x + 0.01 for r in v1)
    assert all(float(r.get("x")) >= plot_x(drawing, 5.0 - 0.01) for r in v2)  # bins start half a tick early
    assert all(r.find(f"{SVG}title") is not None for r in v1 + v2)  # tooltips, no script


def test_a_failure_burst_draws_marks_of_its_class_where_it_happened() -> None:
    drawing = chart(run(burst=range(300, 320)))
    root = svg_root(drawing)
    marks = with_class(root, "fail", "reset")
    assert marks and not with_class(root, "fail", "refused")
    lo, hi = plot_x(drawing, 3.0 - 0.01), plot_x(drawing, 3.5)
    for mark in marks:
        assert (
            lo - 0.01 <= float(mark.get("x")) and float(mark.get("x")) + float(mark.get("width")) <= hi + 0.01
        )
    assert any("20 reset" in (m.findtext(f"{SVG}title") or "") for m in marks)
    assert any(t.text == "reset 20" for t in root.iter(f"{SVG}text"))  # the lane's label with its count


def test_saturation_is_drawn_apart_and_never_as_a_failure() -> None:
    root = svg_root(chart(run(burst=range(0), saturated=(500, 501, 502))))
    assert len(with_class(root, "saturated")) == 1
    assert not with_class(root, "fail")
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "probe saturated 3" in labels and "probe saturated (client side)" in labels
    assert "none" not in labels  # the failure lane holds the saturation row, so it is not "none"


def test_no_failure_says_none() -> None:
    root = svg_root(chart(run(burst=range(0))))
    assert not with_class(root, "fail") and not with_class(root, "saturated")
    assert "none" in [t.text for t in with_class(root, "lane-empty")]


def test_steps_draw_markers_labels_and_failed_verdicts() -> None:
    root = svg_root(chart(run()))
    markers = with_class(root, "step")
    assert len(markers) == len(EVENTS) * 3  # one dashed line per step in each of the three panels
    assert len(with_class(root, "step", "failed")) == 3
    labels = [t.text for t in with_class(root, "step-label")]
    assert labels == ["0 start 1 v2", "1 route v2 100%", "2 judge v2: failed", "3 stop 1 v1"]
    assert all(
        "failed" in e.get("class", "") for e in with_class(root, "step-label") if "judge" in (e.text or "")
    )


def test_text_from_the_run_is_escaped() -> None:
    text = to_svg(chart(run()))
    assert (
        'stop app-v1-1 &lt;&amp;&gt; "quoted"' in text
        or "stop app-v1-1 &lt;&amp;&gt; &quot;quoted&quot;" in text
    )


def test_panels_have_units_and_the_time_axis_is_in_seconds() -> None:
    root = svg_root(chart(run()))
    units = {t.text for t in with_class(root, "unit")}
    assert {"req/s", "ms", "instances"} <= units
    assert any(u.startswith("s since the run started") for u in units)
    ticks = [t.text for t in with_class(root, "tick")]
    assert ticks[-3:] == ["7", "8", "9"] and "0" in ticks  # 0 to 9.995 s: a tick every second


def test_latency_and_capacity_are_lines() -> None:
    root = svg_root(chart(run()))
    assert with_class(root, "latency", "p50") and with_class(root, "latency", "p99")
    (capacity,) = with_class(root, "capacity")
    assert capacity.tag == f"{SVG}polyline" and len(capacity.get("points", "").split()) >= 4


def test_an_empty_run_renders_a_no_samples_chart() -> None:
    drawing = layout.draw(timeline.build([], [], []), "in-place · failed · run 000000")
    root = svg_root(drawing)
    assert [t.text for t in with_class(root, "empty")][0].startswith("no samples")
    assert not with_class(root, "bar")
    image = Image.open(io.BytesIO(to_png(drawing)))
    assert image.size == (round(drawing.width * 2), round(drawing.height * 2))


def _pixel(png: bytes, x: float, y: float, scale: float = 2.0) -> tuple[int, int, int]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image.getpixel((round(x * scale), round(y * scale)))  # type: ignore[return-value]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_png_draws_each_bar_in_its_versions_colour_where_the_svg_has_it() -> None:
    drawing = chart(run())
    png = to_png(drawing)
    assert png.startswith(b"\x89PNG")
    for cls, colour in (("bar v1", layout.VERSION_COLOURS["old"]), ("bar v2", layout.VERSION_COLOURS["new"])):
        rects = [s for s in drawing.shapes if isinstance(s, Rect) and s.cls == cls]
        assert rects
        for r in rects:
            got = _pixel(png, r.x + r.w / 2, r.y + r.h / 2)
            assert max(abs(a - b) for a, b in zip(got, _rgb(colour), strict=True)) <= 3, (cls, got)
    (mark,) = [s for s in drawing.shapes if isinstance(s, Rect) and s.cls == "fail reset"]
    assert _pixel(png, mark.x + mark.w / 2, mark.y + mark.h / 2) == pytest.approx(
        _rgb(layout.failure_colour("reset")), abs=3
    )


def test_png_backend_draws_dashed_lines_and_text() -> None:
    drawing = Drawing(100, 40, [Line(0, 10, 100, 10, "#000000", 2.0, (5.0, 5.0)), Text(5, 35, "Wg", size=20)])
    image = Image.open(io.BytesIO(to_png(drawing, scale=1.0))).convert("L")
    row = [image.getpixel((x, 10)) for x in range(100)]
    dark = [v < 128 for v in row]
    assert 30 <= sum(dark) <= 70  # about half of the line is drawn: dashes, not a solid line
    assert any(image.getpixel((x, y)) < 128 for x in range(5, 40) for y in range(18, 36))  # the text


@pytest.mark.parametrize(
    ("value", "top", "step"), [(207.0, 250.0, 50.0), (3.2, 4.0, 1.0), (0.4, 0.4, 0.1), (8, 8.0, 2.0)]
)
def test_axes_end_on_round_numbers(value: float, top: float, step: float) -> None:
    assert layout.nice_max(value) == pytest.approx((top, step))

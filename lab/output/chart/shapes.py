"""The drawing primitives both backends understand. Coordinates are pixels, y down, as in SVG.

`cls` becomes the SVG element's class, so a test (or a stylesheet) can find every bar of v2 or every
failure mark of one class; `tip` becomes an SVG <title>, a tooltip that needs no script.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str | None = None
    stroke: str | None = None
    cls: str = ""
    tip: str = ""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    width: float = 1.0
    dash: tuple[float, float] | None = None  # (on, off) in pixels
    cls: str = ""
    tip: str = ""


@dataclass(frozen=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 1.5
    cls: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    text: str
    size: float = 11.0
    fill: str = "#222"
    anchor: str = "start"  # start, middle or end, as SVG's text-anchor
    bold: bool = False
    cls: str = ""


Shape = Rect | Line | Polyline | Text


@dataclass
class Drawing:
    width: float
    height: float
    shapes: list[Shape] = field(default_factory=list)
    id: str = "timeline"
    title: str = ""
    background: str = "#ffffff"

    def add(self, *shapes: Shape) -> None:
        self.shapes.extend(shapes)


def text_width(text: str, size: float) -> float:
    """A generous estimate of a sans-serif text's width: layout only needs to keep labels apart."""
    return len(text) * size * 0.6

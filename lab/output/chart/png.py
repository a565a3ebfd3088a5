"""Shapes to a PNG with Pillow, for the README and for viewers that show no SVG.

Pillow draws lines without anti-aliasing, so the picture is drawn at twice the size and scaled down:
averaging the pixels smooths every edge. Text uses Pillow's bundled font, so nothing depends on the system's.
"""

from __future__ import annotations

import io
import math
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from lab.output.chart.shapes import Drawing, Line, Polyline, Rect, Shape, Text

SUPERSAMPLE = 2
_ANCHOR = {"start": "ls", "middle": "ms", "end": "rs"}


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _dashes(
    x1: float, y1: float, x2: float, y2: float, on: float, off: float
) -> list[tuple[float, float, float, float]]:
    length = math.hypot(x2 - x1, y2 - y1)
    if length == 0 or on <= 0:
        return [(x1, y1, x2, y2)]
    dx, dy = (x2 - x1) / length, (y2 - y1) / length
    segments, pos = [], 0.0
    while pos < length:
        end = min(pos + on, length)
        segments.append((x1 + dx * pos, y1 + dy * pos, x1 + dx * end, y1 + dy * end))
        pos = end + off
    return segments


def _draw(draw: ImageDraw.ImageDraw, shape: Shape, k: float) -> None:
    match shape:
        case Rect(x, y, w, h, fill, stroke, _, _):
            if w <= 0 or h <= 0:
                return
            box = (x * k, y * k, (x + w) * k - 1, (y + h) * k - 1)
            draw.rectangle(box, fill=fill, outline=stroke, width=max(1, round(k)) if stroke else 0)
        case Line(x1, y1, x2, y2, stroke, width, dash, _, _):
            segments = _dashes(x1, y1, x2, y2, *dash) if dash else [(x1, y1, x2, y2)]
            for a, b, c, d in segments:
                draw.line((a * k, b * k, c * k, d * k), fill=stroke, width=max(1, round(width * k)))
        case Polyline(points, stroke, width, _):
            if len(points) == 1:
                (x, y), r = points[0], width * k
                draw.ellipse((x * k - r, y * k - r, x * k + r, y * k + r), fill=stroke)
            elif points:
                scaled = [(x * k, y * k) for x, y in points]
                draw.line(scaled, fill=stroke, width=max(1, round(width * k)), joint="curve")
        case Text(x, y, text, size, fill, anchor, bold, _):
            font = _font(max(1, round(size * k)))
            draw.text(
                (x * k, y * k),
                text,
                fill=fill,
                font=font,
                anchor=_ANCHOR.get(anchor, "ls"),
                stroke_width=max(1, round(k * 0.35)) if bold else 0,
                stroke_fill=fill,
            )


def to_png(drawing: Drawing, scale: float = 2.0) -> bytes:
    """The drawing as PNG bytes, `scale` pixels per unit (2: sharp on high-density screens)."""
    k = scale * SUPERSAMPLE
    size = (max(1, round(drawing.width * k)), max(1, round(drawing.height * k)))
    image = Image.new("RGB", size, drawing.background)
    draw = ImageDraw.Draw(image)
    for shape in drawing.shapes:
        _draw(draw, shape, k)
    final = image.reduce(SUPERSAMPLE)  # a box filter: each pixel the mean of the ones it covers
    buf = io.BytesIO()
    final.save(buf, format="PNG")
    return buf.getvalue()

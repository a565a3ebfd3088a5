"""Shapes to SVG text: one element per shape, classes and tooltips kept, every string escaped."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from lab.output.chart.shapes import Drawing, Line, Polyline, Rect, Shape, Text

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _attrs(**attrs: object) -> str:
    parts = []
    for name, value in attrs.items():
        if value is None or value == "":
            continue
        text = _n(value) if isinstance(value, float) else str(value)
        parts.append(f"{name.rstrip('_').replace('_', '-')}={quoteattr(text)}")
    return " ".join(parts)


def _element(tag: str, attrs: str, tip: str) -> str:
    if tip:
        return f"<{tag} {attrs}><title>{escape(tip)}</title></{tag}>"
    return f"<{tag} {attrs}/>"


def shape_svg(shape: Shape) -> str:
    match shape:
        case Rect(x, y, w, h, fill, stroke, cls, tip):
            attrs = _attrs(
                class_=cls,
                x=float(x),
                y=float(y),
                width=float(max(w, 0)),
                height=float(max(h, 0)),
                fill=fill or "none",
                stroke=stroke,
            )
            return _element("rect", attrs, tip)
        case Line(x1, y1, x2, y2, stroke, width, dash, cls, tip):
            attrs = _attrs(
                class_=cls,
                x1=float(x1),
                y1=float(y1),
                x2=float(x2),
                y2=float(y2),
                stroke=stroke,
                stroke_width=float(width),
                stroke_dasharray=f"{_n(dash[0])} {_n(dash[1])}" if dash else None,
            )
            return _element("line", attrs, tip)
        case Polyline(points, stroke, width, cls):
            pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
            attrs = _attrs(
                class_=cls,
                points=pts,
                fill="none",
                stroke=stroke,
                stroke_width=float(width),
                stroke_linejoin="round",
            )
            return _element("polyline", attrs, "")
        case Text(x, y, text, size, fill, anchor, bold, cls):
            attrs = _attrs(
                class_=cls,
                x=float(x),
                y=float(y),
                font_size=float(size),
                fill=fill,
                text_anchor=None if anchor == "start" else anchor,
                font_weight="bold" if bold else None,
            )
            return f"<text {attrs}>{escape(text)}</text>"
    raise TypeError(f"not a shape: {shape!r}")


def to_svg(drawing: Drawing) -> str:
    """A standalone SVG document (no XML declaration, so it can also be inlined in HTML)."""
    head = _attrs(
        xmlns="http://www.w3.org/2000/svg",
        id=drawing.id,
        width=float(drawing.width),
        height=float(drawing.height),
        viewBox=f"0 0 {_n(drawing.width)} {_n(drawing.height)}",
        font_family=FONT,
        role="img",
    )
    lines = [f"<svg {head}>"]
    if drawing.title:
        lines.append(f"<title>{escape(drawing.title)}</title>")
    lines.append(
        _element(
            "rect", _attrs(class_="background", width="100%", height="100%", fill=drawing.background), ""
        )
    )
    lines.extend(shape_svg(s) for s in drawing.shapes)
    lines.append("</svg>")
    return "\n".join(lines) + "\n"

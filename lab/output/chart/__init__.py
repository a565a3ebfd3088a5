"""The timeline chart: drawn once as a list of shapes (layout.py), written as SVG (svg.py) or PNG (png.py)."""

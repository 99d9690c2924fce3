"""Detection zones (``[camera] zones``): polygons in relative coordinates (0-1 of the
frame's width and height); a face counts only when its box's centre is inside one. No
zones: the whole frame."""

from __future__ import annotations

from collections.abc import Sequence

from edge.types import BBox

Polygon = Sequence[tuple[float, float]]


def inside(x: float, y: float, polygon: Polygon) -> bool:
    """Is the point inside the polygon (even-odd rule; a point on an edge may go either
    way)?"""
    result = False
    n = len(polygon)
    for i in range(n):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def in_zones(box: BBox, zones: Sequence[Polygon], width: int, height: int) -> bool:
    """Is the box's centre in one of the zones (any box, when there are none)?"""
    if not zones:
        return True
    x = (box.x1 + box.x2) / 2 / max(width, 1)
    y = (box.y1 + box.y2) / 2 / max(height, 1)
    return any(inside(x, y, polygon) for polygon in zones)

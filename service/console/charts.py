"""A histogram as SVG rectangles: the geometry, so the template only draws."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 640
HEIGHT = 200


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    low: float
    high: float
    count: int


def histogram_bars(edges: list[float], counts: list[int]) -> list[Bar]:
    """One bar per bin, scaled so the tallest fills HEIGHT; empty when there is nothing."""
    tallest = max(counts, default=0)
    if not counts or tallest == 0:
        return []
    width = WIDTH / len(counts)
    return [
        Bar(
            x=i * width,
            y=HEIGHT - HEIGHT * count / tallest,
            width=width,
            height=HEIGHT * count / tallest,
            low=edges[i],
            high=edges[i + 1],
            count=count,
        )
        for i, count in enumerate(counts)
    ]

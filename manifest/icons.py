"""The Teams app icons, drawn with Pillow primitives: a white shield with a checkmark.

Teams wants two PNGs in the package: `color.png`, 192x192 full colour, and `outline.png`, 32x32 white on a
fully transparent background (Teams tints it for the app bar). Both are drawn at a larger size and scaled
down with a box filter for smooth edges; the same code and Pillow give the same bytes every time, so nothing
binary is committed and a rebuilt package is identical.
"""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageDraw

ACCENT_COLOR = "#0F6B5C"  # deep teal: the colour icon's background and the manifest's accentColor
COLOR_SIZE = 192
OUTLINE_SIZE = 32
_SUPERSAMPLE = 8
_WHITE = (255, 255, 255)

Point = tuple[float, float]


def _shield(left: float, top: float, size: float) -> list[Point]:
    """A shield's outline as a polygon inside the square (left, top, size): a notched top, curved sides, a point."""
    def at(x: float, y: float) -> Point:
        return left + x * size, top + y * size

    points = [at(0.5, 0.04), at(0.9, 0.16), at(0.9, 0.46)]
    # The lower sides are quadratic curves from the shoulders down to the point, sampled finely enough to look round.
    steps = 12
    for i in range(1, steps + 1):
        t = i / steps
        x = (1 - t) ** 2 * 0.9 + 2 * (1 - t) * t * 0.88 + t * t * 0.5
        y = (1 - t) ** 2 * 0.46 + 2 * (1 - t) * t * 0.8 + t * t * 0.97
        points.append(at(x, y))
    for i in range(1, steps + 1):
        t = i / steps
        x = (1 - t) ** 2 * 0.5 + 2 * (1 - t) * t * 0.12 + t * t * 0.1
        y = (1 - t) ** 2 * 0.97 + 2 * (1 - t) * t * 0.8 + t * t * 0.46
        points.append(at(x, y))
    points.append(at(0.1, 0.16))
    return points


def _check(left: float, top: float, size: float) -> list[Point]:
    return [(left + x * size, top + y * size) for x, y in ((0.28, 0.5), (0.44, 0.65), (0.73, 0.33))]


def _round_line(draw: ImageDraw.ImageDraw, points: list[Point], width: int, fill: int | tuple[int, ...]) -> None:
    """A polyline with round joints and round caps (Pillow's `line` has round joints only)."""
    draw.line(points, fill=fill, width=width, joint="curve")
    radius = width / 2
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def draw_color_icon() -> Image.Image:
    """192x192 RGB: a white shield with a teal checkmark on a full-bleed teal square."""
    big = COLOR_SIZE * _SUPERSAMPLE
    accent = tuple(int(ACCENT_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    image = Image.new("RGB", (big, big), accent)
    draw = ImageDraw.Draw(image)
    # The symbol sits in the middle ~60%, clear of the rounded corners Teams puts on app icons.
    margin = big * 0.2
    size = big - 2 * margin
    draw.polygon(_shield(margin, margin, size), fill=_WHITE)
    _round_line(draw, _check(margin, margin, size), width=round(size * 0.11), fill=accent)
    return image.resize((COLOR_SIZE, COLOR_SIZE), Image.Resampling.BOX)


def draw_outline_icon() -> Image.Image:
    """32x32 RGBA: the shield's outline and the checkmark in white; every other pixel fully transparent.

    The shape is drawn as a greyscale coverage mask and used as the alpha of a pure white image, so a
    smoothed edge pixel is white with partial alpha, never grey.
    """
    big = OUTLINE_SIZE * _SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    stroke = round(2.5 * _SUPERSAMPLE)
    margin = stroke / 2 + _SUPERSAMPLE * 0.5
    size = big - 2 * margin
    shield = _shield(margin, margin, size)
    draw.line([*shield, shield[0], shield[1]], fill=255, width=stroke, joint="curve")
    _round_line(draw, _check(margin, margin, size), width=stroke, fill=255)
    image = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (*_WHITE, 0))
    image.putalpha(mask.resize((OUTLINE_SIZE, OUTLINE_SIZE), Image.Resampling.BOX))
    return image


@cache
def color_png() -> bytes:
    return _png(draw_color_icon())


@cache
def outline_png() -> bytes:
    return _png(draw_outline_icon())

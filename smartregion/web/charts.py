"""An indicator's daily values as a PNG chart fit for a council report, drawn on the server.

Drawn with Pillow (docs/architecture.md, "Charts as images"): a title, the values as a line with
a dot per day, the indicator's limit or threshold as a dashed line with its label, axes with the
reader's number and date formats, and the source. 1600 × 900 pixels: sharp at the width of an A4
page. The chart says what the page's reading says; it adds nothing the CSV does not hold.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path

from babel.dates import format_date
from PIL import Image, ImageDraw, ImageFont

from smartregion.web.dashboard import Indicator

__all__ = ["HEIGHT", "WIDTH", "indicator_png", "nice_ticks"]

WIDTH, HEIGHT = 1600, 900
_LEFT, _RIGHT, _TOP, _BOTTOM = 170, 60, 150, 150
_INK = (11, 12, 12)
_GREY = (80, 90, 95)
_RULE = (177, 180, 182)
_LINE = (29, 112, 184)  # the portal's blue
_LIMIT = (212, 53, 28)  # the portal's red (errors, limits)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 × 10ⁿ)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


#: system fonts with µ, ³ and the other signs of units (Debian: fonts-dejavu-core,
#: fonts-liberation); tried in order
_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
#: what the fallback font (Pillow's own, Latin letters only) shows instead of those signs
_PLAIN = str.maketrans({"µ": "u", "³": "3", "²": "2", "€": "EUR", "“": '"', "”": '"', "–": "-"})


@cache
def _font_file() -> str | None:
    return next((f for f in _FONT_FILES if Path(f).is_file()), None)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    found = _font_file()
    if found is not None:
        return ImageFont.truetype(found, size)
    # Pillow's own scalable font (Pillow ≥ 10.1 with FreeType, which its wheels include)
    return ImageFont.load_default(size=size)


def _plain(text: str) -> str:
    """`text` as the font can draw it."""
    return text if _font_file() is not None else text.translate(_PLAIN)


def indicator_png(
    indicator: Indicator,
    *,
    title: str,
    source: str,
    reference: tuple[float, str] | None,
    unit: str,
    lang: str,
    number: Callable[[float, int], str],
) -> bytes:
    """The chart of `indicator`'s daily values (see the module docstring).

    `reference` is the limit or threshold line (value, label), `unit` the values' unit in the
    reader's language; `number` formats a number in the reader's locale with at most the given
    decimals.
    """
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    title_font, text_font, small_font = _font(44), _font(28), _font(24)
    draw.text((_LEFT, 40), _plain(title), fill=_INK, font=title_font)
    values = [v for _, v in indicator.daily]
    days: list[date] = [d for d, _ in indicator.daily]
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    if not values:
        draw.text((_LEFT, _TOP + plot_h // 2), "—", fill=_GREY, font=text_font)
        return _png(image)
    low = min([*values, *([reference[0]] if reference else [])])
    high = max([*values, *([reference[0]] if reference else [])])
    ticks = nice_ticks(min(0.0, low), high)
    y_min, y_max = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return _TOP + plot_h - (value - y_min) / (y_max - y_min) * plot_h

    def x_of(index: int) -> float:
        return (
            _LEFT + (index / max(1, len(values) - 1)) * plot_w
            if len(values) > 1
            else _LEFT + plot_w / 2
        )

    digits = 0 if y_max - y_min >= 10 else 2
    for tick in ticks:
        y = y_of(tick)
        draw.line([(_LEFT, y), (_LEFT + plot_w, y)], fill=_RULE, width=1)
        label = number(tick, digits)
        width = draw.textlength(label, font=small_font)
        draw.text((_LEFT - 16 - width, y - 14), label, fill=_GREY, font=small_font)
    draw.text((_LEFT, _TOP - 50), _plain(unit), fill=_GREY, font=small_font)
    draw.line(
        [(_LEFT, _TOP), (_LEFT, _TOP + plot_h), (_LEFT + plot_w, _TOP + plot_h)], fill=_INK, width=2
    )
    # dates: the first, the last and a few between
    step = max(1, math.ceil(len(days) / 6))
    shown = sorted({*range(0, len(days), step), len(days) - 1})
    for index in shown:
        x = x_of(index)
        label = _plain(
            format_date(days[index], "d MMM", locale="nl_BE" if lang == "nl" else "en_GB")
        )
        width = draw.textlength(label, font=small_font)
        draw.line([(x, _TOP + plot_h), (x, _TOP + plot_h + 10)], fill=_INK, width=2)
        draw.text((x - width / 2, _TOP + plot_h + 18), label, fill=_GREY, font=small_font)
    if reference is not None:
        y = y_of(reference[0])
        for start in range(_LEFT, _LEFT + plot_w, 28):
            draw.line([(start, y), (min(start + 16, _LEFT + plot_w), y)], fill=_LIMIT, width=4)
        label = _plain(f"{reference[1]}: {number(reference[0], 2)} {unit}")
        width = draw.textlength(label, font=text_font)
        draw.text((_LEFT + plot_w - width, y - 40), label, fill=_LIMIT, font=text_font)
    points = [(x_of(i), y_of(v)) for i, v in enumerate(values)]
    if len(points) > 1:
        draw.line(points, fill=_LINE, width=5, joint="curve")
    for x, y in points:
        draw.ellipse([(x - 7, y - 7), (x + 7, y + 7)], fill=_LINE)
    draw.text((_LEFT, HEIGHT - 60), _plain(source), fill=_GREY, font=small_font)
    return _png(image)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # no `optimize`: it costs more time than the bytes it saves
    return buffer.getvalue()

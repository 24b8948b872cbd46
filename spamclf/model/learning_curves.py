"""The learning curves that ``train`` writes into a bundle: one PNG, drawn with Pillow.

Loss and accuracy per epoch, training and validation, in two panels side by side. The evaluation
plots (``plots.py``) use Matplotlib; training does not import it. Its import is about half a
second of pure Python, and training has no idle moment to hide it in: run in a background thread,
it took turns on the interpreter lock with building the network and tracing its first step, which
are pure Python too, and made the whole run slower. Pillow (which Matplotlib itself writes PNG
files with) imports in a few hundredths of a second.
"""

from __future__ import annotations

import math
from pathlib import Path

WIDTH, HEIGHT = 800, 320
_SCALE = 2  # drawn at twice the size and reduced: smooth lines without an anti-aliasing renderer
_BLUE, _ORANGE = (31, 119, 180), (255, 127, 14)  # Matplotlib's first two colours, as in the other plots
_INK, _GRID, _PAPER = (38, 38, 38), (229, 229, 229), (255, 255, 255)
_MARGIN = {"left": 62, "right": 14, "top": 54, "bottom": 44}


def learning_curves(history: dict, path: str | Path) -> None:
    """Write the PNG of ``history`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``: one value
    per epoch, as ``network.fit`` returns it) to ``path``. Missing keys and values that are not
    finite (a diverged loss) are left out of the lines; an empty history gives empty panels."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH * _SCALE, HEIGHT * _SCALE), _PAPER)
    draw = ImageDraw.Draw(image)
    panel = WIDTH * _SCALE // 2
    for i, metric in enumerate(("loss", "accuracy")):
        lines = ((metric, _BLUE, False), (f"val_{metric}", _ORANGE, True))
        series = [(key, list(history[key] or []), colour, dashed) for key, colour, dashed in lines if key in history]
        _panel(draw, (i * panel, 0, (i + 1) * panel, HEIGHT * _SCALE), metric, series)
    image.reduce(_SCALE).save(path, format="PNG")


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) from at or below ``lo`` to at
    or above ``hi``, at most ``most`` of them when the range allows; a range of one value is widened
    around it."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        pad = abs(lo) * 0.1 or 0.05
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(most - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10, 20):
        step = multiple * power
        first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        if last - first + 1 <= most:
            break
    return [_clean((first + k) * step) for k in range(last - first + 1)]


def tick_labels(ticks: list[float]) -> list[str]:
    """The ticks as text, with as many decimals as the step between them needs and no more; very
    small or large ticks in the shortest ``g`` format that still tells them apart (2.5e-07)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(ticks[0]) or 1.0
    decimals = next((d for d in range(10) if abs(round(step, d) - step) <= step * 1e-6), 10)
    if decimals <= 4 and max(abs(t) for t in ticks) < 1e6:
        return [f"{t:.{decimals}f}" for t in ticks]
    for digits in range(2, 17):
        labels = [f"{t:.{digits}g}" for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def _clean(value: float) -> float:
    """A tick value without the float noise of ``k * step`` (0.30000000000000004 -> 0.3)."""
    return float(f"{value:.15g}")


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's own font (FreeType), no system fonts needed


def _panel(draw, box: tuple[int, int, int, int], title: str, series: list) -> None:
    s = _SCALE
    left, top = box[0] + _MARGIN["left"] * s, box[1] + _MARGIN["top"] * s
    right, bottom = box[2] - _MARGIN["right"] * s, box[3] - _MARGIN["bottom"] * s
    small, large = _font(11 * s), _font(13 * s)

    points = [(key, _runs(values), colour, dashed) for key, values, colour, dashed in series]
    ys = [v for _, runs, _, _ in points for run in runs for _, v in run]
    epochs = max((len(values) for _, values, _, _ in series), default=0)
    y_ticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
    x_ticks = _epoch_ticks(epochs)
    x_lo, x_hi = (x_ticks[0] - 0.5, x_ticks[-1] + 0.5) if len(x_ticks) == 1 else (x_ticks[0], x_ticks[-1])
    x_lo, x_hi = min(x_lo, 1.0), max(x_hi, float(max(epochs, 1)))
    pad = (x_hi - x_lo) * 0.04

    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    y_pad = (y_hi - y_lo) * 0.04  # no point on the frame itself (an accuracy of 1.0)

    def at(x: float, y: float) -> tuple[float, float]:
        fx = (x - (x_lo - pad)) / ((x_hi + pad) - (x_lo - pad))
        fy = (y - (y_lo - y_pad)) / ((y_hi + y_pad) - (y_lo - y_pad))
        return left + fx * (right - left), bottom - fy * (bottom - top)

    for y, label in zip(y_ticks, tick_labels(y_ticks)):
        _, py = at(x_lo, y)
        draw.line([(left, py), (right, py)], fill=_GRID, width=s)
        w, h = _size(draw, label, small)
        draw.text((left - 6 * s - w, py - h / 2), label, fill=_INK, font=small)
    for x in x_ticks:
        px, _ = at(x, y_ticks[0])
        draw.line([(px, top), (px, bottom)], fill=_GRID, width=s)
        label = str(x)
        w, _ = _size(draw, label, small)
        draw.text((px - w / 2, bottom + 6 * s), label, fill=_INK, font=small)
    draw.rectangle([left, top, right, bottom], outline=_INK, width=s)

    w, h = _size(draw, "epoch", small)
    draw.text(((left + right) / 2 - w / 2, bottom + 8 * s + h + 4 * s), "epoch", fill=_INK, font=small)
    w, h = _size(draw, title, large)
    draw.text(((left + right) / 2 - w / 2, box[1] + 8 * s), title, fill=_INK, font=large)

    legend_x, middle = right, top - 12 * s  # one row above the frame, right-aligned
    for key, _, colour, dashed in reversed(points):
        w, _ = _size(draw, key, small)
        legend_x -= w
        draw.text((legend_x, middle), key, fill=_INK, font=small, anchor="lm")
        _polyline(draw, [(legend_x - 30 * s, middle), (legend_x - 6 * s, middle)], colour, dashed)
        legend_x -= 44 * s

    r = 3.5 * s
    for _, runs, colour, dashed in points:
        for run in runs:
            xy = [at(x, y) for x, y in run]
            if len(xy) > 1:
                _polyline(draw, xy, colour, dashed)
            for px, py in xy:
                draw.ellipse([px - r, py - r, px + r, py + r], fill=colour)


def _epoch_ticks(epochs: int) -> list[int]:
    """Whole epochs only (no tick at 1.5): at most about ten, or six once their labels are wider."""
    if epochs <= 1:
        return [1]
    # Rounded up, not down: a step of 2.5 truncated to 2 gave 12 ticks for 24 epochs.
    step = max(1, math.ceil(nice_ticks(0, epochs, most=11 if epochs < 100 else 6)[1]))
    if step == 1:
        return list(range(1, epochs + 1))
    return ([1] if step >= 4 else []) + list(range(step, epochs + 1, step))


def _polyline(draw, xy: list[tuple[float, float]], colour, dashed: bool) -> None:
    width = 2 * _SCALE
    if not dashed:
        draw.line(xy, fill=colour, width=width, joint="curve")
        return
    on, off = 7 * _SCALE, 4 * _SCALE
    phase = 0.0  # distance into the current dash and gap, carried across the polyline's corners
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        done = 0.0
        while done < length:
            in_dash = phase < on
            run = min((on - phase) if in_dash else (on + off - phase), length - done)
            if in_dash:
                a, b = done / length, (done + run) / length
                draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=colour, width=width)
            done += run
            phase = (phase + run) % (on + off)


def _size(draw, text: str, font) -> tuple[float, float]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _runs(values) -> list[list[tuple[int, float]]]:
    """(epoch, value) in runs of finite values: a line breaks where a value is missing, as in Matplotlib."""
    runs: list[list[tuple[int, float]]] = [[]]
    for epoch, value in enumerate(values, start=1):
        if _finite(value):
            runs[-1].append((epoch, float(value)))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False

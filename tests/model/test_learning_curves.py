"""The learning curves PNG that train writes: drawn where the values are, whatever the history holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from spamclf.model.learning_curves import HEIGHT, WIDTH, learning_curves, nice_ticks, tick_labels

BLUE, ORANGE = (31, 119, 180), (255, 127, 14)
FRAME_TOP, FRAME_BOTTOM = 60, HEIGHT - 50  # inside the frames: below the legends, above the epoch labels


def _pixels(path, colour, panel: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the pixels close to ``colour`` inside panel 0 (loss) or 1 (accuracy)."""
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.int32)
    half = WIDTH // 2
    area = image[FRAME_TOP:FRAME_BOTTOM, panel * half + 70 : (panel + 1) * half - 14]
    ys, xs = np.nonzero(np.abs(area - np.array(colour)).sum(axis=2) < 60)
    return xs, ys


def test_each_series_is_drawn_where_its_values_are(tmp_path):
    path = tmp_path / "curves.png"
    history = {
        "loss": [0.9, 0.5, 0.3, 0.2, 0.1],
        "val_loss": [0.8, 0.6, 0.5, 0.45, 0.44],
        "accuracy": [0.6, 0.8, 0.9, 0.95, 0.99],
        "val_accuracy": [0.55, 0.7, 0.8, 0.85, 0.86],
    }
    learning_curves(history, path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    for panel, falling in ((0, True), (1, False)):
        for colour in (BLUE, ORANGE):
            xs, ys = _pixels(path, colour, panel)
            assert len(xs) > 200, (panel, colour)
            left, right = ys[xs < np.percentile(xs, 20)].mean(), ys[xs > np.percentile(xs, 80)].mean()
            # image rows grow downwards: a falling loss starts high (small row) and ends low
            assert (left < right) if falling else (left > right), (panel, colour, left, right)
    # training loss ends below validation loss, so its line ends lower in the picture
    blue, orange = _pixels(path, BLUE, 0), _pixels(path, ORANGE, 0)
    assert blue[1][blue[0] > np.percentile(blue[0], 90)].mean() > orange[1][orange[0] > np.percentile(orange[0], 90)].mean()


def test_a_missing_value_breaks_the_line(tmp_path):
    path = tmp_path / "curves.png"
    learning_curves({"loss": [0.9, float("nan"), None, float("inf"), 0.1]}, path)
    xs, _ = _pixels(path, BLUE, 0)
    span = xs.max() - xs.min()
    middle = (xs > xs.min() + 0.2 * span) & (xs < xs.max() - 0.2 * span)
    assert len(xs) > 40 and not middle.any()  # the two markers, nothing between them
    learning_curves({"loss": [0.9, 0.5, 0.1]}, path)  # the same without the gap: a line across
    xs, _ = _pixels(path, BLUE, 0)
    span = xs.max() - xs.min()
    assert ((xs > xs.min() + 0.2 * span) & (xs < xs.max() - 0.2 * span)).any()


@pytest.mark.parametrize(
    "history",
    [
        {},
        {"loss": [0.5], "accuracy": [0.9]},
        {"loss": [float("nan")] * 3, "val_loss": [1e-9, 1e-9]},
        {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []},
        {"loss": [1e12, -5.0], "accuracy": [2, 2, 2] * 40},
    ],
    ids=["empty", "one-epoch", "diverged", "no-epochs", "odd-values"],
)
def test_any_history_gives_a_png_with_only_its_own_series(tmp_path, history):
    path = tmp_path / "curves.png"
    learning_curves(history, path)
    with Image.open(path) as image:
        image.verify()
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.int32)
    has_orange = (np.abs(image - np.array(ORANGE)).sum(axis=2) < 60).any()
    assert has_orange == any(k.startswith("val_") for k in history)  # the legend names present series only


@given(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.one_of(st.just(0.0), st.floats(1e-6, 1e3)),
    st.integers(3, 11),
)
def test_ticks_cover_the_range_in_round_even_steps(lo, width, most):
    hi = lo + width * max(1.0, abs(lo))
    ticks = nice_ticks(lo, hi, most)
    assert 2 <= len(ticks) <= max(most, 2)
    steps = np.diff(ticks)
    slack = steps[0] * 1e-6  # float noise at the ends: a value that close to a tick sits on it
    assert ticks[0] <= lo + slack and ticks[-1] >= hi - slack
    assert np.allclose(steps, steps[0], rtol=1e-6, atol=0)
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]) + 1e-9)
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5))
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels) and all(len(label) <= 12 for label in labels)


def test_tick_labels_have_the_decimals_the_step_needs():
    assert tick_labels([0.85, 0.9, 0.95, 1.0]) == ["0.85", "0.90", "0.95", "1.00"]
    assert tick_labels([0.0, 0.1, 0.2]) == ["0.0", "0.1", "0.2"]
    assert tick_labels([-2.0, 0.0, 2.0]) == ["-2", "0", "2"]
    assert tick_labels([9e-10, 9.5e-10, 1e-9]) == ["9e-10", "9.5e-10", "1e-09"]


@given(st.integers(1, 100_000))
@example(24)  # a step of 2.5 truncated to 2 gave 12 ticks
def test_epoch_ticks_are_whole_epochs_few_and_in_range(epochs):
    from spamclf.model.learning_curves import _epoch_ticks

    ticks = _epoch_ticks(epochs)
    assert all(isinstance(t, int) for t in ticks) and ticks == sorted(set(ticks))
    assert 1 <= ticks[0] and ticks[-1] <= epochs
    assert len(ticks) <= (11 if epochs < 100 else 7)
    assert epochs < 10 or len(ticks) >= 3  # never a bare axis

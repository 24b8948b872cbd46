"""The evaluation report's PNG plots, drawn with Matplotlib's non-interactive backend (imported only
when a plot is made). Training's learning curves are drawn without it (``curves.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def require_matplotlib() -> None:
    """Refuse, before any work, a report that cannot draw its plots: Matplotlib is the ``report`` extra."""
    import importlib.util

    from ..errors import SpamclfError

    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # a broken or blocked install
        found = False
    if not found:
        raise SpamclfError("--report draws its plots with Matplotlib, which is not installed: pip install 'spamclf[report]'")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, ax, title: str, path: Path, xlabel: str, ylabel: str | None = None, legend: bool = False) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)


def evaluation_plots(y_true, scores, threshold: float, place: Callable[[str], Path]) -> dict[str, str]:
    """ROC, precision-recall, score histograms per class and metrics against threshold, as PNG files.

    ``place(file name)`` gives the path to write each file to (``OutputFiles.path``: a temporary
    file that becomes the named one). With one class only, the score histogram alone: the curves
    need both. Returns {plot name: file name}.
    """
    import numpy as np

    from .metrics import metrics_by_threshold, pr_points, roc_points

    plt = _pyplot()
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    files = {
        "roc": "roc_curve.png",
        "pr": "pr_curve.png",
        "histogram": "score_histogram.png",
        "thresholds": "metrics_by_threshold.png",
    }
    if not (np.any(y_true == 0) and np.any(y_true == 1)):
        files = {"histogram": files["histogram"]}
        _histogram(plt, y_true, scores, threshold, place(files["histogram"]))
        return files

    fpr, tpr, _ = roc_points(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, lw=2)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    _save(plt, fig, ax, "ROC curve", place(files["roc"]), "false-positive rate (ham marked spam)", "true-positive rate (spam caught)")

    recall, precision = pr_points(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, lw=2)
    _save(plt, fig, ax, "Precision-recall curve", place(files["pr"]), "recall", "precision")

    _histogram(plt, y_true, scores, threshold, place(files["histogram"]))

    grid = np.linspace(0.0, 1.0, 101)
    curves = metrics_by_threshold(y_true, scores, grid)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("accuracy", "precision", "recall", "false_positive_rate"):
        ax.plot(grid, curves[key], label=key)
    ax.axvline(threshold, color="k", ls="--", label="threshold")
    _save(plt, fig, ax, "Metrics against threshold", place(files["thresholds"]), "threshold", legend=True)
    return files


def _histogram(plt, y_true, scores, threshold: float, path: Path) -> None:
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    for code, name in ((0, "ham"), (1, "spam")):
        if np.any(y_true == code):
            ax.hist(scores[y_true == code], bins=bins, alpha=0.6, label=name, log=True)
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    _save(plt, fig, ax, "Scores per class", path, "spam probability", "messages (log scale)", legend=True)

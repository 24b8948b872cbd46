"""PNG plots, drawn with Matplotlib's non-interactive backend (imported only when a plot is made)."""

from __future__ import annotations

from pathlib import Path

from .preload import BackgroundImport

_MATPLOTLIB = BackgroundImport("spamclf-import-matplotlib")


def _import_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def preload() -> None:
    """Import Matplotlib in a background thread (half a second), e.g. while a network trains."""
    _MATPLOTLIB.start(_import_pyplot)


def _pyplot():
    _MATPLOTLIB.wait()
    return _import_pyplot()


def learning_curves(history: dict, path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, side by side.

    Drawn on a Figure of its own, outside pyplot's registry of open figures (nothing to close).
    """
    _pyplot()  # Matplotlib imported (or its background import finished), the Agg backend chosen
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.25
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    # fixed margins: tight_layout measured every label first, a fifth of the plot's time in training
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.92, wspace=0.2)
    fig.savefig(path, dpi=80)


def _save(plt, fig, ax, title: str, path: Path, xlabel: str, ylabel: str | None = None, legend: bool = False) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluation_plots(y_true, scores, threshold: float, folder: Path) -> dict[str, str]:
    """ROC, precision-recall, score histograms per class and metrics against threshold, as PNG files.

    With one class only, the score histogram alone: the curves need both. Returns {plot name: file name}.
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
        _histogram(plt, y_true, scores, threshold, folder / files["histogram"])
        return files

    fpr, tpr, _ = roc_points(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, lw=2)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    _save(plt, fig, ax, "ROC curve", folder / files["roc"], "false-positive rate (ham marked spam)", "true-positive rate (spam caught)")

    recall, precision = pr_points(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, lw=2)
    _save(plt, fig, ax, "Precision-recall curve", folder / files["pr"], "recall", "precision")

    _histogram(plt, y_true, scores, threshold, folder / files["histogram"])

    grid = np.linspace(0.0, 1.0, 101)
    curves = metrics_by_threshold(y_true, scores, grid)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("accuracy", "precision", "recall", "false_positive_rate"):
        ax.plot(grid, curves[key], label=key)
    ax.axvline(threshold, color="k", ls="--", label="threshold")
    _save(plt, fig, ax, "Metrics against threshold", folder / files["thresholds"], "threshold", legend=True)
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

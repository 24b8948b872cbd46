"""PNG plots, drawn with Matplotlib's non-interactive backend (imported only when a plot is made)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(history: dict, path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluation_plots(y_true, scores, threshold: float, folder: Path) -> dict[str, str]:
    """ROC, precision-recall, score histograms per class and metrics against threshold, as PNG files.

    Returns {plot name: file name}.
    """
    import numpy as np

    from .metrics import metrics_by_threshold, pr_points, roc_points

    plt = _pyplot()
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    files = {}

    fpr, tpr, _ = roc_points(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, lw=2)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false-positive rate (ham marked spam)")
    ax.set_ylabel("true-positive rate (spam caught)")
    ax.set_title("ROC curve")
    ax.grid(alpha=0.3)
    files["roc"] = "roc_curve.png"
    fig.tight_layout()
    fig.savefig(folder / files["roc"], dpi=80)
    plt.close(fig)

    recall, precision = pr_points(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, lw=2)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curve")
    ax.grid(alpha=0.3)
    files["pr"] = "pr_curve.png"
    fig.tight_layout()
    fig.savefig(folder / files["pr"], dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(scores[y_true == 0], bins=bins, alpha=0.6, label="ham", log=True)
    ax.hist(scores[y_true == 1], bins=bins, alpha=0.6, label="spam", log=True)
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("spam probability")
    ax.set_ylabel("messages (log scale)")
    ax.set_title("Scores per class")
    ax.legend()
    files["histogram"] = "score_histogram.png"
    fig.tight_layout()
    fig.savefig(folder / files["histogram"], dpi=80)
    plt.close(fig)

    grid = np.linspace(0.0, 1.0, 101)
    curves = metrics_by_threshold(y_true, scores, grid)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("accuracy", "precision", "recall", "false_positive_rate"):
        ax.plot(grid, curves[key], label=key)
    ax.axvline(threshold, color="k", ls="--", label="threshold")
    ax.set_xlabel("threshold")
    ax.set_title("Metrics against threshold")
    ax.grid(alpha=0.3)
    ax.legend()
    files["thresholds"] = "metrics_by_threshold.png"
    fig.tight_layout()
    fig.savefig(folder / files["thresholds"], dpi=80)
    plt.close(fig)
    return files

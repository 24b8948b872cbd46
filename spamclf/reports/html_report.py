"""``evaluate --report DIR``: metrics, confusion matrix, misclassified messages, plots and one HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..printable import printable
from ..records import CsvLines, csv_path
from ..writing import OutputFiles

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.csv"
MISCLASSIFIED_FILE = "misclassified.csv"
HTML_FILE = "report.html"


def misclassified(paths: list[str], y_true, scores, threshold: float) -> list[dict]:
    """Every message on the wrong side of the threshold, the most confidently wrong first."""
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    wrong = np.flatnonzero((scores >= threshold).astype(int) != y_true)
    wrong = wrong[np.argsort(-np.abs(scores[wrong] - threshold), kind="mergesort")]
    return [
        {
            "path": paths[i],
            "score": round(float(scores[i]), 6),
            "label": "spam" if y_true[i] else "ham",
            "predicted": "spam" if scores[i] >= threshold else "ham",
        }
        for i in wrong
    ]


def _html(metrics: dict, wrong: list[dict], plots: dict[str, str]) -> str:
    esc = html.escape
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{'n/a' if metrics[k] is None else (f'{metrics[k]:.4f}' if isinstance(metrics[k], float) else metrics[k])}</td></tr>"
        for k in ("n", "threshold", "accuracy", "precision", "recall", "f1", "roc_auc", "false_positive_rate", "false_negative_rate")
    )
    target = metrics.get("at_target_fpr")
    target_html = (
        f"<p>Threshold for a false-positive rate of at most {target['target_fpr']:.4%}: "
        f"<b>{target['threshold']:.6f}</b> (spam recall there: {target['recall']:.4f}).</p>"
        if target
        else ""
    )
    shown = wrong[:500]
    wrong_rows = "".join(
        f"<tr><td>{esc(printable(w['path']))}</td><td>{w['score']:.6f}</td><td>{w['label']}</td><td>{w['predicted']}</td></tr>" for w in shown
    )
    more = f"<p>{len(wrong) - len(shown)} more in {MISCLASSIFIED_FILE}.</p>" if len(wrong) > len(shown) else ""
    images = "".join(f'<figure><img src="{esc(f)}" alt="{esc(name)}"></figure>' for name, f in plots.items())
    if "roc" not in plots:
        images += "<p>The data holds one class only: the ROC, precision-recall and threshold curves need both classes.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spamclf evaluation</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}figure{{display:inline-block;margin:.5em}}</style>
</head><body>
<h1>spamclf evaluation</h1>
<p>Models: {esc(printable(str(metrics.get('models_dir', ''))))} (bundle {esc(printable(str(metrics.get('bundle_id', ''))))})</p>
<h2>Metrics</h2><table>{rows}</table>
{target_html}
<h2>Confusion matrix</h2>
<table><tr><th></th><th>predicted ham</th><th>predicted spam</th></tr>
<tr><th>actual ham</th><td>{tn}</td><td>{fp}</td></tr>
<tr><th>actual spam</th><td>{fn}</td><td>{tp}</td></tr></table>
<h2>Plots</h2>{images}
<h2>Misclassified messages ({len(wrong)})</h2>
<table><tr><th>path</th><th>score</th><th>label</th><th>predicted</th></tr>{wrong_rows}</table>{more}
</body></html>
"""


def write_report(folder: str | Path, metrics: dict, paths: list[str], y_true, scores) -> dict[str, str]:
    """Write the whole report into ``folder``, replacing an earlier one only once every file is
    written (``writing.OutputFiles``); return {what: file path}."""
    from .plots import evaluation_plots

    folder = Path(folder)
    threshold = metrics["threshold"]
    wrong = misclassified(paths, y_true, scores, threshold)
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    csv_lines = CsvLines()
    with OutputFiles(folder) as files:
        files.write_text(METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
        files.write_text(CONFUSION_FILE, f"actual,predicted_ham,predicted_spam\nham,{tn},{fp}\nspam,{fn},{tp}\n")
        with files.open(MISCLASSIFIED_FILE, newline="") as fh:
            fh.write(csv_lines.line(["path", "score", "label", "predicted"]))
            for w in wrong:
                fh.write(csv_lines.line([csv_path(w["path"]), w["score"], w["label"], w["predicted"]]))
        plots = evaluation_plots(y_true, scores, threshold, files.path)
        files.write_text(HTML_FILE, _html(metrics, wrong, plots))
    names = {"metrics": METRICS_FILE, "confusion_matrix": CONFUSION_FILE, "misclassified": MISCLASSIFIED_FILE, "html": HTML_FILE}
    return {k: str(folder / v) for k, v in {**names, **plots}.items()}

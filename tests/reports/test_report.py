"""evaluate --report and --target-fpr: the files a mail admin reads, with numbers that add up."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner

import spamclf
from spamclf.cli import main
from spamclf.reports.metrics import roc_points


def test_report_folder(smoke_models, sample, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["evaluate", "--models", str(smoke_models), "--data", str(sample), "--report", str(out), "--target-fpr", "0.01", "-q"]
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"metrics.json", "confusion_matrix.csv", "misclassified.csv", "report.html", "roc_curve.png", "pr_curve.png",
            "score_histogram.png", "metrics_by_threshold.png"} <= names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    wrong = list(csv.DictReader(open(out / "misclassified.csv")))
    assert len(wrong) == fp + fn
    for row in wrong:
        assert row["label"] != row["predicted"]
        assert (float(row["score"]) >= metrics["threshold"]) == (row["predicted"] == "spam")
    page = (out / "report.html").read_text()
    for png in ("roc_curve.png", "pr_curve.png", "score_histogram.png", "metrics_by_threshold.png"):
        assert f'src="{png}"' in page
    assert f"{metrics['accuracy']:.4f}" in page
    assert "threshold for false_positive_rate <= 0.01" in result.stdout


def test_target_fpr_threshold_meets_the_target(smoke_models, sample):
    result = spamclf.evaluate(smoke_models, [str(sample)], target_fpr=0.0, progress=False)
    at = result["at_target_fpr"]
    assert at["false_positive_rate"] == 0.0
    looser = spamclf.evaluate(smoke_models, [str(sample)], threshold=at["threshold"] * 0.5, progress=False)
    assert looser["recall"] >= at["recall"]


def test_roc_points_are_monotone_and_end_at_one():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    fpr, tpr, thresholds = roc_points(y, rng.random(200))
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thresholds) < 0)


def test_report_without_matplotlib_is_one_line_before_any_work(smoke_models, sample, tmp_path):
    # Matplotlib is the 'report' extra: without it, --report is refused before the mail is read.
    code = (
        "import sys\nsys.modules['matplotlib'] = None  # as if not installed\n"
        "from spamclf.cli import main\n"
        f"main(['evaluate', '--models', {str(smoke_models)!r}, '--data', {str(sample)!r}, '--report', {str(tmp_path / 'r')!r}, '-q'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["Error: --report draws its plots with Matplotlib, which is not installed: pip install 'spamclf[report]'"]
    assert not (tmp_path / "r").exists()

"""Classification metrics in NumPy: what ``evaluate`` reports and ``train`` records."""

from __future__ import annotations

import numpy as np

from ..errors import BundleError


def _scores(scores) -> np.ndarray:
    """``scores`` as float64, refused if any is not finite: NaN sorts and compares as no score does (one
    NaN among them gave a ROC AUC of 1.0), and it comes from a broken model, never from a message."""
    scores = np.asarray(scores, dtype=np.float64)
    bad = int(np.count_nonzero(~np.isfinite(scores)))
    if bad:
        raise BundleError(f"the model gave a non-finite score for {bad} of {scores.size} messages: its models directory cannot be used; retrain it")
    return scores


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """``[[tn, fp], [fn, tp]]``: rows are the true class (ham, spam), columns the predicted one."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    return [[int(np.sum((y_true == t) & (y_pred == p))) for p in (0, 1)] for t in (0, 1)]


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); None for one class."""
    y_true = np.asarray(y_true).astype(bool)
    scores = _scores(scores)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _ratio_or_none(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC, false-positive rate and the confusion matrix at ``threshold``.

    With both classes present, a ratio with nothing to count (precision when nothing is marked spam)
    is 0. With one class only -- a folder of spam, to see how much of it is caught, or of ham, to
    see how much is lost -- what needs the other class is None: no spam, no recall, false-negative
    rate, F1 or ROC AUC; no ham, no false-positive rate or ROC AUC.
    """
    y_true = np.asarray(y_true).astype(int)
    scores = _scores(scores)
    y_pred = (scores >= threshold).astype(int)
    (tn, fp), (fn, tp) = confusion(y_true, y_pred)
    ratio = _ratio if (tp + fn) and (tn + fp) else _ratio_or_none
    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    return {
        "n": int(len(y_true)),
        "threshold": float(threshold),
        "accuracy": _ratio(tp + tn, len(y_true)),
        "precision": precision,
        "recall": recall,
        "f1": None if precision is None or recall is None else _ratio(2 * precision * recall, precision + recall),
        "roc_auc": roc_auc(y_true, scores),
        "false_positive_rate": ratio(fp, fp + tn),
        "false_negative_rate": ratio(fn, fn + tp),
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }


def threshold_for_fpr(y_true: np.ndarray, scores: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold whose false-positive rate on these scores is at most ``target_fpr``.

    Ham scoring at or above the threshold counts as a false positive, so the answer sits just
    above the ham score that would otherwise push the rate past the target.
    """
    y_true = np.asarray(y_true).astype(bool)
    ham = np.sort(_scores(scores)[~y_true])[::-1]
    if ham.size == 0:
        return 0.5
    allowed = int(np.floor(target_fpr * ham.size + 1e-9))  # ham messages that may score above it
    if allowed >= ham.size:
        return 0.0
    return float(np.nextafter(np.float32(ham[allowed]), np.float32(np.inf)))


def _counts_at_distinct_scores(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, false positives, predicted positives, threshold) at every distinct score, from
    the strictest threshold to the loosest: messages with the same score are on one side of any threshold."""
    y_true = np.asarray(y_true).astype(bool)
    scores = _scores(scores)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, int)
    return np.cumsum(y)[last_of_tie], np.cumsum(~y)[last_of_tie], last_of_tie + 1, s[last_of_tie]


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, from the strictest threshold to the loosest."""
    tp, fp, _, thresholds = _counts_at_distinct_scores(y_true, scores)
    positives = int(np.sum(np.asarray(y_true).astype(bool)))
    tpr = np.r_[0.0, tp / max(positives, 1)]
    fpr = np.r_[0.0, fp / max(len(np.asarray(y_true)) - positives, 1)]
    return fpr, tpr, np.r_[np.inf, thresholds]


def pr_points(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct score threshold, from the strictest to the loosest."""
    tp, _, predicted, _ = _counts_at_distinct_scores(y_true, scores)
    return tp / max(int(np.sum(np.asarray(y_true).astype(bool))), 1), tp / predicted


def metrics_by_threshold(y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> dict[str, list[float]]:
    """Accuracy, precision, recall and false-positive rate at each of ``thresholds``."""
    rows = [classification_metrics(y_true, scores, float(t)) for t in thresholds]
    keys = ("accuracy", "precision", "recall", "false_positive_rate")
    return {"threshold": [float(t) for t in thresholds], **{k: [r[k] for r in rows] for k in keys}}

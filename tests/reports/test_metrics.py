"""Metrics agree with scikit-learn's, and thresholds meet their false-positive target."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from spamclf.errors import BundleError
from spamclf.reports.metrics import classification_metrics, pr_points, roc_auc, roc_points, threshold_for_fpr


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.clip(y * 0.4 + rng.normal(0.3, 0.2, 500), 0, 1).round(2)  # rounding makes ties
    return y, scores


def test_metrics_match_sklearn(scored):
    y, scores = scored
    m = classification_metrics(y, scores, 0.5)
    pred = (scores >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    (tn, fp), _ = m["confusion_matrix"]
    assert m["false_positive_rate"] == pytest.approx(fp / (fp + tn))
    assert m["n"] == 500


def test_auc_of_one_class_is_none():
    assert roc_auc(np.ones(4), np.array([0.1, 0.2, 0.3, 0.4])) is None


@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.2])
def test_threshold_for_fpr_meets_target(scored, target):
    y, scores = scored
    t = threshold_for_fpr(y, scores, target)
    ham = scores[y == 0]
    assert np.mean(ham >= t) <= target + 1e-12
    # and it is the lowest such threshold: the next lower ham score would break the target
    below = ham[ham < t]
    if below.size:
        assert np.mean(ham >= below.max()) > target


def test_one_class_gives_what_it_can_measure_and_none_for_the_rest():
    spam_only = classification_metrics(np.array([1, 1, 1, 1]), np.array([0.9, 0.2, 0.8, 0.7]), 0.5)
    assert spam_only["recall"] == spam_only["accuracy"] == 0.75 and spam_only["false_negative_rate"] == 0.25
    assert spam_only["precision"] == 1.0 and spam_only["f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert spam_only["false_positive_rate"] is None and spam_only["roc_auc"] is None
    ham_only = classification_metrics(np.array([0, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3]), 0.5)
    assert ham_only["false_positive_rate"] == 0.25 and ham_only["accuracy"] == 0.75
    assert ham_only["precision"] == 0.0  # one message marked spam, and it was ham
    assert ham_only["recall"] is None and ham_only["false_negative_rate"] is None and ham_only["f1"] is None
    none_marked = classification_metrics(np.array([0, 0, 0]), np.array([0.1, 0.2, 0.3]), 0.5)
    assert none_marked["precision"] is None and none_marked["false_positive_rate"] == 0.0
    both = classification_metrics(np.array([0, 1]), np.array([0.1, 0.2]), 0.5)  # both classes: 0/0 stays 0
    assert both["precision"] == 0.0 and both["recall"] == 0.0 and both["f1"] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("measure", [
    lambda y, s: classification_metrics(y, s, 0.5),
    roc_auc,
    lambda y, s: threshold_for_fpr(y, s, 0.01),
    roc_points,
    pr_points,
], ids=["metrics", "roc_auc", "threshold_for_fpr", "roc_points", "pr_points"])
def test_a_score_that_is_not_finite_is_refused_not_measured(measure, bad):
    # one NaN among good scores gave a ROC AUC of 1.0
    y = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.7, bad])
    with pytest.raises(BundleError, match="^the model gave a non-finite score for 1 of 6 messages: its models directory cannot be used"):
        measure(y, scores)


@pytest.mark.parametrize("seed", range(5))
def test_precision_recall_points_are_scikit_learns(seed):
    # Ties on purpose: scores rounded to one decimal. A point per message put points between tied
    # messages, where no threshold can be.
    from sklearn.metrics import precision_recall_curve

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    scores = np.round(np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1), 1)
    recall, precision = pr_points(y, scores)
    ref_precision, ref_recall, ref_thresholds = precision_recall_curve(y, scores)
    # scikit-learn goes from the loosest threshold to the strictest and adds (recall 0, precision 1)
    np.testing.assert_allclose(recall, ref_recall[:-1][::-1])
    np.testing.assert_allclose(precision, ref_precision[:-1][::-1])
    assert len(recall) == len(np.unique(scores)) == len(ref_thresholds)

"""``spamclf evaluate``: a saved bundle against labelled data."""

from __future__ import annotations

from pathlib import Path

from .dataset import load_labelled, require_trainable
from .metrics import classification_metrics
from .prediction import Classifier


def evaluate(models_dir: str | Path, data: list[str] | tuple[str, ...], threshold: float | None = None, progress: bool = True) -> dict:
    """Metrics of the bundle in ``models_dir`` on labelled ``data``, at its saved threshold unless given one."""
    clf = Classifier.load(models_dir)
    dataset = load_labelled(data, clf.options, progress=progress, dedupe=False)
    require_trainable(dataset, "evaluation")
    scores = clf.score_texts(dataset.texts)
    result = classification_metrics(dataset.y, scores, clf.threshold if threshold is None else threshold)
    result["skipped"] = len(dataset.skips.skipped)
    result["models_dir"] = str(models_dir)
    result["bundle_id"] = clf.bundle.bundle_id
    return result

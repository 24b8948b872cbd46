"""``spamclf evaluate``: a saved bundle against labelled data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..mail.labelled import LabelledData, labelled_batches, read_labelled, require_messages
from ..model.features import featurize_parts, rows_from_parts
from ..workers import in_order
from ..errors import DataError
from ..reports.metrics import classification_metrics, threshold_for_fpr
from .predict import Classifier


def evaluate(
    models_dir: str | Path,
    data: list[str] | tuple[str, ...],
    threshold: float | None = None,
    target_fpr: float | None = None,
    report_dir: str | Path | None = None,
    progress: bool = True,
    jobs: int | None = 0,
) -> dict:
    """Metrics of the bundle in ``models_dir`` on labelled ``data``, at its saved threshold unless given one.

    ``data`` may hold one class only: a folder of spam gives the share caught (recall), a folder of
    ham the share marked spam (false-positive rate); what needs the other class is None.

    ``target_fpr``: also find the threshold that keeps the false-positive rate on this data at
    most that (``at_target_fpr`` in the result). ``report_dir``: write the full report there.
    """
    if report_dir is not None:
        from ..reports.plots import require_matplotlib

        require_matplotlib()
    clf = Classifier.load(models_dir)
    # The workers extract and tokenise; this process only multiplies the rows through the network.
    dataset = labelled_rows(data, clf, progress=progress, jobs=jobs)
    require_messages(dataset, "evaluation")  # one class alone is measured too
    y = dataset.y
    if target_fpr is not None and not np.any(y == 0):
        raise DataError(f"--target-fpr needs ham messages to measure false positives on; found none ({dataset.counts()})")
    scores = clf.score_rows(dataset.row_matrix())
    result = classification_metrics(y, scores, clf.threshold if threshold is None else threshold)
    if target_fpr is not None:
        t = threshold_for_fpr(y, scores, target_fpr)
        at = classification_metrics(y, scores, t)
        result["at_target_fpr"] = {
            "target_fpr": target_fpr,
            "threshold": t,
            "false_positive_rate": at["false_positive_rate"],
            "recall": at["recall"],
            "accuracy": at["accuracy"],
        }
    result["skipped"] = len(dataset.skips.skipped)
    result["truncated_messages"] = dataset.truncated  # cut at extract.max_bytes, scored on what came before
    result["models_dir"] = str(models_dir)
    result["bundle_id"] = clf.bundle.bundle_id
    if report_dir is not None:
        from ..reports.html_report import write_report

        result["report"] = write_report(report_dir, result, dataset.paths, y, scores)
    return result


def labelled_rows(sources, clf: Classifier, progress: bool = True, jobs: int | None = 0, batch_size: int = 256) -> LabelledData:
    """Every message of ``sources`` as a TF-IDF row of ``clf``'s features (``rows``), duplicates kept:
    each one is measured. The workers extract and tokenise; this process only reads and multiplies."""
    data = LabelledData()
    batches = labelled_batches(read_labelled(sources, clf.options, data, progress, dedupe=False), batch_size)
    for batch, parts in in_order(batches, featurize_parts, clf.options, clf.features, jobs=jobs):
        data.add(batch)
        data.rows.append(rows_from_parts(parts))
    return data


def format_metrics(m: dict) -> str:
    """A readable table of evaluation metrics and the confusion matrix."""
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    missing = "no ham" if tn + fp == 0 else "no spam" if tp + fn == 0 else "one class"

    def value(key: str) -> str:  # None: the data has one class, and this needs the other
        return f"n/a ({missing})" if m.get(key) is None else f"{m[key]:.4f}"

    lines = [
        f"messages             {m['n']}",
        f"threshold            {m['threshold']:.4f}",
        f"accuracy             {m['accuracy']:.4f}",
        f"precision            {value('precision')}",
        f"recall               {value('recall')}  (spam caught)",
        f"f1                   {value('f1')}",
        f"roc_auc              {value('roc_auc')}",
        f"false_positive_rate  {value('false_positive_rate')}  (ham marked spam)",
        "",
        "confusion matrix     predicted ham  predicted spam",
        f"  actual ham         {tn:>13}  {fp:>14}",
        f"  actual spam        {fn:>13}  {tp:>14}",
    ]
    if m.get("at_target_fpr"):
        t = m["at_target_fpr"]
        lines += [
            "",
            f"threshold for false_positive_rate <= {t['target_fpr']}: {t['threshold']:.6f}"
            f"  (false_positive_rate {t['false_positive_rate']:.4f}, recall {t['recall']:.4f})",
        ]
    return "\n".join(lines)

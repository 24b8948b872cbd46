"""Writing results: prediction rows as table, CSV or JSON Lines; metrics as a table."""

from __future__ import annotations

import csv
import json
from typing import IO, Iterable

from ..printable import printable
from .predict import Prediction

FORMATS = ("table", "csv", "jsonl")
FIELDS = ("path", "score", "label", "error")


def _tokens(explanation: dict | None, side: str) -> str:
    """``token:+0.123 other:+0.045`` for one side of an explanation."""
    return " ".join(f"{tok}:{w:+.3f}" for tok, w in (explanation or {}).get(side, []))


def write_predictions(rows: Iterable[Prediction], fmt: str, out: IO[str], explain: bool = False) -> dict[str, int]:
    """Stream ``rows`` to ``out`` as they come; return counts of scored and failed rows, and of
    the scored rows whose message was cut at ``extract.max_bytes`` (``truncated``).

    With ``explain``, CSV gains ``spam_tokens``/``ham_tokens`` columns and the table two indented
    lines per message; JSON Lines rows carry an ``explain`` object whenever it is set.
    """
    counts = {"scored": 0, "failed": 0, "truncated": 0}
    writer = None
    if fmt == "csv":
        fields = FIELDS + (("spam_tokens", "ham_tokens") if explain else ())
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
    elif fmt == "table":
        out.write(f"{'LABEL':<6} {'SCORE':>8}  PATH\n")
    for row in rows:
        counts["failed" if row.error else "scored"] += 1
        counts["truncated"] += bool(row.truncated)
        if fmt == "jsonl":
            out.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        elif fmt == "csv":
            d = row.as_dict()
            d.update(score="" if row.score is None else f"{row.score:.6f}", error=d["error"] or "")
            if explain:
                d.update(spam_tokens=_tokens(row.explanation, "spam"), ham_tokens=_tokens(row.explanation, "ham"))
            writer.writerow(d)
        elif row.error:
            out.write(f"{'ERROR':<6} {'-':>8}  {printable(row.path)}  ({printable(row.error)})\n")
        else:
            out.write(f"{row.label:<6} {row.score:>8.4f}  {printable(row.path)}\n")
            if explain and row.explanation is not None:
                out.write(f"{'':<17}spam: {_tokens(row.explanation, 'spam') or '-'}\n")
                out.write(f"{'':<17}ham:  {_tokens(row.explanation, 'ham') or '-'}\n")
    return counts


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

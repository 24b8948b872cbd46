"""Writing results: prediction rows as table, CSV or JSON Lines; metrics as a table.

CSV and JSON Lines are always valid UTF-8 (whatever the locale), and a score is always a finite
number. File names are kept exactly, but for the bytes of a name that are not valid UTF-8 (on
Linux a name is any bytes; Python holds them as ``surrogateescape`` characters). These follow
ripgrep's ``--json`` convention of base64 for such bytes, in a way that keeps each format's
columns and the ``path`` key a plain string:

- JSON Lines: ``path`` is the name with each such byte as U+FFFD, and ``path_bytes`` beside it
  holds the exact bytes of the name in base64 (only in rows whose name needs it).
- CSV: the ``path`` cell is ``base64:`` followed by the base64 of the exact bytes; a name that
  itself begins with ``base64:`` is written that way too, so every cell reads back one way.
  A cell holding a CR is quoted, as one holding a newline or a comma is.
- Table: such bytes are shown as ``\\xff`` escapes, with control characters (``printable``).

Other text in a row (an error's reason) has such bytes as U+FFFD. A score that is not a finite
number (a broken model) becomes an error row, never ``NaN`` in JSON or ``nan`` in CSV.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from typing import IO, Iterable

from ..printable import printable
from .predict import Prediction
from ..writing import OutputClosed, write_stream

FORMATS = ("table", "csv", "jsonl")
FIELDS = ("path", "score", "label", "error")
CSV_BYTES_PREFIX = "base64:"


def utf8_text(text: str) -> tuple[str, bytes | None]:
    """``text`` as valid Unicode, with U+FFFD for each byte that is not valid UTF-8, and those exact
    bytes (``None`` when the text was valid already)."""
    try:
        text.encode("utf-8")
        return text, None
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte (a JSON table's "\\ud800")
        raw = text.encode("utf-8", "surrogatepass")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), raw


def _clean(value):
    """``value`` with every string valid Unicode and every non-finite float ``None``: what JSON can hold."""
    if isinstance(value, str):
        return utf8_text(value)[0]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def json_record(doc: dict) -> str:
    """One JSON Lines record (no newline): valid UTF-8, finite numbers, and ``path_bytes`` after
    ``path`` when the path is not valid UTF-8."""
    out = {}
    for key, value in doc.items():
        if key == "path" and isinstance(value, str):
            text, raw = utf8_text(value)
            out["path"] = text
            if raw is not None:
                out["path_bytes"] = base64.b64encode(raw).decode("ascii")
        else:
            out[key] = _clean(value)
    return json.dumps(out, ensure_ascii=False, allow_nan=False)


def csv_path(path: str) -> str:
    """A path as a CSV cell: the name itself, or ``base64:`` and its exact bytes (see the module's notes)."""
    text, raw = utf8_text(path)
    if raw is None and not text.startswith(CSV_BYTES_PREFIX):
        return text
    return CSV_BYTES_PREFIX + base64.b64encode(path.encode("utf-8", "surrogateescape") if raw is None else raw).decode("ascii")


class CsvLines:
    """CSV lines ending in ``\\n`` whose cells are always valid UTF-8 and whose rows a reader cannot
    split: Python quotes only the characters of the line terminator, and readers also end a row at
    a bare CR, so a row with a CR in a cell is written fully quoted."""

    def __init__(self) -> None:
        self._text = io.StringIO()
        self._plain = csv.writer(self._text, lineterminator="\n")
        self._quoted = csv.writer(self._text, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def line(self, cells: Iterable) -> str:
        cells = [utf8_text(c)[0] if isinstance(c, str) else c for c in cells]
        self._text.seek(0)
        self._text.truncate()
        (self._quoted if any(isinstance(c, str) and "\r" in c for c in cells) else self._plain).writerow(cells)
        return self._text.getvalue()


def _tokens(explanation: dict | None, side: str) -> str:
    """``token:+0.123 other:+0.045`` for one side of an explanation."""
    return " ".join(f"{tok}:{w:+.3f}" for tok, w in (explanation or {}).get(side, []))


def _finite(row: Prediction) -> Prediction:
    """``row``, or its error row when its score is not a finite number."""
    if row.score is None or row.error or math.isfinite(row.score):
        return row
    return Prediction(row.path, None, None, f"the model gave a score that is not a number ({row.score})")


def write_predictions(rows: Iterable[Prediction], fmt: str, out: IO[str], explain: bool = False) -> dict:
    """Stream ``rows`` to ``out`` as they come; return counts of scored and failed rows, and of
    the scored rows whose message was cut at ``extract.max_bytes`` (``truncated``).

    With ``explain``, CSV gains ``spam_tokens``/``ham_tokens`` columns and the table two indented
    lines per message; JSON Lines rows carry an ``explain`` object whenever it is set.

    A reader that goes away (``| head -1``) ends the output: no more rows are read, and
    ``closed`` is True in the result. Any other failure to write raises OutputError.
    """
    counts = {"scored": 0, "failed": 0, "truncated": 0, "closed": False}
    csv_lines = CsvLines()
    try:
        if fmt == "csv":
            write_stream(out, csv_lines.line(FIELDS + (("spam_tokens", "ham_tokens") if explain else ())))
        elif fmt == "table":
            write_stream(out, f"{'LABEL':<6} {'SCORE':>8}  PATH\n")
        for row in rows:
            row = _finite(row)
            counts["failed" if row.error else "scored"] += 1
            counts["truncated"] += bool(row.truncated)
            write_stream(out, _format(row, fmt, csv_lines, explain))
        write_stream(out, flush=True)
    except OutputClosed:
        counts["closed"] = True
        close = getattr(rows, "close", None)
        if close:
            close()  # stop reading and scoring: nobody reads the rows
    return counts


def _format(row: Prediction, fmt: str, csv_lines: CsvLines, explain: bool) -> str:
    if fmt == "jsonl":
        return json_record(row.as_dict()) + "\n"
    if fmt == "csv":
        cells = [csv_path(row.path), "" if row.score is None else f"{row.score:.6f}", row.label, row.error or ""]
        if explain:
            cells += [_tokens(row.explanation, "spam"), _tokens(row.explanation, "ham")]
        return csv_lines.line(cells)
    if row.error:
        return f"{'ERROR':<6} {'-':>8}  {printable(row.path)}  ({printable(row.error)})\n"
    text = f"{row.label:<6} {row.score:>8.4f}  {printable(row.path)}\n"
    if explain and row.explanation is not None:
        text += f"{'':<17}spam: {_tokens(row.explanation, 'spam') or '-'}\n"
        text += f"{'':<17}ham:  {_tokens(row.explanation, 'ham') or '-'}\n"
    return text


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

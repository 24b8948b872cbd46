"""Classifying messages with a saved bundle, without TensorFlow: the Python API and ``predict`` share this.

Rows are written as a table, CSV or JSON Lines (``write_predictions``); CSV and JSON Lines follow
:mod:`spamclf.records`, so any file name can be recovered exactly. A score that is not a finite
number (a broken model) becomes an error row, never ``NaN`` in JSON or ``nan`` in CSV. The table
shows a name's undecodable bytes as ``\\xff`` escapes, with control characters (``printable``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from ..model.bundle import NO_BUNDLE, Bundle, load_bundle
from ..errors import BundleError, DataError, SpamclfError
from ..mail.extract import ExtractOptions, extract
from ..model.features import featurize_parts, rows_from_parts
from ..model.scorer import forward
from ..mail.sources import Item, SkipLog, iter_inputs
from ..printable import printable
from ..records import CsvLines, csv_path, json_record
from ..workers import in_order
from ..writing import OutputClosed, write_stream


@dataclass
class Prediction:
    """One output row: every input gets exactly one."""

    path: str
    score: float | None
    label: str | None
    error: str | None = None
    explanation: dict | None = None  # {"spam": [[token, weight], ...], "ham": [...]} with --explain
    truncated: bool = False  # longer than ``extract.max_bytes``: scored on its first max_bytes bytes

    def as_dict(self) -> dict:
        row = {"path": self.path, "score": self.score, "label": self.label, "error": self.error}
        if self.explanation is not None:
            row["explain"] = self.explanation
        if self.truncated:
            row["truncated"] = True
        return row


class Classifier:
    """A loaded models directory. ``spamclf.load(dir)`` returns one.

    It scores (``predict``, ``score_messages``...) and learns (``learn``, ``forget``, then ``save``):
    scoring reflects every ``learn`` and ``forget`` at once, from memory.
    """

    def __init__(self, bundle: Bundle, learner=None) -> None:
        self.bundle = bundle
        self.features = bundle.features
        self.options = ExtractOptions.from_config(bundle.config)
        self._learner = learner  # online.Learner, made on the first learn or forget
        # the bundle on disk this classifier holds: ``save`` replaces only that one
        self._disk_id = bundle.manifest.get("bundle_id", NO_BUNDLE)

    @classmethod
    def load(cls, models_dir: str | Path) -> "Classifier":
        return cls(load_bundle(models_dir))

    @property
    def threshold(self) -> float:
        return self.bundle.threshold

    # --- learning (commands/learning.py): one code path for the API, ``spamclf learn`` and the daemon

    def learn(self, messages, labels) -> dict:
        """Learn ``messages`` (paths as ``predict`` takes them -- files, folders, mailboxes -- or raw
        ``bytes``) as ``labels`` ("spam"/"ham", 1/0, True/False; one per message or one for all).

        A message learned again with the same label changes nothing; with the other, it is moved.
        Returns counts (``learned``, ``relabelled``, ``unchanged``) and ``errors``: a row (path, error)
        per unreadable input. In memory only until ``save``.
        """
        from .learning import learn

        return learn(self, messages, labels)

    def forget(self, messages) -> dict:
        """Remove what was learned from ``messages``: counts ``forgotten`` and ``unknown`` (never learned), and ``errors``."""
        from .learning import forget

        return forget(self, messages)

    def relearn(self) -> dict:
        """Rebuild the model from everything in the store: the vocabulary selected again, the network fitted from scratch."""
        from .learning import relearn

        return relearn(self)

    def save(self) -> str:
        """Write the bundle atomically, replacing the one this classifier loaded (or last saved); BundleError
        when another process replaced it meanwhile. Hold ``models_lock`` from load to save. Returns the new bundle_id."""
        from .learning import save

        return save(self)

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Spam probabilities for already extracted texts."""
        if not len(texts):
            return np.zeros(0, dtype=np.float32)
        return self.score_rows(self.features.transform(texts))

    def score_rows(self, x: sp.csr_matrix) -> np.ndarray:
        """Spam probabilities for TF-IDF rows made with this bundle's features (0 from a learner that has
        not learned both classes yet: an empty filter labels nothing spam)."""
        ready = _learned_both_classes(self.bundle.metadata) if self._learner is None else self._learner.ready
        if not ready:
            return np.zeros(x.shape[0], np.float32)
        return forward(x, self.bundle.layers)

    def score_messages(self, raws: Sequence[bytes]) -> np.ndarray:
        """Spam probabilities for raw messages (bytes as read from disk or a socket)."""
        return self.score_texts([extract(raw, self.options, tidy=False) for raw in raws])  # bytes only, as before

    def cutoffs(self, threshold: float | None = None, ham_cutoff: float | None = None) -> tuple[float, float]:
        """(ham_cutoff, spam_cutoff): the bundle's threshold unless given; no unsure band without ``ham_cutoff``."""
        spam_cutoff = self.threshold if threshold is None else float(threshold)
        ham = spam_cutoff if ham_cutoff is None else float(ham_cutoff)
        if not 0.0 <= ham <= spam_cutoff <= 1.0:
            raise SpamclfError(f"the ham cutoff ({ham}) must be between 0 and the spam cutoff ({spam_cutoff})")
        return ham, spam_cutoff

    def label(self, score: float, threshold: float | None = None, ham_cutoff: float | None = None) -> str:
        """Like bogofilter: ``spam`` at or above the spam cutoff (the threshold), ``ham`` below the ham
        cutoff, ``unsure`` in between (``ham_cutoff <= score < spam_cutoff``). BundleError for a score
        that is not finite: filter mode then passes the message through with exit status 3."""
        return _label(score, *self.cutoffs(threshold, ham_cutoff))

    def predict_items(
        self,
        items: Iterable[Item],
        threshold: float | None = None,
        batch_size: int = 256,
        explain: int = 0,
        ham_cutoff: float | None = None,
        jobs: int | None = 1,
    ) -> Iterator[Prediction]:
        """One Prediction per item, in input order, scored in batches so memory stays bounded.

        ``explain``: name the N tokens that pushed each score most towards spam and towards ham.
        ``jobs``: worker processes extracting and tokenising (None or 0: one per CPU); they start only
        once the input fills more than one batch, so a single message never pays for them.
        """
        ham, spam = self.cutoffs(threshold, ham_cutoff)  # once, so a bad band fails before the first row
        for batch, readable, x in _featurized_batches(iter(items), self.options, self.features, batch_size, jobs):
            scores = self.score_rows(x) if len(readable) else []
            by_index = dict(zip(readable, scores))
            explained = {}
            if explain:
                from ..model.explain import explain_rows

                explained = dict(zip(readable, explain_rows(x, self.bundle.layers, self.features.vocabulary_, explain)))
            for i, item in enumerate(batch):
                if item.error is not None:
                    yield Prediction(item.path, None, None, item.error)
                    continue
                score = float(by_index[i])
                try:
                    label = _label(score, ham, spam)
                except BundleError as exc:  # this row's score is not a number: an error row, never printed
                    yield Prediction(item.path, None, None, str(exc))
                    continue
                yield Prediction(item.path, score, label, explanation=explained.get(i), truncated=item.truncated)

    def predict(
        self,
        inputs: Iterable[str | Path],
        threshold: float | None = None,
        skips: SkipLog | None = None,
        explain: int = 0,
        ham_cutoff: float | None = None,
        jobs: int | None = 1,
    ):
        """Predictions for message files and folders (recursive), one per file, in a stable order.

        ``inputs`` may also be a pandas Series of messages (bytes or str), or a DataFrame with a text
        column named as in tables (``text``, ``message``, ``raw``...): the result is then a DataFrame
        with the same index and the columns ``score``, ``label`` and ``error`` (and ``explain``).
        ``jobs``: worker processes for extraction (None or 0: one per CPU), used for large inputs.
        """
        if type(inputs).__module__.partition(".")[0] == "pandas":  # pandas is imported only when given
            return self._predict_frame(inputs, threshold, explain, ham_cutoff, jobs)
        items = iter_inputs(inputs, self.options.max_bytes, skips)
        return self.predict_items(items, threshold, explain=explain, ham_cutoff=ham_cutoff, jobs=jobs)

    def _predict_frame(self, frame, threshold, explain: int, ham_cutoff, jobs):
        import pandas as pd

        from ..mail.table_files import TEXT_COLUMNS, pick_column

        if isinstance(frame, pd.DataFrame):
            column = pick_column(list(frame.columns), TEXT_COLUMNS, fallback_single=True)
            if column is None:
                raise DataError(f"the DataFrame has no text column: name one of {', '.join(TEXT_COLUMNS)}")
            frame = frame[column]
        items = (_frame_item(index, value, self.options.max_bytes) for index, value in frame.items())
        rows = list(self.predict_items(items, threshold, explain=explain, ham_cutoff=ham_cutoff, jobs=jobs))
        columns = {"score": [r.score for r in rows], "label": [r.label for r in rows], "error": [r.error for r in rows]}
        if explain:
            columns["explain"] = [r.explanation for r in rows]
        return pd.DataFrame(columns, index=frame.index)


def _frame_item(index, value, max_bytes: int) -> Item:
    """A cell of a pandas Series as a message: bytes as they are, text as UTF-8, nothing as an error row."""
    where = f"row {index}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
    else:
        return Item(where, error=f"no message (a {type(value).__name__}, not bytes or text)")
    return Item(where, raw=raw[:max_bytes], truncated=len(raw) > max_bytes)


def _learned_both_classes(metadata: dict) -> bool:
    """Whether a bundle as saved may label anything spam, as its learner's ``ready`` says once learning:
    trained by ``train`` (it has ``data``), or started empty by ``learn`` and learned both classes since."""
    learned = metadata.get("learned")
    if "data" in metadata or not isinstance(learned, dict):
        return True
    return min(learned.get("ham", 0), learned.get("spam", 0)) > 0


def _label(score: float, ham_cutoff: float, spam_cutoff: float) -> str:
    """The one place a score becomes a label: predict's rows, filter mode and ``Classifier.label``.

    A score that is not finite (``forward`` gives NaN for a broken network) gets no label: NaN compares
    false with every cutoff, and would read as ``unsure`` even without an unsure band.
    """
    if not math.isfinite(score):
        raise BundleError(f"the model gave a non-finite score ({score}): its models directory cannot be used; retrain it")
    return "spam" if score >= spam_cutoff else "ham" if score < ham_cutoff else "unsure"


def _featurized_batches(items: Iterator[Item], options: ExtractOptions, features, batch_size: int, jobs: int | None):
    """(batch, indices of its readable items, their TF-IDF rows) for each batch of ``items``, in order.

    Extraction (MIME parsing, decoding, HTML stripping) and tokenising are most of the time of
    classifying, and pure Python: with ``jobs`` > 1 both run in worker processes (:func:`in_order`),
    which send back sparse rows.
    """

    def messages(batch: list[Item]) -> tuple[tuple[list[Item], list[int]], list[str | bytes]]:
        readable = [i for i, item in enumerate(batch) if item.error is None]
        return (batch, readable), [batch[i].text if batch[i].text is not None else batch[i].raw for i in readable]

    batches = (messages(batch) for batch in iter(lambda: list(islice(items, batch_size)), []))
    for (batch, readable), parts in in_order(batches, featurize_parts, options, features, jobs):
        yield batch, readable, rows_from_parts(parts)


def load(models_dir: str | Path, create: bool = False, config: str | Path | dict | None = None) -> Classifier:
    """Load a models directory for classification (verifies its manifest first).

    ``create``: where there is no bundle at ``models_dir`` (no folder, or an empty one), an empty
    learner bound to it instead, with ``config`` (a YAML path or dict of sections; None: the
    defaults); ``save`` writes its first bundle there.
    """
    if create:
        from ..model.bundle import current_bundle_id

        if current_bundle_id(Path(models_dir)) is None:
            from .learning import new_classifier

            return new_classifier(models_dir, config)
    return Classifier.load(models_dir)


# --- the rows as table, CSV or JSON Lines -------------------------------------------------------

FORMATS = ("table", "csv", "jsonl")
FIELDS = ("path", "score", "label", "error")


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

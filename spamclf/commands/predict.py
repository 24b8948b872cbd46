"""Classifying messages with a saved bundle, without TensorFlow: the Python API and ``predict`` share this."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from ..model.bundle import Bundle, load_bundle
from ..errors import SpamclfError
from ..mail.extract import ExtractOptions, extract
from ..model.features import featurize_parts, rows_from_parts
from ..model.scorer import forward
from ..mail.sources import Item, SkipLog, iter_inputs
from ..workers import in_order


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
    """A loaded models directory. ``spamclf.load(dir)`` returns one."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.features = bundle.features
        self.options = ExtractOptions.from_config(bundle.config)

    @classmethod
    def load(cls, models_dir: str | Path) -> "Classifier":
        return cls(load_bundle(models_dir))

    @property
    def threshold(self) -> float:
        return self.bundle.threshold

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Spam probabilities for already extracted texts."""
        if not len(texts):
            return np.zeros(0, dtype=np.float32)
        return self.score_rows(self.features.transform(texts))

    def score_rows(self, x: sp.csr_matrix) -> np.ndarray:
        """Spam probabilities for TF-IDF rows made with this bundle's features."""
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
        cutoff, ``unsure`` in between (``ham_cutoff <= score < spam_cutoff``)."""
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
                else:
                    score = float(by_index[i])
                    yield Prediction(item.path, score, _label(score, ham, spam), explanation=explained.get(i), truncated=item.truncated)

    def predict(
        self,
        inputs: Iterable[str | Path],
        threshold: float | None = None,
        skips: SkipLog | None = None,
        explain: int = 0,
        ham_cutoff: float | None = None,
        jobs: int | None = 1,
    ) -> Iterator[Prediction]:
        """Predictions for message files and folders (recursive), one per file, in a stable order.

        ``jobs``: worker processes for extraction (None or 0: one per CPU), used for large inputs.
        """
        items = iter_inputs(inputs, self.options.max_bytes, skips)
        return self.predict_items(items, threshold, explain=explain, ham_cutoff=ham_cutoff, jobs=jobs)


def _label(score: float, ham_cutoff: float, spam_cutoff: float) -> str:
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


def load(models_dir: str | Path) -> Classifier:
    """Load a models directory for classification (verifies its manifest first)."""
    return Classifier.load(models_dir)

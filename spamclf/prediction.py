"""Classifying messages with a saved bundle, without TensorFlow: the Python API and ``predict`` share this."""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .bundle import Bundle, load_bundle
from .errors import SpamclfError
from .extract import ExtractOptions, extract
from .scorer import forward
from .sources import Item, SkipLog, iter_inputs


@dataclass
class Prediction:
    """One output row: every input gets exactly one."""

    path: str
    score: float | None
    label: str | None
    error: str | None = None
    explanation: dict | None = None  # {"spam": [[token, weight], ...], "ham": [...]} with --explain

    def as_dict(self) -> dict:
        row = {"path": self.path, "score": self.score, "label": self.label, "error": self.error}
        if self.explanation is not None:
            row["explain"] = self.explanation
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
        return forward(self.features.transform(texts), self.bundle.layers)

    def score_messages(self, raws: Sequence[bytes]) -> np.ndarray:
        """Spam probabilities for raw messages (bytes as read from disk or a socket)."""
        return self.score_texts([extract(raw, self.options) for raw in raws])

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
        ham, spam = self.cutoffs(threshold, ham_cutoff)
        return "spam" if score >= spam else "ham" if score < ham else "unsure"

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
        ``jobs``: worker processes extracting text (None or 0: one per CPU); they start only
        once the input fills more than one batch, so a single message never pays for them.
        """
        self.cutoffs(threshold, ham_cutoff)  # a bad band fails before the first row
        for batch, readable, texts in _extracted_batches(iter(items), self.options, batch_size, jobs):
            x = self.features.transform(texts)
            scores = forward(x, self.bundle.layers) if len(texts) else []
            by_index = dict(zip(readable, scores))
            explained = {}
            if explain:
                from .explain import explain_rows

                explained = dict(zip(readable, explain_rows(x, self.bundle.layers, self.features.vocabulary_, explain)))
            for i, item in enumerate(batch):
                if item.error is not None:
                    yield Prediction(item.path, None, None, item.error)
                else:
                    score = float(by_index[i])
                    yield Prediction(item.path, score, self.label(score, threshold, ham_cutoff), explanation=explained.get(i))

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


def _extract_texts(raws: list[bytes], options: ExtractOptions) -> list[str]:
    """Runs in a worker process: only bytes go in and text comes out."""
    return [extract(raw, options) for raw in raws]


def _extracted_batches(items: Iterator[Item], options: ExtractOptions, batch_size: int, jobs: int | None):
    """(batch, indices of its readable items, their texts) for each batch of ``items``, in order.

    Extraction (MIME parsing, decoding, HTML stripping) is most of the time of classifying, and
    pure Python: with ``jobs`` > 1 it runs in worker processes, at most ``2 * jobs`` batches in
    flight, so memory stays bounded however many inputs there are.
    """

    def split(batch: list[Item]) -> tuple[list[int], list[str | None], list[bytes]]:
        readable = [i for i, item in enumerate(batch) if item.error is None]
        return readable, [batch[i].text for i in readable], [batch[i].raw for i in readable if batch[i].text is None]

    def merge(known: list[str | None], extracted: list[str]) -> list[str]:
        fresh = iter(extracted)
        return [t if t is not None else next(fresh) for t in known]

    jobs = (os.cpu_count() or 1) if not jobs else jobs
    first = list(islice(items, batch_size))
    second = list(islice(items, batch_size)) if first else []
    if jobs <= 1 or not second:
        for batch in (first, second):
            if batch:
                readable, known, raws = split(batch)
                yield batch, readable, merge(known, _extract_texts(raws, options))
        for batch in iter(lambda: list(islice(items, batch_size)), []):
            readable, known, raws = split(batch)
            yield batch, readable, merge(known, _extract_texts(raws, options))
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from itertools import chain

    batches = chain((first, second), iter(lambda: list(islice(items, batch_size)), []))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending: deque = deque()
        for batch in batches:
            readable, known, raws = split(batch)
            pending.append((batch, readable, known, pool.submit(_extract_texts, raws, options)))
            while len(pending) > 2 * jobs:
                done, readable_done, known_done, future = pending.popleft()
                yield done, readable_done, merge(known_done, future.result())
        while pending:
            done, readable_done, known_done, future = pending.popleft()
            yield done, readable_done, merge(known_done, future.result())


def load(models_dir: str | Path) -> Classifier:
    """Load a models directory for classification (verifies its manifest first)."""
    return Classifier.load(models_dir)

"""Classifying messages with a saved bundle, without TensorFlow: the Python API and ``predict`` share this."""

from __future__ import annotations

import gc
import math
import os
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from .bundle import Bundle, load_bundle
from .errors import BundleError, SpamclfError
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
                from .explain import explain_rows

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
    ) -> Iterator[Prediction]:
        """Predictions for message files and folders (recursive), one per file, in a stable order.

        ``jobs``: worker processes for extraction (None or 0: one per CPU), used for large inputs.
        """
        items = iter_inputs(inputs, self.options.max_bytes, skips)
        return self.predict_items(items, threshold, explain=explain, ham_cutoff=ham_cutoff, jobs=jobs)


def _label(score: float, ham_cutoff: float, spam_cutoff: float) -> str:
    """The one place a score becomes a label: predict's rows, filter mode and ``Classifier.label``.

    A score that is not finite (``forward`` gives NaN for a broken network) gets no label: NaN compares
    false with every cutoff, and would read as ``unsure`` even without an unsure band.
    """
    if not math.isfinite(score):
        raise BundleError(f"the model gave a non-finite score ({score}): its models directory cannot be used; retrain it")
    return "spam" if score >= spam_cutoff else "ham" if score < ham_cutoff else "unsure"


_worker: dict = {}  # in each worker process: the extraction options and the fitted features


def _init_worker(options: ExtractOptions, features, nice: int = 0) -> None:
    _worker.update(options=options, features=features)
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:  # not allowed here: the worker keeps its priority
            pass
    # What a worker holds from the start lives as long as it does: frozen, the collector's full passes,
    # which extraction's many small objects set off, stop walking it (measured: tasks 5% faster).
    gc.freeze()


def _featurize(messages: list[str | bytes], options: ExtractOptions, features) -> sp.csr_matrix:
    """TF-IDF rows for raw messages (bytes, extracted here) and already extracted texts (str)."""
    return features.transform(extract_texts(messages, options, tidy=False))  # the texts are only tokenised


def _featurize_parts(messages: list[str | bytes], options: ExtractOptions, features) -> tuple:
    # A worker sends back the arrays of the sparse rows, not the matrix object.
    x = _featurize(messages, options, features)
    return x.data, x.indices, x.indptr, x.shape


def rows_from_parts(parts: tuple) -> sp.csr_matrix:
    """The CSR rows that ``_featurize_parts`` sent back as arrays."""
    data, indices, indptr, shape = parts
    return sp.csr_matrix((data, indices, indptr), shape=shape)


def extract_texts(messages: list[str | bytes], options: ExtractOptions, features=None, tidy: bool = True) -> list[str]:
    """The extracted text of raw messages (bytes); already extracted texts (str) pass as they are.

    ``tidy=False``: whitespace left as extraction found it, for texts that are only tokenised (see ``extract``)."""
    return [m if isinstance(m, str) else extract(m, options, tidy=tidy) for m in messages]


def _run_in_worker(task, messages: list[str | bytes]):
    return task(messages, _worker["options"], _worker["features"])


def in_order(
    batches: Iterator[tuple], task, options: ExtractOptions, features=None, jobs: int | None = 1, started=None,
    nice: int = 0,
) -> Iterator[tuple]:
    """``(tag, task(messages, options, features))`` for each ``(tag, messages)`` of ``batches``, in order.

    ``task`` is a module-level function (workers receive it by name). With ``jobs`` > 1 (None or 0:
    one per CPU) it runs in worker processes, which start only once there is a second batch, so a
    small input never pays for them; at most ``2 * jobs`` batches are in flight, so memory stays
    bounded however long the input is. ``started`` (optional) is called once the workers exist, or
    once it is clear there will be none: training starts TensorFlow's background import there, so
    that the workers are forked from a process with one thread. ``nice`` (Unix): added to the
    workers' niceness, so that this process's own work meanwhile gets the CPU first.
    """
    first = next(batches, None)
    second = next(batches, None)
    ahead = [b for b in (first, second) if b is not None]
    jobs = (os.cpu_count() or 1) if not jobs else jobs
    if jobs <= 1 or second is None:
        if started is not None:
            started()
        for tag, messages in chain(ahead, batches):
            yield tag, task(messages, options, features)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    import multiprocessing
    import threading

    # Forking a process in which another thread runs (training imports TensorFlow in one) can leave
    # the child waiting forever on a lock that thread held; then workers start from a clean server.
    context = multiprocessing.get_context("forkserver" if threading.active_count() > 1 else None)
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(options, features, nice)) as pool:
        pending: deque = deque()
        for tag, messages in chain(ahead, batches):
            pending.append((tag, pool.submit(_run_in_worker, task, messages)))
            if started is not None:  # the first submit has started every worker
                started()
                started = None
            while len(pending) > 2 * jobs:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


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
    for (batch, readable), parts in in_order(batches, _featurize_parts, options, features, jobs):
        yield batch, readable, rows_from_parts(parts)


def load(models_dir: str | Path) -> Classifier:
    """Load a models directory for classification (verifies its manifest first)."""
    return Classifier.load(models_dir)

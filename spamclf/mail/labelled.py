"""Labelled data in memory: read every source, extract each message once, drop exact duplicates.

Only the extracted text is kept (bounded per message); raw messages stream through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import islice
from typing import Iterable, Iterator

import numpy as np

from ..errors import DataError
from .extract import ExtractOptions, extract_texts
from ..progress import counting
from .sources import LABELS, Item, LabelledSource, SkipLog, iter_labelled


def message_digest(raw: bytes) -> str:
    """SHA-256 of a message without its mbox envelope line, so re-delivered copies match."""
    if raw.startswith(b"From "):
        newline = raw.find(b"\n")
        raw = raw[newline + 1 :] if newline >= 0 else b""
    return hashlib.sha256(raw).hexdigest()


@dataclass
class LabelledData:
    paths: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    skips: SkipLog = field(default_factory=SkipLog)
    duplicates: int = 0
    truncated: int = 0
    term_counts: list = field(default_factory=list)  # CountedTerms of the texts in order, when counted while loading
    rows: list = field(default_factory=list)  # TF-IDF rows (CSR) of the messages in order, batch by batch, when made while loading

    def row_matrix(self):
        """The TF-IDF rows made while loading (``load_labelled(rows=True)``), one per message."""
        import scipy.sparse as sp

        if not self.rows:
            raise ValueError("no TF-IDF rows were made while loading (load_labelled(..., rows=True))")
        return sp.vstack(self.rows, format="csr")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)

    def subset(self, index: Iterable[int]) -> "LabelledData":
        index = list(index)
        return LabelledData(
            paths=[self.paths[i] for i in index],
            texts=[self.texts[i] for i in index],
            labels=[self.labels[i] for i in index],
            digests=[self.digests[i] for i in index],
        )  # the term counts are of the whole set: a subset tokenises its texts again

    def counts(self) -> dict[str, int]:
        y = self.y
        return {name: int(np.sum(y == i)) for i, name in enumerate(LABELS)}

    def fingerprint(self) -> str:
        """SHA-256 over the sorted (digest, label) pairs: the same messages give the same fingerprint."""
        h = hashlib.sha256()
        for digest, label in sorted(zip(self.digests, self.labels)):
            h.update(f"{digest}:{label}\n".encode())
        return h.hexdigest()

    def stats(self) -> dict:
        return {
            "messages": len(self),
            "per_label": self.counts(),
            "duplicates_dropped": self.duplicates,
            "truncated_messages": self.truncated,
            "skipped": len(self.skips.skipped),
            "skipped_by_reason": self.skips.counts(),
            "skipped_messages": self.skips.skipped,
        }


def load_labelled(
    sources: Iterable[str | LabelledSource],
    options: ExtractOptions,
    progress: bool = True,
    dedupe: bool = True,
    jobs: int | None = 0,
    batch_size: int = 256,
    features=None,
    started=None,
    keep_texts: bool = True,
    rows: bool = False,
    worker_nice: int = 0,
) -> LabelledData:
    """Read, extract and label every message of ``sources``; unreadable ones are logged, duplicates dropped.

    Duplicates are exact: the same bytes after the mbox envelope line. The first copy is kept;
    a copy with the other label is also logged as a skip, since it cannot be both.
    ``jobs``: worker processes extracting text (0 or None: one per CPU; 1: none), used once there
    is more than one batch of ``batch_size`` messages. The result is the same whatever ``jobs``:
    reading, the skip log and dedupe stay in this process, in input order; only extraction moves.
    ``features``: unfitted TfidfFeatures whose term counts the workers also make, batch by batch
    (``term_counts``), for training to fit on without tokenising every text again.
    ``started``: called once the extraction workers have started (see :func:`spamclf.workers.in_order`);
    ``worker_nice``: added to the workers' niceness (Unix), to give what ``started`` began the CPU first.
    ``keep_texts=False`` (with ``features``): the texts stay in the workers, counted only, and
    ``texts`` holds an empty string per message -- training needs the counts alone.
    ``rows=True`` (with fitted ``features``): the workers turn each batch into TF-IDF rows
    (``data.rows``, see ``row_matrix``) instead of counting terms, and ``texts`` holds empty
    strings: evaluation needs the rows alone, and tokenising moves to the workers with extraction.
    """
    if rows and features is None:
        raise ValueError("rows=True needs the fitted features that make the rows")
    sources = list(sources)
    if not sources:
        raise DataError("no data given: pass --data with a labelled folder or a preprocessed file, or --spam and --ham")
    from ..model.features import featurize_parts, rows_from_parts
    from ..workers import in_order

    data = LabelledData()
    items = counting(iter_labelled(sources, options.max_bytes, data.skips, options.__dict__), "reading", progress)
    kept = _kept_items(items, data, dedupe)
    batches = (
        (batch, [item.text if item.text is not None else item.raw for item, _ in batch])
        for batch in iter(lambda: list(islice(kept, batch_size)), [])
    )
    if features is None:
        task = extract_texts
    elif rows:
        task = featurize_parts  # predict's task: each batch's TF-IDF rows, as arrays
    else:
        task = extract_and_count if keep_texts else count_only
    for batch, texts in in_order(batches, task, options, features, jobs=jobs, started=started, nice=worker_nice):
        if rows:
            data.rows.append(rows_from_parts(texts))
            texts = [""] * len(batch)
        elif features is not None:
            texts, counted = texts
            data.term_counts.append(counted)
            texts = [""] * len(batch) if texts is None else texts
        for (item, digest), text in zip(batch, texts):
            data.paths.append(item.path)
            data.texts.append(text)
            data.labels.append(int(item.label))
            data.digests.append(digest)
    return data


def extract_and_count(messages: list, options: ExtractOptions, features) -> tuple:
    """The extracted texts of a batch and their term counts (run in the extraction workers)."""
    texts = extract_texts(messages, options)
    return texts, features.count_terms(texts)


def count_only(messages: list, options: ExtractOptions, features) -> tuple:
    """``(None, term counts)`` of a batch: ``extract_and_count`` without sending the texts back, nor
    tidying their whitespace, which no token holds (run in the extraction workers)."""
    return None, features.count_terms(extract_texts(messages, options, tidy=False))


def _kept_items(items: Iterable[Item], data: LabelledData, dedupe: bool) -> Iterator[tuple[Item, str]]:
    """``(item, digest)`` for each message to keep; unreadable ones and duplicates logged in ``data`` as they are read.

    The digest needs no extraction, so dedupe and the skip log happen in reading order even while
    extraction runs ahead in worker processes.
    """
    seen: dict[str, tuple[str, int | None]] = {}  # digest -> path and label of the first copy
    for item in items:
        if item.error:
            data.skips.add(item.path, f"unreadable: {item.error}")
            continue
        data.truncated += int(item.truncated)
        if item.text is not None:
            digest = item.sha256 or hashlib.sha256(item.text.encode()).hexdigest()
        else:
            digest = message_digest(item.raw)
        if dedupe and digest in seen:
            data.duplicates += 1
            first_path, first_label = seen[digest]
            other = " with the other label" if first_label != item.label else ""
            data.skips.add(item.path, f"exact duplicate{other} (the first copy is kept)", duplicate_of=first_path)
            continue
        seen[digest] = (item.path, item.label)
        yield item, digest


def require_messages(data: LabelledData, what: str) -> None:
    """Refuse data with no readable message in it."""
    if len(data) == 0:
        raise DataError(f"no messages to use for {what}: the data sources hold no readable messages")


def require_trainable(data: LabelledData, what: str = "training") -> None:
    """Refuse data a classifier cannot learn from: empty, or a single class."""
    require_messages(data, what)
    counts = data.counts()
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        raise DataError(f"{what} needs both spam and ham messages; found no {missing[0]} ({counts})")


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with each class split in the same proportion, reproducibly for ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_size))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        else:
            n_test = 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))

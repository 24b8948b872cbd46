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
from ..workers import in_order
from .extract import ExtractOptions, extract_texts
from .header_block import message_key
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
    """Labelled messages in reading order: path, label and digest of each, and what loading made of
    them (``texts``, or training's ``term_counts``, or evaluation's ``rows``)."""

    paths: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the extracted texts, when kept (``load_labelled``)
    labels: list[int] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    skips: SkipLog = field(default_factory=SkipLog)
    duplicates: int = 0
    truncated: int = 0
    term_counts: list = field(default_factory=list)  # CountedTerms batch by batch (``count_labelled``)
    rows: list = field(default_factory=list)  # TF-IDF rows (CSR) batch by batch (evaluation)
    keys: list[str] = field(default_factory=list)  # each message's ``learning_key``, for the bundle's store (``count_labelled``)

    def row_matrix(self):
        """The TF-IDF rows made while loading, one per message."""
        import scipy.sparse as sp

        if not self.rows:
            raise ValueError("no TF-IDF rows were made while loading")
        return sp.vstack(self.rows, format="csr")

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, batch: list[tuple[Item, str]]) -> None:
        """Append each kept ``(item, digest)`` of ``batch``: its path, label and digest."""
        for item, digest in batch:
            self.add_message(item.path, item.label, digest)

    def add_message(self, path: str, label: int, digest: str) -> None:
        self.paths.append(path)
        self.labels.append(int(label))
        self.digests.append(digest)

    def admit(self, path: str, label, digest: str | None, truncated: bool, error: str | None, seen: dict | None) -> bool:
        """Whether a message read is kept: an unreadable one (``error``) is logged as skipped, and with
        ``seen`` (digest -> path and label of the first copy; None: no dedupe) so is an exact duplicate.
        Local and Ray reading both decide here."""
        if error:
            self.skips.add(path, f"unreadable: {error}")
            return False
        self.truncated += int(truncated)
        if seen is not None:
            if digest in seen:
                self.duplicates += 1
                first_path, first_label = seen[digest]
                other = " with the other label" if first_label != label else ""
                self.skips.add(path, f"exact duplicate{other} (the first copy is kept)", duplicate_of=first_path)
                return False
            seen[digest] = (path, label)
        return True

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
    jobs: int | None = 0,
    batch_size: int = 256,
    started=None,
) -> LabelledData:
    """Read, extract and label every message of ``sources``, exact duplicates dropped; ``texts`` holds
    each kept message's extracted text (``preprocess``, the accuracy benchmark).

    ``jobs``: worker processes extracting text (0 or None: one per CPU; 1: none), used once there is
    more than one batch of ``batch_size`` messages. The result is the same whatever ``jobs``: reading,
    the skip log and dedupe stay in this process, in input order; only extraction moves. ``started``:
    called once the workers have started (see :func:`spamclf.workers.in_order`).
    """
    data = LabelledData()
    batches = labelled_batches(read_labelled(sources, options, data, progress), batch_size)
    for batch, texts in in_order(batches, extract_texts, options, jobs=jobs, started=started):
        data.add(batch)
        data.texts.extend(texts)
    return data


def count_labelled(
    sources: Iterable[str | LabelledSource],
    options: ExtractOptions,
    features,
    progress: bool = True,
    jobs: int | None = 0,
    batch_size: int = 256,
    started=None,
    worker_nice: int = 0,
) -> LabelledData:
    """``load_labelled`` for training: the workers extract each batch, count its terms with the
    unfitted ``features`` (``term_counts``, one per batch) and key each message (``keys``, for the
    bundle's store), and the texts stay in the workers.

    ``worker_nice``: added to the workers' niceness (Unix), to give what ``started`` began the CPU first.
    """
    data = LabelledData()
    batches = labelled_batches(read_labelled(sources, options, data, progress), batch_size)
    for batch, (counted, keys) in in_order(batches, count_and_key, options, features, jobs=jobs, started=started, nice=worker_nice):
        data.add(batch)
        data.term_counts.append(counted)
        data.keys.extend(keys)
    return data


def read_labelled(
    sources: Iterable[str | LabelledSource], options: ExtractOptions, data: LabelledData, progress: bool = True, dedupe: bool = True
) -> Iterator[tuple[Item, str]]:
    """``(item, digest)`` of each message of ``sources`` to keep, in reading order; unreadable ones, and
    with ``dedupe`` exact duplicates, are logged in ``data`` as they are read.

    Duplicates are exact: the same bytes after the mbox envelope line. The first copy is kept; a copy
    with the other label is also logged as a skip, since it cannot be both. The digest needs no
    extraction, so this runs in reading order even while extraction runs ahead in worker processes.
    """
    sources = list(sources)
    if not sources:
        raise DataError("no data given: pass --data with a labelled folder or a preprocessed file, or --spam and --ham")
    items = counting(iter_labelled(sources, options.max_bytes, data.skips, options.__dict__), "reading", progress)
    seen: dict[str, tuple[str, int | None]] = {}  # digest -> path and label of the first copy
    for item in items:
        digest = None if item.error else item_digest(item)
        if data.admit(item.path, item.label, digest, item.truncated, item.error, seen if dedupe else None):
            yield item, digest


def labelled_batches(kept: Iterator[tuple[Item, str]], batch_size: int) -> Iterator[tuple[list, list]]:
    """``(batch, messages)`` for the worker pool: each batch of ``(item, digest)`` with its messages
    (an already extracted text, or the raw bytes)."""
    for batch in iter(lambda: list(islice(kept, batch_size)), []):
        yield batch, [item.message for item, _ in batch]


def item_digest(item: Item) -> str:
    """The identity of a message for dedupe: ``message_digest`` of its bytes, or a preprocessed row's own."""
    if item.text is not None:
        return item.sha256 or hashlib.sha256(item.text.encode()).hexdigest()
    return message_digest(item.raw)


def learning_key(message: bytes | str) -> str:
    """A message's identity for learning (the store's key): ``message_key`` of its bytes, or for an
    already extracted text (a preprocessed file's row) the SHA-256 of that text."""
    if isinstance(message, bytes):
        return message_key(message)
    return "text " + hashlib.sha256(message.encode("utf-8", "surrogateescape")).hexdigest()


def item_key(item: Item) -> str:
    """``learning_key`` of what was read."""
    return learning_key(item.message)


def count_and_key(messages: list, options: ExtractOptions, features):
    """The term counts of a batch (its whitespace left untidied, which no token holds) and each
    message's ``learning_key``: run in the workers, off the process that imports TensorFlow meanwhile."""
    return features.count_terms(extract_texts(messages, options, tidy=False)), [learning_key(m) for m in messages]


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

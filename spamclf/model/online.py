"""Learning message by message: the store of learned examples, the growing vocabulary, the refit policy.

A models directory that learns keeps, besides its network, a *store*: per learned message its key
(``header_block.message_key``), its label and its term counts over the store's own term list --
never the mail itself. The store is what ``forget`` removes from, what a refit and ``relearn``
fit on, and what each online step replays (docs/learning.md has the design and its measurements).

- **Vocabulary.** The network's first kernel has ``features.max_features`` rows (the capacity).
  The vocabulary fills them in order; a term of a learned message becomes a feature once
  ``features.min_df`` stored messages hold it (fewer while the store is smaller than that), with
  the IDF of its document frequency in the store, in the next free row.
- **Online steps.** Each learned message is worth ``learn.steps`` Keras gradient steps, on a batch
  of the new messages (up to 32 at a time) and ``learn.replay`` stored ones drawn half from each class
  (``online_fitting``: a sparse gradient for the first kernel, a lazy Adam on its touched rows).
  A message the network already scores within ``learn.margin`` of its label takes no step (it is
  stored, and refits fit it): most of a stream's messages, once the filter knows its mail.
- **Eviction.** With every row taken, a new term takes the row of the feature that the fewest
  stored messages hold, once more messages hold the new one; that row starts again from zero.
- **Refits.** When the store has grown by ``learn.refit_growth`` since the last refit (the first
  at ``learn.first_refit`` messages), the vocabulary
  is selected again from the store (leaving ``learn.headroom`` of the rows free), the IDF
  recomputed, and the network fitted from scratch with ``network.fit``, as ``train`` does.
- **An empty filter labels nothing spam**: until it has learned some spam, every score is 0. Until it
  has learned some ham, each step also trains a message of no known term as ham: only what the
  learned spam holds makes a message spam, as with bogofilter's unknown-token default.

The TF-IDF rows of a stored message are built from its stored counts exactly as ``transform``
builds them from its text, so replayed, refitted and scored rows agree. TensorFlow is imported
only when the network changes (``online_fitting``): scoring stays NumPy.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import BundleError, ConfigError, DataError, OutputError, UsageError
from .features import TfidfFeatures, df_bounds, select_vocabulary

LOCK_SUFFIX = ".lock"

# --- labels -------------------------------------------------------------------------------------

_LABEL_WORDS = {"spam": 1, "ham": 0}


def parse_label(label) -> int:
    """1 for spam, 0 for ham: ``"spam"``/``"ham"`` (any case), 1/0, True/False; UsageError otherwise."""
    if isinstance(label, str) and label.strip().lower() in _LABEL_WORDS:
        return _LABEL_WORDS[label.strip().lower()]
    if isinstance(label, (bool, np.bool_)) or (isinstance(label, (int, np.integer)) and label in (0, 1)):
        return int(label)
    raise UsageError(f"label {label!r} is not spam or ham (nor 1/0, True/False)")


def parse_labels(labels, n: int) -> list[int]:
    """One label per message: ``labels`` is one label for all ``n``, or a sequence of ``n``."""
    if isinstance(labels, (str, bytes, bool, int, np.integer, np.bool_)):
        return [parse_label(labels)] * n
    labels = list(labels)
    if len(labels) != n:
        raise UsageError(f"{len(labels)} labels for {n} messages: give one label per message, or one for all")
    return [parse_label(label) for label in labels]


# --- the store ----------------------------------------------------------------------------------


class Store:
    """The learned examples: per message its key, label and term counts (over ``terms``), in learning order."""

    def __init__(self) -> None:
        self.terms: list[str] = []
        self.term_ids: dict[str, int] = {}
        self.df = np.zeros(1024, np.int64)  # documents holding each term (grown by doubling)
        self.keys: list[str] = []
        self.labels: list[int] = []
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []  # (term ids, ascending; counts) per example
        self.where: dict[str, int] = {}  # key -> position
        self.state: dict = {}  # the refit policy's bookkeeping, saved with the store

    def __len__(self) -> int:
        return len(self.keys)

    def class_counts(self) -> tuple[int, int]:
        spam = sum(self.labels)
        return len(self.labels) - spam, spam

    # counting

    def count(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, counts) of one message's tokens; terms not seen yet join the store's term list."""
        ids = self.term_ids
        before = len(self.terms)
        for token in tokens:
            if token not in ids:
                ids[token] = len(self.terms)
                self.terms.append(token)
        if len(self.terms) > before and len(self.terms) > len(self.df):
            self.df = np.concatenate([self.df, np.zeros(max(len(self.terms), 2 * len(self.df)) - len(self.df), np.int64)])
        if not tokens:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        term, counts = np.unique(np.fromiter(map(ids.__getitem__, tokens), np.int32, len(tokens)), return_counts=True)
        return term.astype(np.int32), counts.astype(np.float32)

    # changing

    def relabel(self, key: str, label: int) -> str | None:
        """For a stored example, ``unchanged`` where it has ``label`` already, else ``relabelled`` (it has
        it now); None where ``key`` is not stored."""
        at = self.where.get(key)
        if at is None:
            return None
        if self.labels[at] == label:
            return "unchanged"
        self.labels[at] = label
        return "relabelled"

    def add(self, key: str, label: int, ids: np.ndarray, counts: np.ndarray) -> None:
        """Store a new example (``key`` not stored yet)."""
        self.where[key] = len(self.keys)
        self.keys.append(key)
        self.labels.append(int(label))
        self.rows.append((ids, counts))
        self.df[ids] += 1

    def remove(self, key: str) -> bool:
        at = self.where.pop(key, None)
        if at is None:
            return False
        ids, _ = self.rows[at]
        self.df[ids] -= 1
        del self.keys[at], self.labels[at], self.rows[at]
        for later in self.keys[at:]:
            self.where[later] -= 1
        return True

    def clear(self) -> None:
        self.__init__()

    # reading

    def matrix(self, rows: Sequence[int] | None = None) -> sp.csr_matrix:
        """Term counts of ``rows`` (default: all) as CSR over the store's terms, columns ascending."""
        picked = self.rows if rows is None else [self.rows[i] for i in rows]
        indptr = np.zeros(len(picked) + 1, np.int64)
        np.cumsum([len(ids) for ids, _ in picked], out=indptr[1:])
        indices = np.concatenate([ids for ids, _ in picked]) if picked else np.zeros(0, np.int32)
        data = np.concatenate([c for _, c in picked]) if picked else np.zeros(0, np.float32)
        out = sp.csr_matrix((data, indices, indptr), shape=(len(picked), max(len(self.terms), 1)))
        out.has_sorted_indices = True
        return out

    def label_array(self) -> np.ndarray:
        return np.asarray(self.labels, np.int64)

    # saving and loading

    def arrays(self) -> dict:
        """What ``bundle.write_store`` writes."""
        x = self.matrix()
        return {
            "labels": np.asarray(self.labels, np.int8), "indptr": x.indptr, "indices": x.indices, "counts": x.data,
            "terms": self.terms, "keys": self.keys, "state": self.state,
        }

    @classmethod
    def from_parts(cls, terms: list[str], keys: list[str], labels, x: sp.csr_matrix, state: dict | None = None) -> "Store":
        store = cls()
        store.terms = list(terms)
        store.term_ids = {t: i for i, t in enumerate(store.terms)}
        store.keys = list(keys)
        store.labels = [int(v) for v in labels]
        store.where = {k: i for i, k in enumerate(store.keys)}
        x = sp.csr_matrix(x)
        x.sort_indices()
        store.rows = [(x.indices[a:b].astype(np.int32), x.data[a:b].astype(np.float32)) for a, b in zip(x.indptr[:-1], x.indptr[1:])]
        store.df = np.zeros(max(len(store.terms), 1024), np.int64)
        store.df[: len(store.terms)] = np.bincount(x.indices, minlength=len(store.terms))[: len(store.terms)]
        store.state = dict(state or {})
        return store

    @staticmethod
    def training_arrays(terms: Sequence[str], counts: sp.csr_matrix, keys: Sequence[str], labels, state: dict) -> dict:
        """``arrays()`` of the store of training's examples, straight from their term counts (a row per
        message, over ``terms``): one example per key, the first where two messages share one."""
        first = sorted({key: i for i, key in reversed(list(enumerate(keys)))}.values())
        x = sp.csr_matrix(counts[first], dtype=np.float32)
        x.sort_indices()
        return {
            "labels": np.asarray(labels, np.int8)[first], "indptr": x.indptr.astype(np.int64), "indices": x.indices.astype(np.int32),
            "counts": x.data, "terms": list(terms), "keys": [keys[i] for i in first], "state": dict(state),
        }

    @classmethod
    def from_bundle(cls, store_bytes: dict[str, bytes], folder) -> "Store":
        """The store a bundle holds (format 1: an empty one), its contents checked: BundleError names a problem."""
        from .bundle import STORE_FILE, _TERMS, read_store

        if not store_bytes:
            return cls()
        doc = read_store(store_bytes, folder)
        terms, keys = doc["terms"], doc["keys"]
        labels, indptr, indices, counts = (doc[k] for k in ("labels", "indptr", "indices", "counts"))
        joined = "\n".join(terms) + "\n" if all(isinstance(t, str) for t in terms) else ""
        problems = [
            (not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys), "its keys are not distinct strings"),
            (bool(terms) and (joined.count("\n") != len(terms) or not _TERMS.fullmatch(joined) or len(set(terms)) != len(terms)),
             "a term is not a word or n-gram, or is there twice"),
            (not np.isin(labels, (0, 1)).all(), "a label is not 0 or 1"),
            (indptr[0] != 0 if len(indptr) else True, "its rows do not start at 0"),
            (len(indptr) and (np.any(np.diff(indptr) < 0) or indptr[-1] != len(indices)), "its rows do not add up"),
            (len(indices) and (indices.min() < 0 or indices.max() >= len(terms)), "a term number is out of range"),
            (not (np.isfinite(counts).all() and (counts > 0).all()), "a count is not a positive number"),
        ]
        for bad, why in problems:
            if bad:
                raise BundleError(f"{folder}/{STORE_FILE}: {why}")
        x = sp.csr_matrix((counts.astype(np.float32), indices.astype(np.int32), indptr.astype(np.int64)), shape=(len(labels), max(len(terms), 1)))
        return cls.from_parts(terms, keys, labels, x, doc["state"])


# --- the lock ------------------------------------------------------------------------------------


def lock_path(models_dir: str | Path) -> Path:
    """The lock file of a models directory: a hidden sibling (``.NAME.lock``), which outlives the
    folder being swapped for a new bundle."""
    models_dir = Path(os.path.abspath(models_dir))
    return models_dir.parent / f".{models_dir.name}{LOCK_SUFFIX}"


@contextmanager
def models_lock(models_dir: str | Path, timeout: float | None = None):
    """Hold the exclusive lock of ``models_dir`` (``fcntl.flock`` on ``lock_path``) for the block.

    Every writer of a models directory that reads, changes and saves it (``spamclf learn``, the
    daemon) holds it from load to save, so no update is lost. ``timeout``: seconds to wait
    (None: wait as long as it takes; 0: do not wait); BundleError when it runs out. Readers never take it.
    """
    path = lock_path(models_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BundleError(f"{models_dir} is being changed by another process (lock {path} held); try again") from None
                time.sleep(0.02)
        yield path
    finally:
        os.close(fd)  # closing releases the lock


# --- the learner ---------------------------------------------------------------------------------


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int, rows: int | None = None) -> np.ndarray:
    """Keras' Dense initialiser (Glorot uniform) for ``rows`` rows of a ``fan_in`` x ``fan_out`` kernel."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in if rows is None else rows, fan_out)).astype(np.float32)


class Learner:
    """The learning state of a :class:`~spamclf.commands.predict.Classifier`: the store, the vocabulary
    growing into the first kernel's free rows, and the Keras trainer (made on the first change).

    ``features`` and ``layers`` are what the classifier scores with: ``layers[0]``'s kernel is a
    view of the first ``n_features`` rows of the full-capacity ``kernel``.
    """

    def __init__(self, config: dict, features: TfidfFeatures, layers: list | None, store: Store, threshold: float) -> None:
        self.config = config
        self.policy = config["learn"]
        capacity = config["features"]["max_features"]
        if capacity is None:
            raise ConfigError("learning needs features.max_features (the vocabulary's capacity); it is null in this config")
        if config["features"]["ngram_max"] != 1:
            raise ConfigError("learning needs features.ngram_max 1")
        self.capacity = capacity
        self.features = features
        self.store = store
        self.threshold = threshold
        rng = np.random.default_rng(config["train"]["seed"])
        units = config["model"]["units"]
        n = features.n_features
        self.kernel = np.empty((capacity, units[0]), np.float32)
        self.kernel[n:] = _glorot(rng, capacity, units[0], capacity - n)  # free rows: fresh weights, as Keras initialises them
        new_network = layers is None
        if new_network:  # (with no vocabulary yet) the other layers initialised as Keras would too
            widths = [*units, 1]
            self.bias0 = np.zeros(units[0], np.float32)
            self.rest = [(_glorot(rng, a, b), np.zeros(b, np.float32)) for a, b in zip(widths, widths[1:])]
        else:
            self.kernel[:n] = layers[0][0][:n]
            self.bias0 = np.array(layers[0][1], np.float32)
            self.rest = [(np.array(k, np.float32), np.array(b, np.float32)) for k, b in layers[1:]]
        self.trainer = None  # online_fitting.OnlineTrainer, made when the network first changes
        # whether the network as scored (its vocabulary's rows, its weights) changed since it was
        # loaded or saved: only then does ``save`` make a Keras model of it (and import TensorFlow)
        self.network_changed = new_network
        self._map_terms()
        self.rng = np.random.default_rng(config["train"]["seed"] + len(store))

    # what scoring reads

    @property
    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.kernel[: self.features.n_features], self.bias0), *self.rest]

    @property
    def ready(self) -> bool:
        """Whether the network may label anything spam: it learned some spam (or came trained). Until
        it learned ham too, each step also trains a message with no known term as ham (``_steps``)."""
        return bool(self.store.state.get("trained")) or self.store.class_counts()[1] > 0

    # vocabulary

    def _map_terms(self) -> None:
        """``col_of_term`` (store term -> vocabulary column) for every store term (-1: not a feature), and
        ``term_of_col`` for every column (-1: a term the store does not hold, as in a format 1 bundle's vocabulary)."""
        index = self.features._index
        self.col_of_term = np.fromiter((index.get(t, -1) for t in self.store.terms), np.int64, len(self.store.terms))
        ids = self.store.term_ids
        self.term_of_col = np.fromiter((ids.get(t, -1) for t in self.features.vocabulary_), np.int64, self.features.n_features)

    def _extend_map(self) -> None:
        missing = len(self.store.terms) - len(self.col_of_term)
        if missing > 0:
            index = self.features._index
            new = np.fromiter((index.get(t, -1) for t in self.store.terms[len(self.col_of_term) :]), np.int64, missing)
            self.col_of_term = np.concatenate([self.col_of_term, new])

    def _grow(self, ids: np.ndarray) -> None:
        """Make the store terms ``ids`` (distinct) features where they qualify: in free rows, else in evicted ones."""
        self._extend_map()
        n_docs = len(self.store)
        min_df, max_df = df_bounds(self.config["features"], n_docs)
        df = self.store.df[ids]
        new = ids[(self.col_of_term[ids] < 0) & (df >= min(min_df, max(n_docs, 1))) & (df <= max_df)]
        if not len(new):
            return
        new = new[np.argsort(-self.store.df[new], kind="stable")]  # the most frequent first
        free = self.capacity - self.features.n_features
        added, rest = new[:free], new[free:]
        if len(added):
            start = self.features.n_features
            self.features.grow([self.store.terms[i] for i in added], self._idf(added))
            self.col_of_term[added] = np.arange(start, start + len(added))
            self.term_of_col = np.concatenate([self.term_of_col, added])
            self.network_changed = True
        if len(rest):
            self._evict(rest)

    def _idf(self, ids: np.ndarray) -> np.ndarray:
        """The IDF of store terms from their document frequency in the store (``select_vocabulary``'s formula)."""
        return (np.log(np.float32(len(self.store) + 1) / (self.store.df[ids].astype(np.float32) + 1.0)) + 1.0).astype(np.float32)

    def _evict(self, new: np.ndarray) -> None:
        """With every row taken, the terms ``new`` (most frequent first) take the rows of the features
        that fewest stored messages hold, where they are in more: those rows start again from zero
        weights (and Adam state). Terms a format 1 bundle was trained with, which the store lacks, stay."""
        held = np.where(self.term_of_col >= 0, self.store.df[np.maximum(self.term_of_col, 0)], np.iinfo(np.int64).max)
        k = min(len(new), len(held))
        cols = np.argpartition(held, k - 1)[:k]
        cols = cols[np.argsort(held[cols], kind="stable")]
        take = self.store.df[new[:k]] > held[cols]
        cols, new = cols[take], new[:k][take]
        if not len(cols):
            return
        old = self.term_of_col[cols]
        self.col_of_term[old] = -1
        self.features.replace(cols, [self.store.terms[i] for i in new], self._idf(new))
        self.col_of_term[new] = cols
        self.term_of_col[cols] = new
        self.kernel[cols] = 0.0
        self.network_changed = True
        if self.trainer is not None:
            self.trainer.reset_rows(cols)
        self.store.state["evicted"] = self.store.state.get("evicted", 0) + len(cols)

    def rows(self, positions: Sequence[int]) -> sp.csr_matrix:
        """TF-IDF rows (over the vocabulary) of stored examples, as ``transform`` makes them from their text."""
        return self._tfidf(self.store.matrix(positions), self.features.n_features)

    def _tfidf(self, counts: sp.csr_matrix, width: int) -> sp.csr_matrix:
        """TF-IDF rows of store term counts, ``width`` columns wide (at least the vocabulary's size)."""
        self._extend_map()
        cols = self.col_of_term[counts.indices]
        keep = cols >= 0
        # a store row holds each term once, and each feature is one term: the kept entries are already
        # CSR rows (their columns unsorted), with no duplicates for a COO conversion to sum
        row_of = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        indptr = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(row_of[keep], minlength=counts.shape[0]), out=indptr[1:])
        x = sp.csr_matrix((counts.data[keep], cols[keep].astype(np.int32), indptr), shape=(counts.shape[0], width))
        x.sort_indices()
        return self.features._weigh(x)

    # learning

    def tokens(self, text: str) -> list[str]:
        return self.features._analyzer()(text)

    def add(self, key: str, label: int, text: Callable[[], str]) -> str:
        """Store one message: ``learned``, ``relabelled`` or ``unchanged`` (already stored with ``label``).
        ``text()`` gives its extracted text, asked for only where it is new. The network changes in ``update``."""
        outcome = self.store.relabel(key, label)
        if outcome is None:
            self.store.add(key, label, *self.store.count(self.tokens(text())))
            outcome = "learned"
        return outcome

    def remove(self, key: str) -> bool:
        return self.store.remove(key)

    def update(self, changed: list[int]) -> None:
        """After storing: new features, then a refit when due, else online steps on ``changed`` (positions)."""
        for at in changed:
            self._grow(self.store.rows[at][0])
        if self._refit_due():
            self.refit()
        elif changed and self.ready:
            wrong = self._outside_margin(changed)
            if wrong:
                self._steps(wrong)

    def _refit_due(self) -> bool:
        n = len(self.store)
        ham, spam = self.store.class_counts()
        if min(ham, spam) < 2:
            return False
        last = self.store.state.get("refit_size", 0)
        return n >= (self.policy["refit_growth"] * last if last else self.policy["first_refit"])

    def _outside_margin(self, changed: list[int]) -> list[int]:
        """The examples of ``changed`` the network does not already score within ``learn.margin`` of their
        label: only those take a step (the others are stored, and refits fit them)."""
        from .scorer import forward

        margin = self.policy["margin"]
        changed = list(dict.fromkeys(changed))
        if margin <= 0:
            return changed
        scores = forward(self.rows(changed), self.layers)
        labels = np.asarray([self.store.labels[i] for i in changed])
        return [at for at, p, y in zip(changed, scores, labels) if not abs(float(p) - y) < margin]

    def _steps(self, changed: list[int]) -> None:
        labels = self.store.label_array()
        batch = list(changed)
        per_class = self.policy["replay"] // 2
        for c in (0, 1):
            pool = np.flatnonzero(labels == c)
            if len(pool):
                batch += list(self.rng.choice(pool, size=min(per_class, len(pool)), replace=False))
        x, y = self.rows(batch), labels[batch].astype(np.float32)
        if not (labels == 0).any():  # no ham learned yet: a message of no known term stands for it
            x = sp.vstack([x, sp.csr_matrix((1, x.shape[1]), dtype=np.float32)], format="csr")
            y = np.append(y, np.float32(0))
        trainer = self._trainer()
        touched = trainer.steps(x, y, self.policy["steps"] * len(changed))  # each new message is worth learn.steps steps
        self._pull(touched)

    def _trainer(self):
        if self.trainer is None:
            from .online_fitting import OnlineTrainer

            self.trainer = OnlineTrainer(keras_model([(self.kernel, self.bias0), *self.rest], self.config), self.config)
        return self.trainer

    def _pull(self, touched: np.ndarray) -> None:
        """Copy what the trainer changed into the NumPy layers scoring reads: the touched rows of the
        first kernel (the rest of it did not change) and the small layers whole."""
        kernel_rows, bias0, rest = self.trainer.weights(touched)
        self.kernel[touched] = kernel_rows
        self.bias0 = bias0
        self.rest = rest
        self.network_changed = True

    def refit(self) -> dict:
        """Select the vocabulary again from the store (with headroom), recompute the IDF, and fit the
        network from scratch on every stored example with ``network.fit``: what ``train`` does."""
        from ..mail.labelled import stratified_split
        from .network import dense_weights, fit

        store = self.store
        n = len(store)
        ham, spam = store.class_counts()
        if min(ham, spam) < 2:
            raise DataError(f"too few learned messages to fit a model: {ham} ham, {spam} spam; need at least 2 of each")
        counts = store.matrix()
        df = store.df[: len(store.terms)]
        totals = np.asarray(counts.sum(axis=0)).ravel()[: len(store.terms)]
        settings = dict(self.features.settings(), max_features=max(1, int(self.capacity * (1 - self.policy["headroom"]))))
        # select_vocabulary takes the terms sorted, as scikit-learn orders them (ties fall the same way)
        order = np.asarray(sorted(range(len(store.terms)), key=store.terms.__getitem__), np.int64)
        kept, idf = select_vocabulary(df[order], totals[order], n, settings)
        kept_terms = [store.terms[i] for i in order[kept]]
        self.features = TfidfFeatures.fitted(self.features.settings(), kept_terms, idf)
        self._map_terms()
        x = self._tfidf(counts, self.capacity)  # the kernel's full capacity
        y = store.label_array()
        fit_idx, val_idx = stratified_split(y, self.config["train"]["validation_split"], self.config["train"]["seed"])
        model, history = fit(x[fit_idx], y[fit_idx], x[val_idx], y[val_idx], self.config, progress=False)
        from .online_fitting import OnlineTrainer

        self.trainer = OnlineTrainer(model, self.config)
        layers = dense_weights(model)
        self.kernel = np.array(layers[0][0], np.float32)
        self.bias0, self.rest = layers[0][1], layers[1:]
        self.network_changed = True
        store.state.update(refit_size=n, refits=store.state.get("refits", 0) + 1, trained=True)
        self.history = history
        return history

    def keras_model(self):
        """A Keras model of the network as scoring sees it (the vocabulary's rows of the first kernel): what the bundle saves."""
        return keras_model(self.layers, self.config)


def keras_model(layers: list[tuple[np.ndarray, np.ndarray]], config: dict):
    """The Keras network (``network.build_model``) with the weights ``layers``."""
    from .network import build_model

    model = build_model(layers[0][0].shape[0], config["model"]["units"])
    model.set_weights([a for layer in layers for a in layer])
    return model

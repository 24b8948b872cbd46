"""``spamclf train --engine ray``: the same model and bundle as local training, computed on Ray.

Four distributed passes, then an ordinary bundle:

1. reading (Ray Data tasks): the driver lists files; workers read and extract them. The
   texts stay in Ray's object store, spread over the cluster; the driver only sees each
   message's label, digest and path, from which it drops exact duplicates and makes the
   same stratified train/validation split as local training.
2. vocabulary (Ray Data aggregation): each batch counts, per term, the documents that
   hold it and its occurrences; ``groupby(term).sum`` adds them up. min_df, max_df,
   max_features and the smoothed IDF are then applied exactly as scikit-learn's
   ``TfidfVectorizer`` does, so the vocabulary and IDF equal a local ``TfidfFeatures.fit``.
3. features (Ray Data tasks): every message becomes its sparse TF-IDF row.
4. training (Ray actors, synchronous data parallelism): each of N actors holds a shard of
   the rows and a replica of the Dense network. Every step each computes the gradient of
   its part of the global batch (``train.batch_size`` rows in all) with TensorFlow; the
   driver sums them, and every replica applies the same averaged update with the same
   Adam (lazy for the first layer's rows, as local training). Replicas therefore stay
   identical; early stopping works on the validation loss summed over the shards.

Why not Ray Train's ``TensorflowTrainer``: it sets up ``MultiWorkerMirroredStrategy``,
which wants the variables created under the strategy and a distributed Keras ``fit``;
spamclf's training step is a custom sparse (embedding-bag, lazy-Adam) step on sparse
TF-IDF rows, whose sparse gradients a mirrored all-reduce would densify to
vocabulary x 512 floats per step. Averaging the sparse gradients through Ray keeps the
step local training uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import __version__
from .errors import DataError, SpamclfError
from .ray_runtime import import_ray, ray_session

_FILES_PER_BLOCK = 64


# --------------------------------------------------------------------------------- 1. reading


def list_labelled_files(sources, skips=None) -> list[tuple[str, int]]:
    """(file, label) for every labelled source, in local training's order; label -1: in the file itself."""
    from .sources import LABELS, LabelledSource, iter_labelled, walk_files

    units: list[tuple[str, int]] = []

    def files_of(path: Path, label: int) -> None:
        if path.is_dir():
            units.extend((str(f), label) for f in walk_files(path, skips))
        else:
            units.append((str(path), label))

    for src in sources:
        if isinstance(src, LabelledSource):
            if not Path(src.path).exists():
                raise DataError(f"data source {src.path} does not exist")
            files_of(Path(src.path), src.label)
            continue
        path = Path(src)
        if not path.is_dir():
            next(iter(iter_labelled([path], 1)), None)  # the local checks: missing, unlabelled formats
            units.append((str(path), -1))
            continue
        dirs = {LABELS.index(c.name.lower()): c for c in sorted(path.iterdir()) if c.is_dir() and c.name.lower() in LABELS}
        if set(dirs) != {0, 1}:
            next(iter(iter_labelled([path], 1)), None)  # raises local training's DataError
        for label in (1, 0):
            files_of(dirs[label], label)
    return units


def _read_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.int64()),
            ("path", pa.string()),
            ("label", pa.int64()),
            ("text", pa.string()),
            ("digest", pa.string()),
            ("truncated", pa.bool_()),
            ("error", pa.string()),
        ]
    )


def _read_labelled(batch, options: dict):
    """Files in, one row per message: the extracted text, its label and digest (as ``load_labelled``)."""
    import pyarrow as pa

    from .dataset import message_digest
    from .extract import ExtractOptions, extract
    from .sources import LabelledSource, iter_labelled

    opts = ExtractOptions(**options)
    rows = {name: [] for name in _read_schema().names}
    for unit, source, label in zip(batch["unit"].to_pylist(), batch["source"].to_pylist(), batch["label"].to_pylist()):
        src = LabelledSource(source, label) if label >= 0 else source
        for n, item in enumerate(iter_labelled([src], opts.max_bytes, None, options)):
            text = digest = None
            if not item.error:
                if item.text is not None:
                    text, digest = item.text, item.sha256 or hashlib.sha256(item.text.encode()).hexdigest()
                else:
                    text, digest = extract(item.raw, opts), message_digest(item.raw)
            rows["key"].append((unit << 32) | n)
            rows["path"].append(item.path)
            rows["label"].append(item.label)
            rows["text"].append(text)
            rows["digest"].append(digest)
            rows["truncated"].append(bool(item.truncated))
            rows["error"].append(item.error)
    return pa.table(rows, schema=_read_schema())


def _kept(meta, skips):
    """Replay ``load_labelled`` on the metadata: which keys survive, and the LabelledData they make."""
    from .dataset import LabelledData

    data = LabelledData(skips=skips)
    keys, seen = [], {}
    for key, path, label, digest, truncated, error in zip(*(meta[c].to_pylist() for c in ("key", "path", "label", "digest", "truncated", "error"))):
        if error:
            data.skips.add(path, f"unreadable: {error}")
            continue
        data.truncated += int(truncated)
        if digest in seen:
            data.duplicates += 1
            first = seen[digest]
            other = " with the other label" if data.labels[first] != label else ""
            data.skips.add(path, f"exact duplicate{other} (the first copy is kept)", duplicate_of=data.paths[first])
            continue
        seen[digest] = len(data.paths)
        data.paths.append(path)
        data.texts.append("")  # the texts stay on the cluster; stats() and fingerprint() need the count only
        data.labels.append(int(label))
        data.digests.append(digest)
        keys.append(key)
    return np.asarray(keys, dtype=np.int64), data


# ------------------------------------------------------------------------------ 2. vocabulary


def _count_terms(batch, settings: dict):
    """Per term in this batch: documents holding it (df) and occurrences (tf)."""
    import pyarrow as pa

    from .features import TfidfFeatures

    analyzer = TfidfFeatures(**settings)._analyzer()
    df: dict[str, int] = {}
    tf: dict[str, int] = {}
    for text in batch["text"].to_pylist():
        counts: dict[str, int] = {}
        for term in analyzer(text):
            counts[term] = counts.get(term, 0) + 1
        for term, c in counts.items():
            df[term] = df.get(term, 0) + 1
            tf[term] = tf.get(term, 0) + c
    terms = list(df)
    return pa.table({"term": terms, "df": [df[t] for t in terms], "tf": [tf[t] for t in terms]})


def vocabulary_from_counts(terms, df, tf, n_docs: int, settings: dict) -> tuple[list[str], np.ndarray]:
    """The vocabulary (column order) and IDF ``TfidfVectorizer.fit`` learns from these per-term counts.

    Mirrors scikit-learn 1.x: terms sorted; kept if ``min_df <= df <= max_df * n_docs``; if
    more than ``max_features`` remain, the most frequent by total count (its own argsort,
    on the same float32 totals, so ties break the same way); IDF ``ln((1+n)/(1+df)) + 1``
    in float32.
    """
    order = sorted(range(len(terms)), key=terms.__getitem__)
    terms = [terms[i] for i in order]
    dfs = np.asarray(df, dtype=np.int64)[order]
    tfs = np.asarray(tf, dtype=np.float32)[order]  # sklearn sums a float32 count matrix
    if not terms:
        raise DataError("no vocabulary: the training messages have no words")
    max_df, min_df, limit = settings["max_df"], settings["min_df"], settings["max_features"]
    high = max_df if isinstance(max_df, int) and not isinstance(max_df, bool) else max_df * n_docs
    low = min_df if isinstance(min_df, int) else min_df * n_docs
    if high < low:
        raise DataError("features.max_df corresponds to fewer documents than features.min_df")
    mask = (dfs <= high) & (dfs >= low)
    if limit is not None and mask.sum() > limit:
        top = (-tfs[mask]).argsort()[:limit]
        new_mask = np.zeros(len(dfs), dtype=bool)
        new_mask[np.where(mask)[0][top]] = True
        mask = new_mask
    kept = np.where(mask)[0]
    if not len(kept):
        raise DataError(
            "no vocabulary: the training messages have no words that pass features.min_df "
            f"({min_df}) and features.max_df ({max_df})"
        )
    df_kept = dfs[kept].astype(np.float32) + 1.0
    idf = np.full_like(df_kept, fill_value=n_docs + 1, dtype=np.float32)
    idf /= df_kept
    np.log(idf, out=idf)
    idf += 1.0
    return [terms[i] for i in kept], idf


def _features_from(vocabulary: list[str], idf: np.ndarray, settings: dict):
    """A fitted TfidfFeatures, built through its own save/load so it is exactly what a bundle holds."""
    import json

    from .features import TfidfFeatures

    with tempfile.TemporaryDirectory() as tmp:
        vocab_path, idf_path = Path(tmp) / "vocabulary.json", Path(tmp) / "idf.npz"
        vocab_path.write_text(json.dumps({"settings": settings, "vocabulary": vocabulary}, ensure_ascii=False), encoding="utf-8")
        with open(idf_path, "wb") as fh:
            np.savez(fh, idf=np.asarray(idf, dtype=np.float32))
        return TfidfFeatures.load(vocab_path, idf_path)


def fit_features_on_ray(texts_ds, n_docs: int, settings: dict):
    """TF-IDF features fitted by a distributed count over a Ray Dataset with a ``text`` column."""
    import pyarrow as pa

    from .ray_runtime import cluster_cpus

    ray = import_ray()
    counts = (
        texts_ds.map_batches(_count_terms, fn_kwargs={"settings": settings}, batch_size=256, batch_format="pyarrow")
        .groupby("term", num_partitions=min(64, cluster_cpus(ray)))  # Ray's default of 200 is slow on small clusters
        .sum(["df", "tf"])
        .to_arrow_refs()
    )
    table = pa.concat_tables([t for t in ray.get(counts) if t.num_rows]) if counts else None
    if table is None or not table.num_rows:
        raise DataError("no vocabulary: the training messages have no words")
    vocabulary, idf = vocabulary_from_counts(
        table["term"].to_pylist(), table["sum(df)"].to_numpy(), table["sum(tf)"].to_numpy(), n_docs, settings
    )
    return _features_from(vocabulary, idf, settings)


# -------------------------------------------------------------------------------- 3. features


def _rows_schema():
    import pyarrow as pa

    return pa.schema([("label", pa.float32()), ("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.float32()))])


class _Featurize:
    """Texts in, sparse TF-IDF rows out (``features.transform``, the NumPy code local training runs).

    A class, so each worker builds the vectorizer once; rows whose key is in ``val_keys``
    (sorted) are marked as validation rows.
    """

    def __init__(self, vocabulary: list[str], idf: np.ndarray, settings: dict, val_keys: np.ndarray) -> None:
        self.features = _features_from(vocabulary, idf, settings)
        self.val_keys = np.asarray(val_keys, dtype=np.int64)

    def __call__(self, batch):
        import pyarrow as pa

        x = self.features.transform(batch["text"].to_pylist())
        indices = [x.indices[x.indptr[i] : x.indptr[i + 1]].tolist() for i in range(x.shape[0])]
        values = [x.data[x.indptr[i] : x.indptr[i + 1]].tolist() for i in range(x.shape[0])]
        keys = batch["key"].to_numpy()
        at = np.searchsorted(self.val_keys, keys)
        validation = (at < len(self.val_keys)) & (self.val_keys[np.minimum(at, len(self.val_keys) - 1)] == keys) if len(self.val_keys) else np.zeros(len(keys), bool)
        table = pa.table({"label": batch["label"].to_numpy().astype(np.float32), "indices": indices, "values": values}, schema=_rows_schema())
        return table.append_column("validation", pa.array(validation))


def _where_validation(batch, validation: bool):
    import pyarrow.compute as pc

    mask = batch["validation"] if validation else pc.invert(batch["validation"])
    return batch.filter(mask).drop_columns(["validation"])


def _batch_rows(x: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``rows`` of ``x`` as an embedding bag: (distinct terms, slot of each entry in them, row, value)."""
    batch = x[rows]
    terms, slot = np.unique(batch.indices, return_inverse=True)
    segments = np.repeat(np.arange(batch.shape[0], dtype=np.int32), np.diff(batch.indptr))
    return terms.astype(np.int32), slot.astype(np.int32).ravel(), segments, batch.data.astype(np.float32)


def _csr(table, n_features: int) -> tuple[sp.csr_matrix, np.ndarray]:
    if table.num_rows == 0:
        return sp.csr_matrix((0, n_features), dtype=np.float32), np.zeros(0, np.float32)
    lengths = np.asarray([len(r) for r in table["indices"].to_pylist()], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = table["indices"].combine_chunks().flatten().to_numpy().astype(np.int32)
    data = table["values"].combine_chunks().flatten().to_numpy().astype(np.float32)
    x = sp.csr_matrix((data, indices, indptr), shape=(table.num_rows, n_features), dtype=np.float32)
    x.sort_indices()
    return x, table["label"].to_numpy().astype(np.float32)


# -------------------------------------------------------------------------------- 4. training


class ShardWorker:
    """One data-parallel replica: a shard of training and validation rows and the network's variables."""

    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7  # Keras' Adam, as local training

    def __init__(self, rank: int, config: dict, n_features: int, weights: list, class_weights: tuple[float, float]) -> None:
        from .network import import_keras, seed_everything

        _, tf = import_keras()
        seed_everything(config["train"]["seed"])
        self.tf, self.rank, self.n_features = tf, rank, n_features
        tr, md = config["train"], config["model"]
        self.lr, self.dropout, self.l2, self.seed = float(tr["learning_rate"]), float(md["dropout"]), float(md["l2"]), int(tr["seed"])
        self.weights = tuple(float(w) for w in class_weights)
        self.variables = [tf.Variable(np.asarray(w, np.float32)) for w in weights]  # kernel, bias, kernel, bias, ...
        self.slots = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in self.variables]
        self.iterations = tf.Variable(0, dtype=tf.int64)
        self.rng = np.random.default_rng(self.seed + 1000 * (rank + 1))
        self.best = None
        bag = [tf.TensorSpec([None], tf.int32)] * 3 + [tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)]
        # Lambdas, not the methods: Ray wraps an actor's methods with an extra keyword argument
        # that tf.function's signature would refuse.
        self._grads = tf.function(lambda t, s, g, v, n, y: self._gradients(t, s, g, v, n, y), input_signature=[*bag, tf.TensorSpec([None], tf.float32)])
        self._logits_eval = tf.function(lambda t, s, g, v, n: self._logits(tf.gather(self.variables[0], t), s, g, v, n, False), input_signature=bag)

    def load(self, train_shard, val_shard) -> tuple[int, int]:
        import pyarrow as pa

        def table(shard):
            refs = shard.to_arrow_refs()
            tables = [t for t in import_ray().get(refs) if t.num_rows]
            return pa.concat_tables(tables) if tables else _rows_schema().empty_table()

        self.x, self.y = _csr(table(train_shard), self.n_features)
        self.x_val, self.y_val = _csr(table(val_shard), self.n_features)
        return self.x.shape[0], self.x_val.shape[0]

    def _logits(self, rows, slot, segments, values, n_rows, training):
        tf = self.tf
        x = tf.SparseTensor(
            tf.cast(tf.stack([segments, slot], axis=1), tf.int64), values, tf.cast(tf.stack([n_rows, tf.shape(rows)[0]]), tf.int64)
        )
        h = tf.sparse.sparse_dense_matmul(x, rows) + self.variables[1]
        n_layers = len(self.variables) // 2
        for i in range(n_layers):
            if i:
                h = tf.matmul(h, self.variables[2 * i]) + self.variables[2 * i + 1]
            if i < n_layers - 1:
                h = tf.nn.relu(h)
                if training and self.dropout:
                    seed = tf.stack([tf.cast(self.seed + self.rank, tf.int64), self.iterations * 16 + i])
                    h = tf.nn.experimental.stateless_dropout(h, self.dropout, seed=seed)
        return h[:, 0]

    def _gradients(self, terms, slot, segments, values, n_rows, y):
        tf = self.tf
        with tf.GradientTape() as tape:
            rows = tf.gather(self.variables[0], terms)
            tape.watch(rows)
            logits = self._logits(rows, slot, segments, values, n_rows, True)
            per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
            loss_sum = tf.reduce_sum(per_example * tf.where(y > 0.5, self.weights[1], self.weights[0]))
        grads = tape.gradient(loss_sum, [rows, *self.variables[1:]])
        correct = tf.reduce_sum(tf.cast(tf.equal(logits >= 0.0, y > 0.5), tf.float32))
        return [tf.convert_to_tensor(g) for g in grads], tf.reduce_sum(per_example), correct

    def step(self, update, epoch: int, index: int, local_batch: int):
        """Apply the previous averaged update (if any), then the gradient of this replica's next rows.

        Returns (terms, gradient rows of the first kernel, other gradients, loss sum, correct, rows),
        gradients of the *summed* loss: the driver divides by the global batch.
        """
        if update is not None:
            self._apply(*update)
        if index == 0:
            self.order = self.rng.permutation(self.x.shape[0])
        rows = np.sort(self.order[index * local_batch : (index + 1) * local_batch])
        if not len(rows):
            return np.zeros(0, np.int32), None, None, 0.0, 0.0, 0
        terms, slot, segments, values = _batch_rows(self.x, rows)
        grads, loss_sum, correct = self._grads(terms, slot, segments, values, np.int32(len(rows)), self.y[rows])
        return terms, grads[0].numpy(), [g.numpy() for g in grads[1:]], float(loss_sum), float(correct), len(rows)

    def _apply(self, terms, first, others) -> None:
        tf = self.tf
        self.iterations.assign_add(1)
        t = float(self.iterations.numpy())
        lr = self.lr * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        if self.l2:  # Keras' L2 on hidden kernels (the first: the rows this step used), as local training
            first = first + 2 * self.l2 * tf.gather(self.variables[0], terms).numpy()
            others = list(others)
            for i in range(1, len(self.variables) // 2 - 1):  # others[2i-1] is kernel i's gradient
                others[2 * i - 1] = others[2 * i - 1] + 2 * self.l2 * self.variables[2 * i].numpy()
        m, v = self.slots[0]
        m_rows = tf.gather(m, terms)
        v_rows = tf.gather(v, terms)
        m_rows += (first - m_rows) * (1 - self.beta_1)
        v_rows += (tf.square(first) - v_rows) * (1 - self.beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, terms))
        v.scatter_update(tf.IndexedSlices(v_rows, terms))
        self.variables[0].scatter_sub(tf.IndexedSlices(lr * m_rows / (tf.sqrt(v_rows) + self.epsilon), terms))
        for variable, (m, v), grad in zip(self.variables[1:], self.slots[1:], others):
            m.assign_add((grad - m) * (1 - self.beta_1))
            v.assign_add((tf.square(grad) - v) * (1 - self.beta_2))
            variable.assign_sub(lr * m / (tf.sqrt(v) + self.epsilon))

    def apply(self, update) -> None:
        self._apply(*update)

    def evaluate(self, with_scores: bool = False):
        """(loss sum, correct, rows[, scores, labels]) over this replica's validation rows."""
        z = np.zeros(0)
        if self.x_val.shape[0]:
            parts = []
            for start in range(0, self.x_val.shape[0], 4096):
                rows = np.arange(start, min(start + 4096, self.x_val.shape[0]))
                parts.append(self._logits_eval(*_batch_rows(self.x_val, rows), np.int32(len(rows))).numpy())
            z = np.concatenate(parts).astype(np.float64)
        y = self.y_val
        loss = float(np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))) if len(z) else 0.0
        out = (loss, float(np.sum((z >= 0) == (y > 0.5))), len(z))
        return out + (z, y) if with_scores else out

    def snapshot(self) -> None:
        self.best = [np.array(v.numpy()) for v in self.variables]

    def restore(self) -> None:
        if self.best is not None:
            for variable, value in zip(self.variables, self.best):
                variable.assign(value)

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.variables]


def _average(results, total: int):
    """Sum the replicas' gradients (first kernel: over the union of their rows) and divide by the global batch."""
    parts = [r for r in results if r[5]]
    terms = np.concatenate([r[0] for r in parts])
    union, inverse = np.unique(terms, return_inverse=True)
    first = np.zeros((len(union), parts[0][1].shape[1]), np.float32)
    np.add.at(first, inverse.ravel(), np.concatenate([r[1] for r in parts]))
    others = [sum(r[2][i] for r in parts) / total for i in range(len(parts[0][2]))]
    return union.astype(np.int32), first / total, others


def _fit_on_actors(ray, actors, cfg: dict, n_fit: int, progress: bool):
    """Synchronous data-parallel epochs with early stopping; returns the history (Keras' names)."""
    import click

    tr = cfg["train"]
    batch, n = tr["batch_size"], len(actors)
    local_batch = -(-batch // n)
    steps = -(-(-(-n_fit // n)) // local_batch)  # shards differ by at most one row; every row is used
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    best_loss, waited, saved = np.inf, 0, False
    update = None
    for epoch in range(tr["epochs"]):
        total_loss = total_correct = 0.0
        for index in range(steps):
            update_ref = ray.put(update) if update is not None else None
            results = ray.get([a.step.remote(update_ref, epoch, index, local_batch) for a in actors])
            rows = sum(r[5] for r in results)
            update = _average(results, rows) if rows else None
            total_loss += sum(r[3] for r in results)
            total_correct += sum(r[4] for r in results)
        if update is not None:
            ref = ray.put(update)
            ray.get([a.apply.remote(ref) for a in actors])
            update = None
        evals = ray.get([a.evaluate.remote() for a in actors])
        n_val = sum(e[2] for e in evals)
        val_loss = sum(e[0] for e in evals) / max(n_val, 1)
        val_acc = sum(e[1] for e in evals) / max(n_val, 1)
        for key, value in zip(history, (total_loss / n_fit, total_correct / n_fit, val_loss, val_acc)):
            history[key].append(float(value))
        if progress:
            shown = ", ".join(f"{k} {history[k][-1]:.4f}" for k in sorted(history))
            click.echo(f"epoch {epoch + 1}/{tr['epochs']}: {shown}", err=True)
        if not tr["early_stopping"]:
            continue
        if val_loss < best_loss:
            best_loss, waited, saved = val_loss, 0, True
            ray.get([a.snapshot.remote() for a in actors])
        else:
            waited += 1
            if waited > tr["patience"]:
                break
    if saved:
        ray.get([a.restore.remote() for a in actors])
    return history


def _unwrap(exc: BaseException) -> BaseException:
    """The SpamclfError inside a Ray task error, if any (so the CLI prints one line)."""
    cause = getattr(exc, "cause", None)
    while cause is not None and not isinstance(cause, SpamclfError):
        cause = getattr(cause, "cause", None) or cause.__cause__
    return cause if isinstance(cause, SpamclfError) else exc


def train_on_ray(
    data,
    models_dir: str | Path,
    config=None,
    overrides=(),
    force: bool = False,
    workers: int = 2,
    address: str | None = None,
    progress: bool = True,
) -> dict:
    """Train on labelled ``data`` with ``workers`` data-parallel Ray workers; write an ordinary bundle.

    Same arguments and summary as :func:`spamclf.training.train`, plus ``workers`` and
    ``address`` (join a Ray cluster; default: start a local runtime with ``workers`` CPUs).
    """
    try:
        return _train_on_ray(data, models_dir, config, overrides, force, workers, address, progress)
    except SpamclfError:
        raise
    except Exception as exc:  # Ray wraps errors raised in tasks and actors
        inner = _unwrap(exc)
        if inner is exc:
            raise
        raise inner from None


def _train_on_ray(data, models_dir, config, overrides, force, workers, address, progress) -> dict:
    from .config import load_config
    from .dataset import require_trainable, stratified_split
    from .extract import ExtractOptions
    from .metrics import classification_metrics
    from .sources import SkipLog
    from .training import choose_threshold, package_versions, save_trained

    if workers < 1:
        raise SpamclfError("--workers must be at least 1")
    cfg = config if isinstance(config, dict) else load_config(config, overrides)
    models_dir = Path(models_dir)
    if models_dir.exists() and not force:
        from .errors import BundleError

        raise BundleError(f"models directory {models_dir} already exists; use --force to replace it")
    data = list(data)
    if not data:
        raise DataError("no data given: pass --data with a labelled folder or a preprocessed file, or --spam and --ham")
    options = ExtractOptions.from_config(cfg).__dict__
    skips = SkipLog()
    units = list_labelled_files(data, skips)
    started = time.perf_counter()
    with ray_session(address, num_cpus=workers) as ray:
        # 1. read and extract on the workers; keep the texts there
        listing = ray.data.from_items(
            [{"unit": i, "source": s, "label": label} for i, (s, label) in enumerate(units)],
            override_num_blocks=max(1, -(-len(units) // _FILES_PER_BLOCK)),
        )
        messages = listing.map_batches(_read_labelled, fn_kwargs={"options": options}, batch_size=_FILES_PER_BLOCK, batch_format="pyarrow").materialize()
        meta = messages.select_columns(["key", "path", "label", "digest", "truncated", "error"]).to_arrow_refs()
        import pyarrow as pa

        tables = [t for t in ray.get(meta) if t.num_rows]
        meta_table = pa.concat_tables(tables) if tables else _read_schema().empty_table()
        keys, dataset = _kept(meta_table, skips)
        require_trainable(dataset)
        labels = dataset.y
        if len(dataset) < 4 or min(np.bincount(labels, minlength=2)) < 2:
            raise DataError(f"too few messages to train and validate: {dataset.counts()}; need at least 2 of each class")
        fit_idx, val_idx = stratified_split(labels, cfg["train"]["validation_split"], cfg["train"]["seed"])
        dropped = np.setdiff1d(meta_table["key"].to_numpy(), keys)  # unreadable and duplicates: few
        kept = messages.map_batches(_select, fn_kwargs={"dropped": dropped}, batch_format="pyarrow").materialize()

        # 2. vocabulary and IDF by a distributed count
        settings = dict(cfg["features"])
        features = fit_features_on_ray(kept.select_columns(["text"]), len(keys), settings)
        if progress:
            import click

            click.echo(f"ray: {len(keys)} messages, {features.n_features} features, {workers} workers", err=True)

        # 3. sparse TF-IDF rows, marked fit or validation
        rows = kept.map_batches(
            _Featurize,
            fn_constructor_kwargs={"vocabulary": features.vocabulary_, "idf": features.idf_, "settings": settings, "val_keys": np.sort(keys[val_idx])},
            batch_format="pyarrow",
            batch_size=256,
            concurrency=workers,
            num_cpus=1,
        ).materialize()
        fit_rows = rows.map_batches(_where_validation, fn_kwargs={"validation": False}, batch_format="pyarrow").materialize()
        val_rows = rows.map_batches(_where_validation, fn_kwargs={"validation": True}, batch_format="pyarrow").materialize()

        # 4. data-parallel training
        from .network import build_model, dense_weights, seed_everything

        tr, md = cfg["train"], cfg["model"]
        seed_everything(tr["seed"])
        model = build_model(features.n_features, md["units"], md["dropout"], md["l2"], tr["learning_rate"])
        initial = [w for pair in dense_weights(model) for w in pair]
        y_fit = labels[fit_idx]
        neg_weight = pos_weight = 1.0
        if tr["class_weight"] == "balanced":
            counts = np.bincount(y_fit, minlength=2)
            neg_weight, pos_weight = (float(len(y_fit) / (2 * max(c, 1))) for c in counts)
        # Split before the actors take every CPU: splitting runs Ray tasks of its own.
        fit_shards = _shards(fit_rows, workers)
        val_shards = _shards(val_rows, workers)
        remote = ray.remote(num_cpus=1)(ShardWorker)
        actors = [remote.remote(r, cfg, features.n_features, initial, (neg_weight, pos_weight)) for r in range(workers)]
        ray.get([a.load.remote(f, v) for a, f, v in zip(actors, fit_shards, val_shards)])
        history = _fit_on_actors(ray, actors, cfg, len(fit_idx), progress)
        final = ray.get(actors[0].get_weights.remote())
        evals = ray.get([a.evaluate.remote(True) for a in actors])
        for a in actors:
            ray.kill(a)
    z = np.concatenate([e[3] for e in evals])
    y_val = np.concatenate([e[4] for e in evals]).astype(np.int64)
    val_scores = (np.exp(-np.logaddexp(0.0, -z))).astype(np.float32)
    model.set_weights(final)
    layers = dense_weights(model)
    threshold = choose_threshold(y_val, val_scores, tr)
    val_metrics = classification_metrics(y_val, val_scores, threshold)
    metadata = {
        "threshold": threshold,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "spamclf_version": __version__,
        "versions": package_versions(),
        "data": {
            "sources": [str(s) for s in data],
            "fingerprint": dataset.fingerprint(),
            **dataset.stats(),
            "train_messages": int(len(fit_idx)),
            "validation_messages": int(len(val_idx)),
        },
        "n_features": features.n_features,
        "epochs_run": len(history.get("loss", [])),
        "validation_metrics": val_metrics,
        "engine": {"name": "ray", "workers": workers, "ray": _ray_version()},
    }
    metadata["data"].pop("skipped_messages")
    save_trained(models_dir, model, layers, features, cfg, metadata, history, force=force)
    return {
        "models_dir": str(models_dir),
        "threshold": threshold,
        "n_features": features.n_features,
        "epochs_run": metadata["epochs_run"],
        "data": {**dataset.stats(), "fingerprint": metadata["data"]["fingerprint"]},
        "validation_metrics": val_metrics,
        "history": history,
        "engine": {**metadata["engine"], "seconds": round(time.perf_counter() - started, 3)},
    }


def _ray_version() -> str:
    return import_ray().__version__


def _shards(ds, n: int):
    """``n`` parts of ``ds`` whose sizes differ by at most one row."""
    total = ds.count()
    return ds.split_at_indices([total * i // n for i in range(1, n)])


def _select(batch, dropped):
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = pc.invert(pc.is_in(batch["key"], value_set=pa.array(np.asarray(dropped, dtype=np.int64))))
    return batch.filter(keep).select(["key", "label", "text"])

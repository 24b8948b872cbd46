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
4. training (Ray Train): ``TensorflowTrainer`` starts N workers and sets ``TF_CONFIG``;
   each builds a ``tf.distribute.MultiWorkerMirroredStrategy``, takes its shard of the
   rows (``get_dataset_shard``; sparse CSR, never densified) and runs local training's
   ``Model.fit``, step, optimizer and callbacks, in the strategy's scope, with the gradients
   of every replica's rows summed by the strategy's collective all-reduce: synchronous data
   parallelism over the global batch local training uses (``train.batch_size``, smaller on
   small data). The validation loss is summed over the replicas too, so every replica
   takes the same early-stopping decision; rank 0 reports the final weights in a
   checkpoint (NPZ), from which the driver writes the bundle.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import DataError, SpamclfError
from .runtime import import_ray, log_skip_entry, ray_session, skip_entries

_FILES_PER_BLOCK = 64


# --------------------------------------------------------------------------------- 1. reading


def list_labelled_files(sources, skips=None) -> list[tuple[str, int]]:
    """(file, label) for every labelled source, in local training's order; label -1: in the file itself."""
    from ..mail.sources import LABELS, LabelledSource, iter_labelled, walk_files

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
            ("skip", pa.string()),  # a SkipLog entry (JSON): what reading passed over inside a file
        ]
    )


def _read_labelled(batch, options: dict):
    """Files in, one row per message: the extracted text, its label and digest (as ``load_labelled``).

    What reading passes over inside a file (a table with no rows, a corrupt compressed tail) becomes
    one more row after the file's messages, with only ``key``, ``path`` and ``skip`` set: ``_kept``
    logs it and drops it, as it drops unreadable messages.
    """
    import pyarrow as pa

    from ..mail.labelled import item_digest
    from ..mail.extract import ExtractOptions, extract
    from ..mail.sources import SkipLog, iter_labelled, iter_labelled_file

    opts = ExtractOptions(**options)
    rows = {name: [] for name in _read_schema().names}
    log = SkipLog()

    def add(key, path, label=-1, text=None, digest=None, truncated=False, error=None, skip=None):
        for name, value in zip(rows, (key, path, label, text, digest, truncated, error, skip)):
            rows[name].append(value)

    for unit, source, label in zip(batch["unit"].to_pylist(), batch["source"].to_pylist(), batch["label"].to_pylist()):
        # label >= 0: a file of a labelled folder or of --spam/--ham, found by the driver's walk
        items = iter_labelled_file(source, label, opts.max_bytes, log, options) if label >= 0 else iter_labelled([source], opts.max_bytes, log, options)
        n = -1
        for n, item in enumerate(items):
            text = digest = None
            if not item.error:
                text = item.text if item.text is not None else extract(item.raw, opts)
                digest = item_digest(item)
            add((unit << 32) | n, item.path, item.label, text, digest, bool(item.truncated), item.error)
        for n, (path, entry) in enumerate(skip_entries(log), start=n + 1):
            add((unit << 32) | n, path, skip=entry)
    return pa.table(rows, schema=_read_schema())


def _kept(meta, skips):
    """Replay local reading (``LabelledData.admit``) on the metadata: which keys survive, and the LabelledData they make."""
    from ..mail.labelled import LabelledData

    data = LabelledData(skips=skips)
    keys, seen = [], {}
    columns = ("key", "path", "label", "digest", "truncated", "error", "skip")
    for key, path, label, digest, truncated, error, skip in zip(*(meta[c].to_pylist() for c in columns)):
        if skip is not None:
            log_skip_entry(skip, data.skips)
            continue
        if data.admit(path, label, digest, truncated, error, seen):  # the texts stay on the cluster
            data.add_message(path, label, digest)
            keys.append(key)
    return np.asarray(keys, dtype=np.int64), data


# ------------------------------------------------------------------------------ 2. vocabulary


def _count_terms(batch, settings: dict):
    """Per term in this batch: documents holding it (df) and occurrences (tf)."""
    import pyarrow as pa

    from ..model.features import TfidfFeatures

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
    """The vocabulary (column order) and IDF ``TfidfVectorizer.fit`` learns from these per-term counts
    (``features.select_vocabulary`` on the terms sorted, as local training)."""
    order = sorted(range(len(terms)), key=terms.__getitem__)
    if not terms:
        raise DataError("no vocabulary: the training messages have no words")
    from ..model.features import df_bounds, select_vocabulary

    low, high = df_bounds(settings, n_docs)
    if high < low:
        raise DataError("features.max_df corresponds to fewer documents than features.min_df")
    kept, idf = select_vocabulary(np.asarray(df, dtype=np.int64)[order], np.asarray(tf)[order], n_docs, settings)
    return [terms[order[i]] for i in kept], idf


def fit_features_on_ray(texts_ds, n_docs: int, settings: dict):
    """TF-IDF features fitted by a distributed count over a Ray Dataset with a ``text`` column."""
    import pyarrow as pa

    from ..model.features import TfidfFeatures
    from .runtime import cluster_cpus

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
    return TfidfFeatures.fitted(settings, vocabulary, idf)


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
        from ..model.features import TfidfFeatures

        self.features = TfidfFeatures.fitted(settings, vocabulary, idf)
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


def _table(blocks):
    import pyarrow as pa

    tables = [t for t in blocks if t.num_rows]
    return pa.concat_tables(tables) if tables else _rows_schema().empty_table()


# -------------------------------------------------------------------------------- 4. training


def _all_sum(strategy, tf, values: np.ndarray) -> np.ndarray:
    """``values`` added up over every replica: a collective all-reduce, which every replica must run."""
    add = tf.function(lambda t: strategy.run(lambda u: tf.distribute.get_replica_context().all_reduce("sum", tf.identity(u)), args=(t,)))
    return add(tf.constant(values, tf.float64)).numpy()


def _shard(name: str, n_features: int):
    """A dataset handed to the trainer (this worker's shard), as CSR rows and labels."""
    from ray import train

    blocks = train.get_dataset_shard(name).iter_batches(batch_size=None, batch_format="pyarrow")
    return _csr(_table(blocks), n_features)


def _train_loop(loop: dict) -> None:
    """Ray Train's ``train_loop_per_worker``: one replica of synchronous data-parallel training.

    TensorFlow's autograph writes the code it generates for the compiled step as files in the
    temporary folder and removes them at exit; Ray ends its Train workers without running exit
    handlers, so every run would leave a dozen ``__autograph_generated_file*.py`` in ``/tmp``.
    The worker's temporary files go to a folder of its own, removed when the loop ends.
    """
    with tempfile.TemporaryDirectory(prefix="spamclf-ray-worker-") as folder:
        before, tempfile.tempdir = tempfile.tempdir, folder
        try:
            _replica_training(loop)
        finally:
            tempfile.tempdir = before


def _replica_training(loop: dict) -> None:
    import json

    from ray import train

    from ..model.network import import_keras

    _, tf = import_keras()
    # Ray Train's TensorflowTrainer has set TF_CONFIG (the other workers' addresses); the
    # strategy must exist before any other TensorFlow op runs in this process.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    context = train.get_context()
    rank = context.get_world_rank()
    n_features = loop["n_features"]
    fit_rows, val_rows = _shard(f"train_{rank}", n_features), _shard(f"validation_{rank}", n_features)
    model, history = _replica_fit(strategy, rank, context.get_world_size(), fit_rows, val_rows, loop, train.report)
    # The result leaves through a checkpoint: rank 0's weights (all replicas hold the same,
    # the best epoch's when early stopping restored them) and the history, as an NPZ and
    # JSON, never a pickle.
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            with open(Path(folder) / "weights.npz", "wb") as fh:
                np.savez(fh, **{f"w{i}": np.asarray(w, np.float32) for i, w in enumerate(model.get_weights())})
            (Path(folder) / "history.json").write_text(json.dumps(history))
            checkpoint = train.Checkpoint.from_directory(folder)
        train.report({"epoch": len(history["loss"]), **{k: v[-1] for k, v in history.items()}}, checkpoint=checkpoint)


def _replica_fit(strategy, rank: int, world: int, fit_rows, val_rows, loop: dict, report):
    """One replica of local training's ``Model.fit`` under a ``MultiWorkerMirroredStrategy``.

    ``fit_rows`` and ``val_rows``: this replica's (CSR rows, labels). The model, the training
    step (``fitting.SparseTraining``), the optimizer and the callbacks are local training's,
    built in the strategy's scope as Keras documents it for several workers: the step adds up
    the replicas' rows for the loss's mean, the optimizer adds up their gradients (a collective
    all-reduce), so each replica applies the update one step over the global batch would, and
    the replicas, which start equal, stay equal. The metrics add up every replica's sums, so
    each replica sees the same validation loss and early stopping agrees. ``report`` gets each
    epoch's metrics but the last's. Returns ``(model, history)``, as ``network.fit``.

    The first kernel's gradient is all-reduced dense: vocabulary x units floats a step (40 MB
    at the defaults), small next to the step on one machine; across a slow network,
    all-gathering only the rows a batch touched would be the thing to change.
    """
    from ..model.network import batch_size_for, build_model, import_keras, seed_everything

    keras, tf = import_keras()
    from ..model import fitting

    (x, y), (x_val, y_val) = fit_rows, val_rows
    cfg = loop["config"]
    tr, md = cfg["train"], cfg["model"]
    with fitting.deterministic_ops(), fitting.graph_rewrites_off(), strategy.scope():
        seed_everything(tr["seed"])
        model = build_model(loop["n_features"], md["units"], md["dropout"], md["l2"], tr["learning_rate"])
        model.set_weights(loop["initial"])  # the driver's: every replica starts equal
        # dropout masks differ between replicas, as their rows do
        training = fitting.training_model(model, cfg, (loop["neg_weight"], loop["pos_weight"]), tr["seed"] + 7919 * rank)

        # Every replica runs the same number of steps (each step all-reduces): enough for the
        # largest shard; a replica whose rows ran out adds empty batches.
        sizes = _all_sum(strategy, tf, np.where(np.arange(world) == rank, [[x.shape[0]], [x_val.shape[0]]], 0.0))
        local_batch = -(-batch_size_for(int(sizes[0].sum()), tr) // world)  # the global batch local training would use
        rng = np.random.default_rng(tr["seed"] + 1000 * (rank + 1))
        steps = fitting.steps_per_pass(int(sizes[0].max()), local_batch)
        val_steps = max(1, fitting.steps_per_pass(int(sizes[1].max()), fitting.VALIDATION_BATCH))
        train_batches = fitting.batches(x, y, local_batch, rng, steps=steps, endless=True)
        val_batches = fitting.batches(x_val, y_val, fitting.VALIDATION_BATCH, steps=val_steps)

        def report_epoch(epoch, logs):
            if not (training.stop_training or epoch == tr["epochs"] - 1):
                report({"epoch": epoch + 1, **{k: float(logs[k]) for k in fitting.HISTORY_KEYS}})

        result = training.fit(
            strategy.distribute_datasets_from_function(lambda _: train_batches),
            steps_per_epoch=steps,
            validation_data=strategy.distribute_datasets_from_function(lambda _: val_batches),
            epochs=tr["epochs"],
            verbose=0,
            shuffle=False,
            callbacks=fitting.callbacks(tr, logs=rank == 0, extra=[keras.callbacks.LambdaCallback(on_epoch_end=report_epoch)]),
        )
    return model, fitting.history_of(result)


def _fit_with_ray_train(fit_rows, val_rows, cfg: dict, n_features: int, initial: list, class_weights, workers: int):
    """Run ``_train_loop`` on ``workers`` Ray Train workers; (final weights, history) from rank 0's checkpoint."""
    import json

    from ray.train import CheckpointConfig, DataConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.tensorflow import TensorflowTrainer

    from .runtime import cluster_cpus

    ray = import_ray()
    # The logs a config asks for go where the user pointed, not into a Ray worker's working folder.
    logs = {key: str(Path(cfg["train"][key]).resolve()) for key in ("tensorboard_dir", "csv_log") if cfg["train"][key]}
    cfg = {**cfg, "train": {**cfg["train"], **logs}}
    # Fractional CPUs so the workers fit next to Ray Data's tasks on a cluster no larger than
    # them (a laptop); TensorFlow's threads are not bound by Ray's accounting either way.
    cpus = min(1.0, cluster_cpus(ray) / (workers + 1))
    # One dataset per worker and dataset, which Ray Train hands every worker unsplit (each
    # reads only its own): its own split either drops up to N-1 rows (equal=True) or cuts
    # at block boundaries, which on small data can leave a worker nothing. These shards
    # differ by at most one row.
    datasets = {}
    for name, ds in (("train", fit_rows), ("validation", val_rows)):
        total = ds.count()
        for rank, part in enumerate(ds.split_at_indices([total * i // workers for i in range(1, workers)])):
            datasets[f"{name}_{rank}"] = part
    with tempfile.TemporaryDirectory(prefix="spamclf-ray-train-") as storage:
        trainer = TensorflowTrainer(
            _train_loop,
            train_loop_config={
                "config": cfg, "n_features": n_features, "initial": initial,
                "neg_weight": class_weights[0], "pos_weight": class_weights[1],
            },
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": cpus}),
            datasets=datasets,
            dataset_config=DataConfig(datasets_to_split=[]),
            run_config=RunConfig(name="spamclf", storage_path=storage, checkpoint_config=CheckpointConfig(num_to_keep=1)),
        )  # fmt: skip
        try:
            result = trainer.fit()
        except TrainingFailedError as exc:  # a worker's traceback, many lines: its last line says what failed
            failures = getattr(exc, "worker_failures", None) or {}
            lines = [line for e in failures.values() for line in str(e).strip().splitlines()[-1:]] or str(exc).strip().splitlines()[-1:]
            raise SpamclfError(f"training on Ray failed: {lines[0] if lines else type(exc).__name__}") from None
        with result.checkpoint.as_directory() as folder:
            with np.load(Path(folder) / "weights.npz", allow_pickle=False) as npz:
                weights = [npz[f"w{i}"] for i in range(len(npz.files))]
            history = json.loads((Path(folder) / "history.json").read_text())
    return weights, history


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

    Same arguments and summary as :func:`spamclf.commands.train.train`, plus ``workers`` and
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
    from ..config import load_config
    from ..mail.extract import ExtractOptions
    from ..model.network import class_weights
    from ..mail.sources import SkipLog
    from ..commands.train import finish_training, split_for_training
    from ..model.bundle import check_replaceable

    if workers < 1:
        raise SpamclfError("--workers must be at least 1")
    cfg = load_config(config, overrides)  # a dict is checked like a file
    models_dir = Path(models_dir)
    check_replaceable(models_dir, force)  # as local training: before the expensive part, not after it
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
        meta = messages.select_columns(["key", "path", "label", "digest", "truncated", "error", "skip"]).to_arrow_refs()
        import pyarrow as pa

        tables = [t for t in ray.get(meta) if t.num_rows]
        meta_table = pa.concat_tables(tables) if tables else _read_schema().empty_table()
        keys, dataset = _kept(meta_table, skips)
        labels = dataset.y
        fit_idx, val_idx = split_for_training(dataset, cfg)
        dropped = np.setdiff1d(meta_table["key"].to_numpy(), keys)  # unreadable, duplicates and passed over: few
        kept = messages.map_batches(_select, fn_kwargs={"dropped": dropped}, batch_format="pyarrow").materialize()

        # 2. vocabulary and IDF by a distributed count
        settings = dict(cfg["features"])
        features = fit_features_on_ray(kept.select_columns(["text"]), len(keys), settings)
        import click

        if progress:
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
        from ..model.network import build_model, seed_everything

        tr, md = cfg["train"], cfg["model"]
        seed_everything(tr["seed"])
        model = build_model(features.n_features, md["units"], md["dropout"], md["l2"], tr["learning_rate"])
        final, history = _fit_with_ray_train(
            fit_rows, val_rows, cfg, features.n_features, model.get_weights(), class_weights(labels[fit_idx], tr["class_weight"]), workers
        )
        if progress:  # the workers' own output stays on the cluster; the epochs, as local training shows them
            for epoch in range(len(history["loss"])):
                shown = ", ".join(f"{k} {history[k][epoch]:.4f}" for k in sorted(history))
                click.echo(f"epoch {epoch + 1}/{tr['epochs']}: {shown}", err=True)
        x_val, y_val = _csr(_table(ray.get(val_rows.to_arrow_refs())), features.n_features)
    model.set_weights(final)
    summary = finish_training(
        Path(models_dir), model, features, cfg, dataset, data, len(fit_idx), x_val, y_val.astype(np.int64), history, force,
        engine={"name": "ray", "workers": workers, "ray": _ray_version()},
    )
    summary["engine"] = {**summary.get("engine", {"name": "ray", "workers": workers}), "seconds": round(time.perf_counter() - started, 3)}
    return summary


def _ray_version() -> str:
    return import_ray().__version__


def _select(batch, dropped):
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = pc.invert(pc.is_in(batch["key"], value_set=pa.array(np.asarray(dropped, dtype=np.int64))))
    return batch.filter(keep).select(["key", "label", "text"])

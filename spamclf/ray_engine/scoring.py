"""Batch scoring on Ray Data: the rows of ``spamclf predict``, computed across a cluster.

The pipeline is two ``map_batches`` stages:

1. reading: the driver walks the inputs with spamclf's own walker (so hidden and backup
   files are skipped exactly as locally) and hands out *files*; each worker reads its
   files with :func:`spamclf.mail.sources.iter_inputs`, so an mbox, a CSV or a Parquet file is
   expanded into its messages on the worker, and an unreadable file becomes an error row;
2. scoring: an actor per worker loads the bundle once (``Classifier.load`` verifies the
   manifest) and scores batches with :meth:`Classifier.predict_items`, the code local
   ``predict`` runs, so the rows are the same: ``path, score, label, error``.

Actors that die are restarted and their batch is retried (Ray's ``max_restarts`` and
``max_task_retries``); a batch's rows are only emitted when it returns, so every input
still gets exactly one row. On a cluster the inputs and the models directory must be at
the same path on every node (shared storage), as for ``ray.data.read_binary_files``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import SpamclfError
from .runtime import cluster_cpus, import_ray, log_skip_entry, ray_session, skip_entries

# Test hook: a worker that finds this file deletes it and dies before returning its batch,
# once per file (unlinking is atomic), so tests can kill a worker mid-run without mocks.
# Unset, it costs one environment lookup per batch.
CRASH_MARKER_ENV = "SPAMCLF_RAY_CRASH_MARKER"
OUT_FORMATS = ("parquet", "jsonl", "csv")
_FILES_PER_BLOCK = 64


def _schema():
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("score", pa.float64()), ("label", pa.string()), ("error", pa.string())])


def _with_skip(schema):
    """``schema`` with the column that carries what reading a file passed over (see ``_ReadFiles``)."""
    import pyarrow as pa

    return schema.append(pa.field("skip", pa.string()))


def _message_schema():
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("bytes", pa.binary()), ("text", pa.string()), ("error", pa.string())])


def _maybe_crash(calls: int) -> None:
    """Test hook: exit this worker process if the marker file exists and this is at least its
    N-th batch (N: the file's content, default 1). The first worker to delete the file dies."""
    marker = os.environ.get(CRASH_MARKER_ENV)
    if not marker or not os.path.exists(marker):
        return
    try:
        with open(marker) as fh:
            at = int(fh.read().strip() or 1)
        if calls < at:
            return
        os.unlink(marker)
    except (OSError, ValueError):
        return
    os._exit(1)


class _ReadFiles:
    """Files in, their messages out: one row per message, one error row per unreadable file.

    ``skips=True``: also what reading passed over inside a file (a table with no rows, a corrupt
    compressed tail), which local ``predict`` logs: one more row each, with only ``path`` and
    ``skip`` (the SkipLog entry as JSON) set, in the order reading met it. The driver takes those
    rows out (:func:`_split_skips`), so they reach the caller's skip log and not its results.
    """

    def __init__(self, max_bytes: int, skips: bool = False) -> None:
        self.max_bytes = max_bytes
        self.skips = skips

    def __call__(self, batch):
        import pyarrow as pa

        from ..mail.sources import SkipLog, iter_inputs

        rows = {"path": [], "bytes": [], "text": [], "error": [], "skip": []}
        log = SkipLog()

        def add(path, raw=None, text=None, error=None, skip=None):
            for key, value in zip(rows, (path, raw, text, error, skip)):
                rows[key].append(value)

        for source in batch["source"].to_pylist():
            for item in iter_inputs([source], self.max_bytes, log if self.skips else None):
                add(item.path, item.raw, item.text, item.error)
            for path, entry in skip_entries(log):  # logged once the file's last message was read
                add(path, skip=entry)
        if not self.skips:
            del rows["skip"]
            return pa.table(rows, schema=_message_schema())
        return pa.table(rows, schema=_with_skip(_message_schema()))


def _split_skips(rows: Iterable[dict], skips) -> Iterator[dict]:
    """``rows`` without the skip rows of ``_ReadFiles(skips=True)``, whose entries go to ``skips``."""
    for row in rows:
        if row.get("skip") is None:
            yield row
        else:
            log_skip_entry(row["skip"], skips)


class _Score:
    """The bundle, loaded and verified once per worker; batches of messages in, prediction rows out."""

    def __init__(self, settings: dict) -> None:
        from ..commands.predict import Classifier

        s = settings
        self.clf = Classifier.load(s["models_dir"])
        self.max_bytes = s["max_bytes"]
        self.threshold, self.ham_cutoff = s["threshold"], s["ham_cutoff"]
        self.path_column, self.bytes_column = s["path_column"], s["bytes_column"]
        self.calls = 0

    def __call__(self, batch):
        import pyarrow as pa

        from ..commands.predict import Prediction
        from ..mail.sources import Item

        read = None  # (path, skip) of every row read, skip rows included
        if self.max_bytes is not None:  # a batch of files: read them here, in the same worker
            batch = _ReadFiles(self.max_bytes, skips=True)(batch)
            read = list(zip(batch["path"].to_pylist(), batch["skip"].to_pylist()))
            batch = _without_skip_rows(batch)
        paths = batch[self.path_column].to_pylist()
        raws = batch[self.bytes_column].to_pylist()
        texts = batch["text"].to_pylist() if "text" in batch.column_names else [None] * len(paths)
        errors = batch["error"].to_pylist() if "error" in batch.column_names else [None] * len(paths)
        items = []
        for path, raw, text, error in zip(paths, raws, texts, errors):
            if error is None and raw is None and text is None:
                error = "no message bytes"
            items.append(Item(path=str(path), raw=raw, text=text, error=error))
        rows = list(self.clf.predict_items(items, self.threshold, batch_size=max(1, len(items)), ham_cutoff=self.ham_cutoff))
        self.calls += 1
        _maybe_crash(self.calls)
        if read is None:
            return _rows_table(rows)
        scored = iter(rows)  # one per message, in order: the skip rows go back between them
        rows = [next(scored) if skip is None else Prediction(path, None, None) for path, skip in read]
        return _rows_table(rows).append_column("skip", pa.array([skip for _, skip in read], pa.string()))


def _rows_table(rows):
    """Prediction rows as a ``path, score, label, error`` table."""
    import pyarrow as pa

    columns = {key: [getattr(r, key) for r in rows] for key in _schema().names}
    return pa.table(columns, schema=_schema())


def score_dataset(
    ds,
    models_dir: str | Path,
    *,
    threshold: float | None = None,
    ham_cutoff: float | None = None,
    workers: int | None = None,
    batch_size: int = 256,
    path_column: str = "path",
    bytes_column: str = "bytes",
    num_cpus: float = 1.0,
    _read_files_max_bytes: int | None = None,
):
    """Score a Ray Dataset of raw messages; returns a Dataset of ``path, score, label, error`` rows.

    ``ds`` has a path column and a bytes column (``ray.data.read_binary_files(...,
    include_paths=True)`` makes exactly that); rows with an ``error`` column set, or no bytes,
    become error rows. One output row per input row, in input order. ``workers``: scoring
    actors (default: one per CPU of the cluster), each reserving ``num_cpus``; leave CPUs free
    (fewer workers, or ``num_cpus=0.5``) when stages before this one need CPUs of their own,
    or they wait for the actors forever. Must run inside a Ray runtime.
    """
    from ..commands.predict import Classifier

    models_dir = str(Path(models_dir).resolve())
    clf = Classifier.load(models_dir)  # fail here, in one line, rather than in every actor
    clf.cutoffs(threshold, ham_cutoff)
    ray = import_ray()
    n = workers or cluster_cpus(ray)
    settings = {
        "models_dir": models_dir,
        "threshold": threshold,
        "ham_cutoff": ham_cutoff,
        "path_column": path_column,
        "bytes_column": bytes_column,
        "max_bytes": _read_files_max_bytes,
    }
    # Ray Data gives actor pools max_restarts=-1 and max_task_retries=-1: a dead actor is
    # replaced and its batch runs again (tests/ray_engine/test_ray.py kills one to check).
    return ds.map_batches(_Score, fn_constructor_kwargs={"settings": settings}, batch_size=batch_size, batch_format="pyarrow", concurrency=n, num_cpus=num_cpus)


def list_files(inputs: Iterable[str | Path], skips=None) -> list[str]:
    """The files ``predict`` reads for ``inputs``, in its order; hidden and backup files logged to ``skips``.

    A missing input stays in the list: reading it gives its "no such file or folder" row.
    """
    from ..mail.sources import walk_files

    files = []
    for src in inputs:
        if str(src) == "-":
            raise SpamclfError("--engine ray reads files and folders, not stdin ('-')")
        path = Path(src)
        if path.is_dir():
            files += [str(file) for file in walk_files(path, skips)]
        else:
            files.append(str(src))
    return files


def _files_dataset(files: list[str]):
    ray = import_ray()
    return ray.data.from_items([{"source": f} for f in files], override_num_blocks=max(1, -(-len(files) // _FILES_PER_BLOCK)))


def read_messages(inputs: Iterable[str | Path], max_bytes: int, skips=None):
    """A Ray Dataset of the messages in ``inputs`` (files and folders): ``path, bytes, text, error``.

    The driver only lists files; Ray tasks read them, expanding mailboxes and tables. Must run
    inside a Ray runtime. ``skips`` gets the files the walk passes over; what reading passes over
    inside a file (a table with no rows, a corrupt compressed tail) is logged by ``predict
    --engine ray`` (:func:`iter_predictions`, :func:`write_scores`), not here.
    """
    files = list_files(inputs, skips)
    if not files:
        return import_ray().data.from_arrow(_message_schema().empty_table())
    # Plain tasks, retried when a worker dies: reading has no state worth an actor.
    return _files_dataset(files).map_batches(
        _read_batch, fn_kwargs={"max_bytes": max_bytes}, batch_size=_FILES_PER_BLOCK, batch_format="pyarrow",
        ray_remote_args_fn=lambda: {"max_retries": -1},
    )


def _read_batch(batch, max_bytes: int):
    return _ReadFiles(max_bytes)(batch)


def _max_bytes(models_dir: str | Path) -> int:
    from ..model.bundle import load_bundle
    from ..mail.extract import ExtractOptions

    return ExtractOptions.from_config(load_bundle(models_dir).config).max_bytes


def _pipeline(inputs, models_dir, threshold, ham_cutoff, workers, skips):
    """Files in, rows out, in one stage: each actor reads its files and scores them (no second
    stage competing with the actors for CPUs)."""
    files = list_files(inputs, skips)
    if not files:
        return import_ray().data.from_arrow(_schema().empty_table())
    return score_dataset(
        _files_dataset(files), models_dir, threshold=threshold, ham_cutoff=ham_cutoff, workers=workers,
        batch_size=_FILES_PER_BLOCK, path_column="path", _read_files_max_bytes=_max_bytes(models_dir),
    )


def iter_predictions(
    inputs: Sequence[str | Path],
    models_dir: str | Path,
    *,
    threshold: float | None = None,
    ham_cutoff: float | None = None,
    workers: int | None = None,
    address: str | None = None,
    skips=None,
) -> Iterator:
    """Predictions for ``inputs`` computed on Ray, streamed back in input order (``Prediction`` rows).

    Starts a local Ray runtime (``workers`` CPUs), or joins the cluster at ``address``; it is
    shut down when the iterator is exhausted or closed.
    """
    _max_bytes(models_dir)  # a bad bundle, or no Ray, fails here, before a caller prints anything
    import_ray()
    return _iter_predictions(inputs, models_dir, threshold, ham_cutoff, workers, address, skips)


def _iter_predictions(inputs, models_dir, threshold, ham_cutoff, workers, address, skips) -> Iterator:
    from ..commands.predict import Prediction

    with ray_session(address, num_cpus=workers):
        scored = _pipeline(inputs, models_dir, threshold, ham_cutoff, workers, skips)
        for row in _split_skips(scored.iter_rows(), skips):
            yield Prediction(row["path"], row["score"], row["label"], row["error"])


def _without_skip_rows(block):
    """``block`` without the skip rows of ``_ReadFiles(skips=True)`` and their column."""
    import pyarrow.compute as pc

    return block.filter(pc.is_null(block["skip"])).drop_columns(["skip"])


def write_scores(
    inputs: Sequence[str | Path],
    models_dir: str | Path,
    out: str | Path,
    *,
    out_format: str = "parquet",
    threshold: float | None = None,
    ham_cutoff: float | None = None,
    workers: int | None = None,
    address: str | None = None,
    skips=None,
) -> dict:
    """Score ``inputs`` on Ray and write the rows to the folder ``out`` (Parquet, JSON Lines or CSV files).

    Returns ``{"out", "format", "rows", "scored", "failed", "workers", "seconds"}``; ``seconds``
    runs from the Ray runtime being up to the files written.
    """
    if out_format not in OUT_FORMATS:
        raise SpamclfError(f"output format must be one of {', '.join(OUT_FORMATS)}, got {out_format!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SpamclfError(f"output folder {out} is not empty")
    _max_bytes(models_dir)
    import pyarrow.compute as pc

    with ray_session(address, num_cpus=workers) as ray:
        started = time.perf_counter()
        n_workers = workers or cluster_cpus(ray)
        scored = _pipeline(inputs, models_dir, threshold, ham_cutoff, n_workers, skips).materialize()
        # Counted from the blocks already in the object store, one at a time: a Ray job for
        # two sums costs seconds of worker start-up.
        rows = failed = 0
        for ref in scored.to_arrow_refs():
            block = ray.get(ref)
            if block.num_rows:
                passed_over = block.filter(pc.is_valid(block["skip"]))["skip"].to_pylist()
                for entry in passed_over:
                    log_skip_entry(entry, skips)
                rows += block.num_rows - len(passed_over)
                failed += block.num_rows - block["error"].null_count  # a skip row has no error
            del block
        scored = scored.map_batches(_without_skip_rows, batch_format="pyarrow")
        out_path = str(out.resolve())
        if out_format == "parquet":
            scored.write_parquet(out_path)
        elif out_format == "jsonl":
            scored.write_json(out_path)
        else:
            scored.write_csv(out_path)
        seconds = time.perf_counter() - started
    return {
        "out": str(out),
        "format": out_format,
        "rows": rows,
        "scored": rows - failed,
        "failed": failed,
        "workers": n_workers,
        "seconds": round(seconds, 3),
    }

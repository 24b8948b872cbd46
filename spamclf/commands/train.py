"""``spamclf train``: labelled data in, a verified models directory out."""

from __future__ import annotations

import datetime as dt
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from .. import __version__
from ..model.bundle import check_replaceable, save_bundle
from ..config import load_config
from ..mail.labelled import count_labelled, require_trainable, stratified_split
from ..mail.extract import ExtractOptions
from ..model.features import TfidfFeatures, merge_counted
from ..reports.metrics import classification_metrics, threshold_for_fpr
from ..model.scorer import forward


WORKER_NICE = 5  # the extraction workers' niceness while TensorFlow imports (see ``train``)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "spamclf": __version__}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "scikit-learn", "numpy", "scipy"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def choose_threshold(y_val: np.ndarray, val_scores: np.ndarray, train_cfg: dict) -> float:
    """The decision threshold: ``min_threshold``, raised if needed to keep validation FPR at ``target_fpr``."""
    threshold = train_cfg["min_threshold"]
    if train_cfg["target_fpr"] is not None:
        threshold = max(threshold, threshold_for_fpr(y_val, val_scores, train_cfg["target_fpr"]))
    return float(min(threshold, 0.999999))


def train(
    data: list[str] | tuple[str, ...],
    models_dir: str | Path,
    config: str | Path | dict | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    force: bool = False,
    progress: bool = True,
    jobs: int | None = 0,
) -> dict:
    """Train on labelled ``data`` and save the bundle to ``models_dir``. Returns a summary dict.

    ``config`` is a YAML path, a dict of sections, or None for the defaults; ``overrides``
    are ``section.key=value`` strings applied on top. ``jobs``: processes extracting the mail
    (0: one per CPU; 1: none).
    """
    cfg = load_config(config, overrides)  # a dict is checked like a file
    models_dir = Path(models_dir)
    check_replaceable(models_dir, force)  # fail before the expensive part, not after it

    from ..model.network import preload_keras

    features = TfidfFeatures.from_config(cfg)
    # TensorFlow's import (seconds) overlaps reading and extracting the mail. It starts once the
    # extraction workers exist: forked from a process with one thread, they need not start from a
    # fresh interpreter (a fork server) and import everything again. The workers run at a lower
    # priority: the import is the longer of the two, and once the workers are done the import and
    # the main thread's counting share one interpreter lock, one core between them.
    dataset = count_labelled(
        data, ExtractOptions.from_config(cfg), features, progress=progress, jobs=jobs, started=preload_keras,
        worker_nice=WORKER_NICE,
    )
    return train_dataset(dataset, models_dir, cfg, sources=data, force=force, progress=progress)


def split_for_training(dataset, cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fit and validation indices: refuses data a classifier cannot learn and validate on."""
    require_trainable(dataset)
    labels = dataset.y
    if len(dataset) < 4 or min(np.bincount(labels, minlength=2)) < 2:
        from ..errors import DataError

        raise DataError(f"too few messages to train and validate: {dataset.counts()}; need at least 2 of each class")
    return stratified_split(labels, cfg["train"]["validation_split"], cfg["train"]["seed"])


def finish_training(
    models_dir: Path, model, features: TfidfFeatures, cfg: dict, dataset, sources, n_fit: int,
    x_val, y_val: np.ndarray, history: dict, force: bool, engine: dict | None = None, counted=None,
) -> dict:
    """Threshold on the validation rows, metadata, the bundle written: what both engines do after fitting.

    ``counted``: the training examples' merged term counts (``merge_counted``), where loading
    counted them with their keys (local training): the bundle's store holds them, so ``learn``,
    ``forget`` and ``relearn`` cover them. Otherwise (Ray) the store is empty and marked
    ``partial``: the network was fitted on examples it lacks.
    """
    from ..model.network import dense_weights

    layers = dense_weights(model)
    val_scores = forward(x_val, layers)
    threshold = choose_threshold(y_val, val_scores, cfg["train"])
    val_metrics = classification_metrics(y_val, val_scores, threshold)
    metadata = {
        "threshold": threshold,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "spamclf_version": __version__,
        "versions": package_versions(),
        "data": {
            "sources": [str(s) for s in sources],
            "fingerprint": dataset.fingerprint(),
            **dataset.stats(),
            "train_messages": int(n_fit),
            "validation_messages": int(len(y_val)),
        },
        "n_features": features.n_features,
        "epochs_run": len(history.get("loss", [])),
        "validation_metrics": val_metrics,
    }
    if engine is not None:
        metadata["engine"] = engine
    metadata["data"].pop("skipped_messages")  # the full list is returned, not stored in every bundle
    save_bundle(models_dir, model, layers, features, cfg, metadata, history, force=force, store=_training_store(dataset, n_fit, counted))
    return {
        "models_dir": str(models_dir),
        "threshold": threshold,
        "n_features": features.n_features,
        "epochs_run": metadata["epochs_run"],
        "data": {**dataset.stats(), "fingerprint": metadata["data"]["fingerprint"]},
        "validation_metrics": val_metrics,
        "history": history,
    }


def _training_store(dataset, n_fit: int, counted) -> dict:
    """What ``save_bundle`` writes as the store of a trained bundle (see ``finish_training``)."""
    from ..model.online import Store

    if counted is not None and len(dataset.keys) == len(dataset):
        arrays = Store.training_arrays(*counted, dataset.keys, dataset.labels, {"trained": True})
        arrays["state"]["refit_size"] = len(arrays["keys"])
        return arrays
    store = Store()
    store.state.update(trained=True, refit_size=int(n_fit), partial=True)
    return store.arrays()


def train_dataset(
    dataset, models_dir: str | Path, cfg: dict, sources=(), force: bool = False, progress: bool = True
) -> dict:
    """Train on already loaded (extracted) labelled data; ``train`` and the accuracy benchmark's folds share this."""
    fit_idx, val_idx = split_for_training(dataset, cfg)
    labels = dataset.y
    features = TfidfFeatures.from_config(cfg)
    counted = merge_counted(dataset.term_counts, features.settings()) if dataset.term_counts else None
    x = features.fit_counts(*counted) if counted else features.fit_transform(dataset.texts)

    from ..model.network import fit

    model, history = fit(x[fit_idx], labels[fit_idx], x[val_idx], labels[val_idx], cfg, progress=progress)
    return finish_training(
        Path(models_dir), model, features, cfg, dataset, sources, len(fit_idx), x[val_idx], labels[val_idx], history, force,
        counted=counted,
    )

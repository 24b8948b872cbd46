"""Learning from corrections: ``Classifier.learn``, ``forget``, ``relearn`` and ``save``, and ``spamclf.relearn``.

One code path for the Python API, ``spamclf learn`` and the daemon. The model that learns is in
:mod:`spamclf.model.online`; this module reads the messages (as ``predict`` does), keys them,
extracts the new ones with spamclf's own headers stripped, and saves. Writers of a models directory hold
``models_lock`` around load, learn and save (``relearn`` below does); ``save`` refuses to replace a
bundle that another process replaced since this one was loaded.
"""

from __future__ import annotations

import datetime as dt
import shutil
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import __version__
from ..config import load_config
from ..errors import BundleError, DataError, UsageError
from ..mail.extract import extract
from ..mail.header_block import strip_own_headers
from ..mail.sources import Item, iter_inputs
from ..model.bundle import MODEL_FILE, NO_BUNDLE, Bundle, save_bundle, sha256_file
from ..model.features import TfidfFeatures
from ..mail.labelled import item_key
from ..model.online import Learner, Store, models_lock, parse_labels
from .predict import Classifier

CHUNK = 32  # new messages per online step when one call learns many
EMPTY_HISTORY = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}

__all__ = ["new_classifier", "learn", "forget", "relearn", "save", "relearn_models", "models_lock"]


def new_classifier(models_dir: str | Path, config=None) -> Classifier:
    """An empty learner bound to ``models_dir`` (where there is no bundle yet)."""
    cfg = load_config(config)
    features = TfidfFeatures.fitted(cfg["features"], [], np.zeros(0, np.float32))
    learner = Learner(cfg, features, None, Store(), cfg["train"]["min_threshold"])
    metadata = {"threshold": learner.threshold, "spamclf_version": __version__}
    bundle = Bundle(path=Path(models_dir), features=features, layers=learner.layers, config=cfg, metadata=metadata)
    clf = Classifier(bundle, learner)
    clf._disk_id = NO_BUNDLE
    return clf


def _learner(clf: Classifier) -> Learner:
    """The classifier's learner, made from its bundle on first use (format 1: an empty store)."""
    if clf._learner is None:
        bundle = clf.bundle
        store = Store.from_bundle(bundle.store_bytes, bundle.path)
        if not bundle.store_bytes:  # a format 1 bundle: a trained network, its examples not kept
            store.state.update(trained=True, refit_size=int(bundle.metadata.get("data", {}).get("train_messages", 0)), partial=True)
        clf._learner = Learner(bundle.config, bundle.features, bundle.layers, store, bundle.threshold)
    return clf._learner


def _sync(clf: Classifier) -> None:
    """What the classifier scores with, from its learner: nothing is read from disk."""
    learner = clf._learner
    clf.bundle.features = clf.features = learner.features
    clf.bundle.layers = learner.layers


def _as_list(messages) -> list:
    if isinstance(messages, (str, Path, bytes, bytearray, memoryview)):
        return [messages]
    return list(messages)


def _items(clf: Classifier, messages: list) -> Iterator[tuple[int, Item]]:
    """(index of the input, Item) for every message of every input: paths as ``predict`` reads them, raw
    bytes, or Items already read (``spamclf learn`` reads its inputs itself, to show progress)."""
    max_bytes = clf.options.max_bytes
    for i, message in enumerate(messages):
        if isinstance(message, Item):
            yield i, message
        elif isinstance(message, (bytes, bytearray, memoryview)):
            raw = bytes(message)
            yield i, Item(f"<message {i + 1}>", raw=raw[:max_bytes], truncated=len(raw) > max_bytes)
        elif isinstance(message, (str, Path)):
            for item in iter_inputs([message], max_bytes):
                yield i, item
        else:
            raise UsageError(f"message {i + 1} is a {type(message).__name__}: give a path or the message's bytes")


def _text(clf: Classifier, item: Item) -> str:
    """The text a message is learned from: extracted with spamclf's own header fields (``X-Spam-*``,
    ``X-Forged-Spam-*``) removed. (``item_key`` removes them for the key itself.)"""
    return item.text if item.text is not None else extract(strip_own_headers(item.raw), clf.options, tidy=False)


def learn(clf: Classifier, messages, labels) -> dict:
    messages = _as_list(messages)
    wanted = parse_labels(labels, len(messages))  # before anything is read
    learner = _learner(clf)
    store = learner.store
    counts = {"learned": 0, "relabelled": 0, "unchanged": 0}
    errors: list[dict] = []
    changed: list[int] = []
    for i, item in _items(clf, messages):
        if item.error is not None:
            errors.append({"path": item.path, "error": item.error})
            continue
        key = item_key(item)
        outcome = learner.add(key, wanted[i], partial(_text, clf, item))
        counts[outcome] += 1
        if outcome == "unchanged":
            continue
        changed.append(store.where[key])
        if len(changed) >= CHUNK:
            learner.update(changed)
            changed = []
    if changed:
        learner.update(changed)
    _sync(clf)
    return {**counts, "errors": errors}


def forget(clf: Classifier, messages) -> dict:
    messages = _as_list(messages)
    learner = _learner(clf)
    counts = {"forgotten": 0, "unknown": 0}
    errors: list[dict] = []
    for _, item in _items(clf, messages):
        if item.error is not None:
            errors.append({"path": item.path, "error": item.error})
            continue
        counts["forgotten" if learner.remove(item_key(item)) else "unknown"] += 1
    if counts["forgotten"]:
        _refit_after_forget(clf)
    return {**counts, "errors": errors}


def _refit_after_forget(clf: Classifier) -> None:
    """The network made again from the store without the forgotten messages: refitted when the store
    can be, else a fresh network that learns what is left online. A format 1 bundle's network was
    trained on examples the store lacks: it is kept, and forgets at the next refit."""
    learner = clf._learner
    store = learner.store
    if store.state.get("partial"):
        return
    if min(store.class_counts()) >= 2:
        learner.refit()
    else:
        cfg = learner.config
        state = {k: v for k, v in store.state.items() if k not in ("trained", "refit_size")}
        store.state = state
        features = TfidfFeatures.fitted(cfg["features"], [], np.zeros(0, np.float32))
        clf._learner = learner = Learner(cfg, features, None, store, cfg["train"]["min_threshold"])
        learner.update(list(range(len(store))))
    _sync(clf)


def relearn(clf: Classifier) -> dict:
    learner = _learner(clf)
    if not len(learner.store):
        raise DataError(f"{clf.bundle.path} has learned no messages: there is nothing to relearn from")
    history = learner.refit()
    learner.store.state.pop("partial", None)  # the network now comes from the store alone
    _sync(clf)
    ham, spam = learner.store.class_counts()
    return {"messages": ham + spam, "ham": ham, "spam": spam, "n_features": learner.features.n_features, "epochs_run": len(history["loss"])}


def save(clf: Classifier) -> str:
    learner = _learner(clf)
    if learner.features.n_features == 0:
        raise DataError(f"nothing learned yet: {clf.bundle.path} would hold no vocabulary; learn some messages first")
    store = learner.store
    ham, spam = store.class_counts()
    metadata = dict(clf.bundle.metadata)
    metadata.update(
        threshold=learner.threshold,
        n_features=learner.features.n_features,
        spamclf_version=__version__,
        saved=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        learned={"messages": ham + spam, "ham": ham, "spam": spam, "refits": store.state.get("refits", 0)},
    )
    metadata.setdefault("created", metadata["saved"])
    history = getattr(learner, "history", None) or EMPTY_HISTORY
    model = learner.keras_model() if learner.network_changed else _KeptModel(clf.bundle)
    manifest: dict = {}
    save_bundle(
        clf.bundle.path, model, learner.layers, learner.features, clf.bundle.config, metadata, history,
        store=store.arrays(), expect_id=clf._disk_id, manifest_out=manifest,
    )
    learner.network_changed = False
    clf._disk_id = manifest["bundle_id"]
    clf.bundle.manifest, clf.bundle.metadata = manifest, metadata
    return manifest["bundle_id"]


class _KeptModel:
    """``save_bundle``'s model where the network did not change: the bundle's model.keras copied byte for
    byte (checked against the manifest it was loaded with), so saving needs no TensorFlow. ``save_bundle``
    replaces the bundle only while it is still the one loaded, so the copy is of that bundle's file."""

    def __init__(self, bundle: Bundle) -> None:
        self.source = bundle.path / MODEL_FILE
        self.sha256 = bundle.manifest["files"][MODEL_FILE]

    def save(self, path: Path) -> None:
        shutil.copyfile(self.source, path)
        if sha256_file(path) != self.sha256:
            raise BundleError(f"{self.source} changed since it was loaded; load the models directory again")


def relearn_models(models_dir: str | Path, lock_timeout: float | None = None) -> dict:
    """``spamclf train --models DIR --relearn``: rebuild the model at ``models_dir`` from everything
    learned (its store), under its lock, and save it. Returns what ``Classifier.relearn`` does and the new bundle_id."""
    from .predict import load

    with models_lock(models_dir, lock_timeout):
        clf = load(models_dir)
        summary = clf.relearn()
        summary["bundle_id"] = clf.save()
    return summary

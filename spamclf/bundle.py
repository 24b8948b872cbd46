"""The models directory: the one place that lists its files, writes them and reads them back.

A bundle is a fixed list of files, all JSON, NPZ, PNG or ``.keras`` -- never pickle:

==========================  ==========================================================
``model.keras``             the trained Keras model (loaded with safe mode on)
``weights.npz``             the same Dense weights as arrays, for TensorFlow-free scoring
``vocabulary.json``         the TF-IDF vocabulary (terms in column order) and its settings
``idf.npz``                 the TF-IDF IDF weights
``config.json``             the resolved configuration the model was trained with
``metadata.json``           threshold, validation metrics, data fingerprint, versions, date
``history.json``            loss and accuracy per epoch, training and validation
``learning_curves.png``     the same history as a plot
``manifest.json``           SHA-256 of every other file and the spamclf version that wrote it
==========================  ==========================================================

Writing is atomic: the bundle is built in a temporary folder beside the target and
renamed into place when complete. Loading checks the manifest before anything is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .errors import BundleError
from .features import TfidfFeatures

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
WEIGHTS_FILE = "weights.npz"
VOCAB_FILE = "vocabulary.json"
IDF_FILE = "idf.npz"
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.json"
CURVES_FILE = "learning_curves.png"
MANIFEST_FILE = "manifest.json"
BUNDLE_FILES = (MODEL_FILE, WEIGHTS_FILE, VOCAB_FILE, IDF_FILE, CONFIG_FILE, METADATA_FILE, HISTORY_FILE, CURVES_FILE)


@dataclass
class Bundle:
    """Everything a models directory holds, read back without TensorFlow."""

    path: Path
    features: TfidfFeatures
    layers: list[tuple[np.ndarray, np.ndarray]]
    config: dict
    metadata: dict
    manifest: dict = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    @property
    def bundle_id(self) -> str:
        """A short id of this exact bundle: the first 12 hex digits of its manifest's hash."""
        return self.manifest.get("bundle_id", "unknown")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, doc) -> None:
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def save_weights(path: Path, layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
    arrays = {}
    for i, (kernel, bias) in enumerate(layers):
        arrays[f"kernel_{i}"] = kernel
        arrays[f"bias_{i}"] = bias
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    with np.load(path, allow_pickle=False) as npz:
        n = len([k for k in npz.files if k.startswith("kernel_")])
        return [(npz[f"kernel_{i}"].astype(np.float32), npz[f"bias_{i}"].astype(np.float32)) for i in range(n)]


def _write_manifest(folder: Path) -> dict:
    files = {name: sha256_file(folder / name) for name in BUNDLE_FILES}
    body = {"format_version": FORMAT_VERSION, "spamclf_version": __version__, "files": files}
    body["bundle_id"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    write_json(folder / MANIFEST_FILE, body)
    return body


def write_bundle(target: str | Path, fill: Callable[[Path], None], force: bool = False) -> Path:
    """Build a bundle in a temporary folder beside ``target`` with ``fill(folder)``, then move it into place.

    ``fill`` writes every file of BUNDLE_FILES. An existing bundle is replaced only with ``force``.
    """
    target = Path(target)
    if target.exists() and not force:
        raise BundleError(f"models directory {target} already exists; use --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        fill(tmp)
        missing = [name for name in BUNDLE_FILES if not (tmp / name).is_file()]
        if missing:
            raise RuntimeError(f"bundle writer left out {', '.join(missing)}")
        _write_manifest(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "bundle")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def verify(folder: str | Path) -> dict:
    """Check the manifest of ``folder`` against its files; return the manifest or raise BundleError."""
    folder = Path(folder)
    if not folder.exists():
        raise BundleError(f"models directory {folder} does not exist; train one with 'spamclf train'")
    if not folder.is_dir():
        raise BundleError(f"models directory {folder} is not a folder")
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder} is not a spamclf models directory: {MANIFEST_FILE} is missing") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{folder}/{MANIFEST_FILE} is unreadable or not JSON ({exc.__class__.__name__})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{folder}/{MANIFEST_FILE} is not a spamclf manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{folder} was written in bundle format {manifest.get('format_version')!r} "
            f"(spamclf {manifest.get('spamclf_version', '?')}); this spamclf {__version__} reads format {FORMAT_VERSION}"
        )
    listed = manifest["files"]
    if set(listed) != set(BUNDLE_FILES):
        raise BundleError(f"{folder}/{MANIFEST_FILE} does not list the files of a bundle")
    present = {p.name for p in folder.iterdir()}
    extra = sorted(present - set(BUNDLE_FILES) - {MANIFEST_FILE})
    if extra:
        raise BundleError(f"{folder} holds unexpected file {extra[0]}; refusing to load a bundle that was changed")
    for name in BUNDLE_FILES:
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{folder} is incomplete: {name} is missing")
        if sha256_file(path) != listed[name]:
            raise BundleError(f"{folder}/{name} does not match its SHA-256 in the manifest; the bundle was changed")
    return manifest


def load_bundle(folder: str | Path) -> Bundle:
    """Verify, then read a bundle. Raises BundleError with a one-line reason for anything wrong."""
    folder = Path(folder)
    manifest = verify(folder)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        features = TfidfFeatures.load(folder / VOCAB_FILE, folder / IDF_FILE)
        layers = load_weights(folder / WEIGHTS_FILE)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{folder}: cannot read the bundle ({exc})") from None
    if not layers or layers[0][0].shape[0] != features.n_features:
        raise BundleError(
            f"{folder}: the vocabulary has {features.n_features} terms but the model takes "
            f"{layers[0][0].shape[0] if layers else 0} inputs"
        )
    if "threshold" not in metadata:
        raise BundleError(f"{folder}/{METADATA_FILE} has no decision threshold")
    return Bundle(path=folder, features=features, layers=layers, config=config, metadata=metadata, manifest=manifest)

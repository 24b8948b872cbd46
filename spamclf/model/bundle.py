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

Loading checks, in this order, before anything is deserialised: the manifest's format
version, that the folder holds exactly the listed files, every SHA-256, and then the
shape of every file from its bytes (``keras_safety``): NPZ members are float arrays (no
object arrays, so no pickle), the ``.keras`` archive is complete and names only the
layers our network is made of, and the vocabulary, IDF, NumPy weights and Keras input
agree on the number of features. Only then are JSON and NPZ read into objects.

Writing is atomic: the bundle is built in a temporary folder beside the target and
renamed into place when complete; an existing bundle is swapped out in one
``renameat2(RENAME_EXCHANGE)`` on Linux (see ``_install``).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import BundleError
from .features import TfidfFeatures
from .bundle_checks import KerasFacts, UnsafeFile, check_json_file, check_keras_file, check_npz_file, check_png_file

FORMAT_VERSION = 1
READABLE_FORMATS = (1,)  # bump FORMAT_VERSION whenever a file's layout or meaning changes
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

_WEIGHT_NAME = re.compile(r"(kernel|bias)_(\d+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


@dataclass
class Checked:
    """A bundle that passed ``verify``: its manifest and the small JSON files already parsed."""

    manifest: dict
    config: dict
    metadata: dict
    n_features: int
    keras: KerasFacts


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_files(folder: Path, names) -> dict[str, str]:
    """SHA-256 of each named file of ``folder``, two at a time: hashlib lets go of the interpreter
    lock, and the bundle's two 40 MB weight files then hash in half the time (0.04 s, not 0.08)."""
    from concurrent.futures import ThreadPoolExecutor

    names = list(names)
    with ThreadPoolExecutor(2, thread_name_prefix="spamclf-sha256") as pool:
        return dict(zip(names, pool.map(sha256_file, [folder / name for name in names])))


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
        # copy=False: arrays stored as float32 (as spamclf writes them) are used as read, not copied again
        return [(npz[f"kernel_{i}"].astype(np.float32, copy=False), npz[f"bias_{i}"].astype(np.float32, copy=False)) for i in range(n)]


# --- writing ------------------------------------------------------------------------------------


def _write_manifest(folder: Path) -> dict:
    files = _sha256_files(folder, BUNDLE_FILES)
    body = {"format_version": FORMAT_VERSION, "spamclf_version": __version__, "files": files}
    body["bundle_id"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    write_json(folder / MANIFEST_FILE, body)
    return body


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(2)`` through libc; False where the system or file system does not have it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):  # not Linux, or glibc < 2.28
        return False
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def _fsync_tree(folder: Path) -> None:
    """Flush every file and the folder itself, so the renamed bundle survives a power cut whole."""
    for child in folder.iterdir():
        fd = os.open(child, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _install(new: Path, target: Path) -> None:
    """Put the complete bundle ``new`` at ``target``; an old bundle there goes away in the same step.

    On Linux one ``renameat2(RENAME_EXCHANGE)`` swaps the two folders: at every instant ``target``
    is either the whole old bundle or the whole new one. Elsewhere (or on a file system without
    it) two renames are used, and for the moment between them ``target`` does not exist -- a
    reader then gets "does not exist", never a mix of old and new files.
    """
    if target.exists():
        if _renameat2(new, target, _RENAME_EXCHANGE):
            shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old bundle
            return
        old = new.with_name(f".{target.name}.old-" + new.name[len(f".{target.name}.tmp-") :])
        os.rename(target, old)
        try:
            os.rename(new, target)
        except OSError:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    elif not _renameat2(new, target, _RENAME_NOREPLACE):
        os.rename(new, target)


def _stale_dirs(parent: Path, name: str) -> list[Path]:
    """Temporary folders left beside ``name`` by a writer that was killed (its process is gone)."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(?:tmp|old)-(\d+)-.+")
    stale = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink():
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stale.append(entry)
        except (PermissionError, OverflowError, OSError):
            pass  # alive under another user, or unknowable: leave it
    return stale


def check_replaceable(target: Path, force: bool) -> None:
    """Raise BundleError unless ``target`` may be written: absent, or (with ``force``) an existing bundle or empty folder."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if not force:
        raise BundleError(f"models directory {target} already exists; use --force to replace it")
    if target.is_symlink() or not target.is_dir():
        raise BundleError(f"{target} is not a folder; refusing to replace it with a models directory")
    if not (target / MANIFEST_FILE).is_file() and any(target.iterdir()):
        # --force replaces a bundle, never a folder of someone's files given by mistake.
        raise BundleError(f"{target} is not a spamclf models directory (no {MANIFEST_FILE}); refusing to replace it")


def write_bundle(target: str | Path, fill: Callable[[Path], None], force: bool = False) -> Path:
    """Build a bundle in a temporary folder beside ``target`` with ``fill(folder)``, then move it into place.

    ``fill`` writes every file of BUNDLE_FILES and nothing else. An existing bundle is replaced
    only with ``force``, atomically (see ``_install``). Temporary folders left by a killed writer
    (``.NAME.tmp-PID-*``, hidden, never holding a manifest until complete) are removed first.
    """
    target = Path(target)
    check_replaceable(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_dirs(target.parent, target.name):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        fill(tmp)
        written = {p.name for p in tmp.iterdir()}
        missing = [name for name in BUNDLE_FILES if name not in written]
        if missing:
            raise RuntimeError(f"bundle writer left out {', '.join(missing)}")
        extra = sorted(written - set(BUNDLE_FILES))
        if extra:
            raise RuntimeError(f"bundle writer wrote unexpected file {extra[0]}")
        _write_manifest(tmp)  # last: a folder without a manifest is never a bundle
        # Never install a bundle that loading would refuse. The manifest's hashes were just
        # computed from these very files: hashing 80 MB again would take another 0.1 s.
        check_bundle(tmp, verify_hashes=False)
        _fsync_tree(tmp)
        check_replaceable(target, force)  # another writer may have finished meanwhile
        _install(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# --- verifying ----------------------------------------------------------------------------------


def read_manifest(folder: str | Path) -> dict:
    """The parsed manifest of ``folder`` (not yet checked against the files); BundleError if unusable."""
    folder = Path(folder)
    if not folder.exists():
        raise BundleError(f"models directory {folder} does not exist; train one with 'spamclf train'")
    if not folder.is_dir():
        raise BundleError(f"models directory {folder} is not a folder")
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder} is not a spamclf models directory: {MANIFEST_FILE} is missing") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{folder}/{MANIFEST_FILE} is unreadable or not JSON ({exc.__class__.__name__})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{folder}/{MANIFEST_FILE} is not a spamclf manifest")
    return manifest


def file_report(folder: str | Path, manifest: dict) -> dict[str, str]:
    """Each file's state against the manifest: ok, changed, missing or unexpected (for ``inspect``)."""
    folder = Path(folder)
    listed = manifest.get("files", {})
    report = {}
    for name in sorted(set(BUNDLE_FILES) | set(listed)):
        path = folder / name
        if name not in BUNDLE_FILES:
            report[name] = "listed but not a bundle file"
        elif not path.is_file():
            report[name] = "missing"
        elif name not in listed:
            report[name] = "not listed"
        else:
            try:
                report[name] = "ok" if sha256_file(path) == listed[name] else "changed"
            except OSError as exc:
                report[name] = f"unreadable ({exc.strerror or exc})"
    for child in sorted(p.name for p in folder.iterdir()):
        if child not in report and child != MANIFEST_FILE:
            report[child] = "unexpected"
    return report


def _check_manifest(folder: Path, manifest: dict, verify_hashes: bool = True) -> None:
    fmt = manifest.get("format_version")
    if fmt not in READABLE_FORMATS:
        raise BundleError(
            f"{folder} was written in bundle format {fmt!r} by spamclf {manifest.get('spamclf_version', '?')}; "
            f"this spamclf {__version__} reads format {', '.join(map(str, READABLE_FORMATS))}: retrain it"
        )
    if not isinstance(manifest.get("spamclf_version"), str):
        raise BundleError(f"{folder}/{MANIFEST_FILE} does not say which spamclf version wrote it")
    listed = manifest["files"]
    unknown = sorted(set(listed) - set(BUNDLE_FILES))
    if unknown:
        raise BundleError(f"{folder}/{MANIFEST_FILE} lists {unknown[0]}, which is not a bundle file; refusing it")
    if set(listed) != set(BUNDLE_FILES) or not all(isinstance(v, str) and _SHA256.fullmatch(v) for v in listed.values()):
        raise BundleError(f"{folder}/{MANIFEST_FILE} does not list the files of a bundle with their SHA-256")
    try:
        present = {p.name for p in folder.iterdir()}
    except OSError as exc:
        raise BundleError(f"cannot list {folder}: {exc.strerror or exc}") from None
    extra = sorted(present - set(BUNDLE_FILES) - {MANIFEST_FILE})
    if extra:
        raise BundleError(f"{folder} holds unexpected file {extra[0]}; refusing to load a bundle that was changed")
    for name in BUNDLE_FILES:
        path = folder / name
        if path.is_symlink():
            raise BundleError(f"{folder}/{name} is a symbolic link; a bundle holds its own files")
        if not path.is_file():
            raise BundleError(f"{folder} is incomplete: {name} is missing")
    if not verify_hashes:
        return
    try:
        digests = _sha256_files(folder, BUNDLE_FILES)
    except OSError as exc:
        raise BundleError(f"cannot read {folder}/{Path(exc.filename or '?').name}: {exc.strerror or exc}") from None
    for name in BUNDLE_FILES:
        if digests[name] != listed[name]:
            raise BundleError(f"{folder}/{name} does not match its SHA-256 in the manifest; the bundle was changed")


def _weights_widths(shapes: dict[str, tuple[int, ...]]) -> list[tuple[int, int]]:
    """(inputs, outputs) of each Dense layer in weights.npz, checked to chain into one sigmoid output."""
    n = len(shapes) // 2
    if n < 1 or set(shapes) != {f"{kind}_{i}" for i in range(n) for kind in ("kernel", "bias")}:
        raise UnsafeFile(f"{WEIGHTS_FILE} does not hold kernel_0..kernel_N and bias_0..bias_N")
    widths = []
    for i in range(n):
        kernel, bias = shapes[f"kernel_{i}"], shapes[f"bias_{i}"]
        if len(kernel) != 2 or bias != (kernel[1],) or (widths and widths[-1][1] != kernel[0]):
            raise UnsafeFile(f"{WEIGHTS_FILE}: layer {i} has shape {kernel} with bias {bias}, which does not fit its neighbours")
        widths.append(kernel)
    if widths[-1][1] != 1:
        raise UnsafeFile(f"{WEIGHTS_FILE}: the last layer has {widths[-1][1]} outputs, not one spam probability")
    return widths


def check_bundle(folder: str | Path, verify_hashes: bool = True) -> Checked:
    """Verify ``folder`` completely without deserialising anything but JSON; BundleError names the first problem.

    ``verify_hashes=False`` skips comparing the files with their SHA-256 in the manifest: only for
    the writer, which has just hashed them to write the manifest.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    _check_manifest(folder, manifest, verify_hashes)
    try:
        config = check_json_file(folder / CONFIG_FILE)
        metadata = check_json_file(folder / METADATA_FILE)
        check_json_file(folder / HISTORY_FILE)
        check_png_file(folder / CURVES_FILE)
        keras_facts = check_keras_file(folder / MODEL_FILE)
        widths = _weights_widths(check_npz_file(folder / WEIGHTS_FILE, lambda key: bool(_WEIGHT_NAME.fullmatch(key))))
        idf = check_npz_file(folder / IDF_FILE, lambda key: key == "idf")
    except UnsafeFile as exc:
        raise BundleError(f"{folder}: {exc}") from None
    except OSError as exc:
        raise BundleError(f"cannot read {folder}: {exc.strerror or exc}") from None
    if set(idf) != {"idf"} or len(idf["idf"]) != 1:
        raise BundleError(f"{folder}/{IDF_FILE} does not hold one IDF vector")
    n_features = idf["idf"][0]
    inputs = widths[0][0]
    if n_features != inputs:
        raise BundleError(f"{folder}: the vocabulary's IDF has {n_features} terms but the model takes {inputs} inputs")
    if keras_facts.n_inputs != inputs or list(keras_facts.dense_units) != [w[1] for w in widths]:
        raise BundleError(
            f"{folder}: {MODEL_FILE} (inputs {keras_facts.n_inputs}, layers {list(keras_facts.dense_units)}) does not match "
            f"{WEIGHTS_FILE} (inputs {inputs}, layers {[w[1] for w in widths]})"
        )
    threshold = metadata.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise BundleError(f"{folder}/{METADATA_FILE} has no decision threshold between 0 and 1")
    if metadata.get("n_features", n_features) != n_features:
        raise BundleError(f"{folder}/{METADATA_FILE} says {metadata['n_features']} features but the model takes {n_features}")
    config = _resolved_config(folder, config)
    return Checked(manifest=manifest, config=config, metadata=metadata, n_features=int(n_features), keras=keras_facts)


def _resolved_config(folder: Path, doc: dict) -> dict:
    """The bundle's config checked against the schema (keys a newer spamclf added take their defaults)."""
    from ..config import _merge, defaults, validate
    from ..errors import ConfigError

    try:
        config = _merge(defaults(), doc, f"{folder}/{CONFIG_FILE}")
        validate(config)
    except ConfigError as exc:
        raise BundleError(str(exc)) from None
    return config


def verify(folder: str | Path) -> dict:
    """Check ``folder`` against its manifest and the shape of every file; return the manifest or raise BundleError."""
    return check_bundle(folder).manifest


# --- loading ------------------------------------------------------------------------------------


def load_bundle(folder: str | Path) -> Bundle:
    """Verify, then read a bundle. Raises BundleError with a one-line reason for anything wrong."""
    folder = Path(folder)
    checked = check_bundle(folder)  # nothing below runs unless every check passed
    try:
        features = TfidfFeatures.load(folder / VOCAB_FILE, folder / IDF_FILE)
        layers = load_weights(folder / WEIGHTS_FILE)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{folder}: cannot read the bundle ({exc})") from None
    if features.n_features != checked.n_features:
        raise BundleError(
            f"{folder}: the vocabulary has {features.n_features} terms but the model takes {checked.n_features} inputs"
        )
    return Bundle(
        path=folder, features=features, layers=layers, config=checked.config, metadata=checked.metadata, manifest=checked.manifest
    )


def load_keras_model(folder: str | Path):
    """The bundle's Keras model, after the whole bundle is verified (imports TensorFlow)."""
    folder = Path(folder)
    check_bundle(folder)
    from .network import load_model

    return load_model(folder / MODEL_FILE)

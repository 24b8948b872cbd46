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
``store.npz``               the learned examples' term counts (CSR over the store's terms) and labels
``store.json``              the store's terms (column order) and each learned example's key
``manifest.json``           SHA-256 of every other file, the spamclf version that wrote it, bundle_id
==========================  ==========================================================

Format 1 bundles (spamclf before online learning) have no store files; they are read as bundles with
an empty store. The store is what ``learn``, ``forget`` and ``relearn`` work from
(:mod:`spamclf.model.online`); scoring never reads it.

Reading (``_read_folder``) opens the folder once and every file through that handle, and reads
each file's bytes once, no more than its config allows: everything after -- the SHA-256, the
checks, parsing -- works on those bytes, so a bundle replaced while it is read is never seen
half old, half new. ``check_bundle``, ``load_bundle``, ``load_keras_model`` and ``examine``
(for ``inspect``) all read this way.

Loading checks, in this order, before anything is deserialised: the folder is not a writer's
work folder (``.NAME.tmp-PID-*``); the manifest's format version, its file list and
``bundle_id``; that the folder holds exactly the listed files, regular files no larger than the
config allows; every SHA-256; then the shape of every file from its bytes (``keras_safety``):
JSON objects, a PNG, NPZ members that are stored float arrays of exactly the bytes their headers
declare, a ``.keras`` archive that names only our layers; then that the config passes the config schema,
and that the vocabulary's settings, the IDF, the NumPy weights and the Keras config all agree
with it and with each other. Only then are JSON and NPZ read into objects, and those too are
checked: vocabulary terms are words, weights and IDF are finite.

The manifest is an integrity check, not a signature: whoever can write the folder can write a
new manifest. What it guards against is a changed, half-written or mixed bundle; what the checks
behind it guarantee is that any bytes that pass them load bounded and inert.

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
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import BundleError, OutputError
from ..writing import fsync_file, fsync_folder, writer_is_gone
from .features import MAX_TOKEN_CHARS, TfidfFeatures
from .bundle_checks import (
    MAX_CONFIG_BYTES,
    KerasFacts,
    UnsafeFile,
    check_json_bytes,
    check_keras_bytes,
    check_keras_weights,
    check_npz_bytes,
    check_png_bytes,
    npz_arrays,
)

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # bump FORMAT_VERSION whenever a file's layout or meaning changes
MODEL_FILE = "model.keras"
WEIGHTS_FILE = "weights.npz"
VOCAB_FILE = "vocabulary.json"
IDF_FILE = "idf.npz"
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.json"
CURVES_FILE = "learning_curves.png"
STORE_FILE = "store.npz"
STORE_INDEX_FILE = "store.json"
MANIFEST_FILE = "manifest.json"
_FORMAT_1_FILES = (MODEL_FILE, WEIGHTS_FILE, VOCAB_FILE, IDF_FILE, CONFIG_FILE, METADATA_FILE, HISTORY_FILE, CURVES_FILE)
BUNDLE_FILES = (*_FORMAT_1_FILES, STORE_FILE, STORE_INDEX_FILE)  # what this version writes
FILES_OF_FORMAT = {1: _FORMAT_1_FILES, 2: BUNDLE_FILES}
STORE_ARRAYS = {"labels": "i", "indptr": "i", "indices": "i", "counts": "f"}  # store.npz's arrays and their dtype kinds

_WEIGHT_NAME = re.compile(r"(kernel|bias)_(\d+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUNDLE_ID = re.compile(r"[0-9a-f]{12}")
# The hidden folders a writer works in beside its target: ``.NAME.tmp-PID-xxxxxxxx`` (``tempfile.mkdtemp``)
# and, where renameat2 is missing, ``.NAME.old-PID-xxxxxxxx`` for the bundle being replaced.
_WORK_FOLDER = re.compile(r"\..+\.(?:tmp|old)-(\d+)-[a-z0-9_]+")
# Every vocabulary term is what ``features.analyze`` makes: words joined by single spaces.
_TERMS = re.compile(r"(?:\w+(?: \w+)*\n)*")

# The most bytes a file is read into memory with, where its config does not bound it.
JSON_MAX_BYTES = MAX_CONFIG_BYTES  # manifest, config, metadata, history
PNG_MAX_BYTES = 16 << 20
UNBOUNDED_VOCAB_MAX_BYTES = 1 << 30  # vocabulary.json when features.max_features is null
STORE_MAX_BYTES = 1 << 30  # store.npz, store.json: about half a million learned messages at the corpus's 1.8 KB each
_MEMBER_SLACK = 1 << 16  # a zip entry and an .npy header around each array
_READ_TRIES = 10  # times a folder replaced while it is read is read again


@dataclass
class Bundle:
    """Everything a models directory holds, read back without TensorFlow."""

    path: Path
    features: TfidfFeatures
    layers: list[tuple[np.ndarray, np.ndarray]]
    config: dict
    metadata: dict
    manifest: dict = field(default_factory=dict)
    store_bytes: dict[str, bytes] = field(default_factory=dict)  # store.npz and store.json as checked; empty for format 1

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    @property
    def bundle_id(self) -> str:
        """A short id of this exact bundle: the first 12 hex digits of its manifest's hash (checked on load)."""
        return self.manifest["bundle_id"]


@dataclass
class Checked:
    """A bundle that passed every check, read into objects from the bytes that were checked."""

    manifest: dict
    config: dict
    metadata: dict
    n_features: int
    keras: KerasFacts
    features: TfidfFeatures
    layers: list[tuple[np.ndarray, np.ndarray]]
    model_bytes: bytes
    store_bytes: dict[str, bytes] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _two_at_a_time(digest, names) -> dict[str, str]:
    """``digest(name)`` of each of ``names``, two at a time: hashlib lets go of the interpreter lock,
    so the bundle's two large weight files hash side by side."""
    from concurrent.futures import ThreadPoolExecutor

    names = list(names)
    with ThreadPoolExecutor(2, thread_name_prefix="spamclf-sha256") as pool:
        return dict(zip(names, pool.map(digest, names)))


def _sha256_all(blobs: dict[str, bytes]) -> dict[str, str]:
    return _two_at_a_time(lambda name: hashlib.sha256(blobs[name]).hexdigest(), blobs)


def _sha256_files(folder: Path, names) -> dict[str, str]:
    """Each file hashed as it is read, a block at a time: no copy of a whole weights file in memory."""
    return _two_at_a_time(lambda name: sha256_file(Path(folder) / name), names)


def _bundle_id(manifest: dict) -> str:
    """The id the writer gives a manifest: the first 12 hex digits of the SHA-256 of the rest of it."""
    body = {k: v for k, v in manifest.items() if k != "bundle_id"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


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
    """The (kernel, bias) pairs of a ``weights.npz`` (a models directory is read by ``load_bundle``, which checks it first)."""
    with np.load(path, allow_pickle=False) as npz:
        n = len([k for k in npz.files if k.startswith("kernel_")])
        # copy=False: arrays stored as float32 (as spamclf writes them) are used as read, not copied again
        return [(npz[f"kernel_{i}"].astype(np.float32, copy=False), npz[f"bias_{i}"].astype(np.float32, copy=False)) for i in range(n)]


# --- writing ------------------------------------------------------------------------------------


def save_bundle(
    target: str | Path, model, layers: list, features: TfidfFeatures, config: dict, metadata: dict, history: dict, force: bool = False,
    store: dict | None = None, expect_id: str | None = None, manifest_out: dict | None = None,
) -> Path:
    """Write a trained model as a bundle at ``target``: every file of BUNDLE_FILES, then the manifest,
    installed atomically (``write_bundle``). Local and Ray training and online learning save through this.

    ``store``: the learned examples (``online.Store.arrays()``: the arrays of store.npz and the
    ``terms`` and ``keys`` of store.json); None for an empty store. ``expect_id``: replace the
    bundle at ``target`` only if it is still the one with this bundle_id (see ``write_bundle``).
    ``manifest_out``: a dict that receives the manifest written.

    A failure to write (a full disk, a read-only folder) is OutputError: the bundle was built aside,
    and an existing one at ``target`` is unchanged.
    """
    from .learning_curves import learning_curves

    def fill(folder: Path) -> None:
        model.save(folder / MODEL_FILE)
        save_weights(folder / WEIGHTS_FILE, layers)
        features._check_fitted()
        write_json(folder / VOCAB_FILE, {"settings": features.settings(), "vocabulary": features.vocabulary_})
        with open(folder / IDF_FILE, "wb") as fh:
            np.savez(fh, idf=features.idf_)
        write_json(folder / CONFIG_FILE, config)
        write_json(folder / METADATA_FILE, metadata)
        write_json(folder / HISTORY_FILE, history)
        learning_curves(history, folder / CURVES_FILE)
        write_store(folder, store)

    try:
        return write_bundle(target, fill, force=force, expect_id=expect_id, manifest_out=manifest_out)
    except OSError as exc:
        raise OutputError(f"cannot write the models directory {target}: {exc.strerror or exc}; an existing one is unchanged") from exc


def write_store(folder: Path, store: dict | None) -> None:
    """store.npz and store.json of ``store`` (None: no examples) in ``folder``."""
    store = store or {}
    arrays = {
        "labels": np.asarray(store.get("labels", []), np.int8),
        "indptr": np.asarray(store.get("indptr", [0]), np.int64),
        "indices": np.asarray(store.get("indices", []), np.int32),
        "counts": np.asarray(store.get("counts", []), np.float32),
    }
    with open(folder / STORE_FILE, "wb") as fh:
        np.savez(fh, **arrays)
    write_json(folder / STORE_INDEX_FILE, {"terms": list(store.get("terms", [])), "keys": list(store.get("keys", [])), "state": store.get("state", {})})


def _write_manifest(folder: Path) -> dict:
    files = _sha256_files(folder, BUNDLE_FILES)
    body = {"format_version": FORMAT_VERSION, "spamclf_version": __version__, "files": files}
    body["bundle_id"] = _bundle_id(body)
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
        fsync_file(child)
    fsync_folder(folder)


def _remove_bundle_folder(folder: Path) -> None:
    """Delete a bundle's own files from ``folder``, then the folder if that left it empty.

    Never a file a bundle does not name: whatever else someone put there stays, and so does the folder.
    """
    for name in (*BUNDLE_FILES, MANIFEST_FILE):
        try:
            os.unlink(folder / name)
        except OSError:  # absent, or a folder of that name: not ours to remove
            pass
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _install(new: Path, target: Path) -> None:
    """Put the complete bundle ``new`` at ``target``; an old bundle there goes away in the same step.

    On Linux one ``renameat2(RENAME_EXCHANGE)`` swaps the two folders: at every instant ``target``
    is either the whole old bundle or the whole new one. Elsewhere (or on a file system without
    it) two renames are used, and for the moment between them ``target`` does not exist -- a
    reader then gets "does not exist", never a mix of old and new files. The old bundle's files
    are then deleted by name (``_remove_bundle_folder``).
    """
    if target.exists():
        if _renameat2(new, target, _RENAME_EXCHANGE):
            _remove_bundle_folder(new)  # ``new`` now holds the old bundle
            return
        old = new.with_name(f".{target.name}.old-" + new.name[len(f".{target.name}.tmp-") :])
        os.rename(target, old)
        try:
            os.rename(new, target)
        except OSError:
            os.rename(old, target)
            raise
        _remove_bundle_folder(old)
    elif not _renameat2(new, target, _RENAME_NOREPLACE):
        os.rename(new, target)


def _stale_dirs(parent: Path) -> list[Path]:
    """Work folders (``.NAME.tmp-PID-*``, ``.NAME.old-PID-*``, for any NAME) left in ``parent`` by a writer
    that was killed: its process is gone."""
    stale = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _WORK_FOLDER.fullmatch(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink():
            continue
        if writer_is_gone(int(match.group(1))):
            stale.append(entry)
    return stale


def _not_a_bundle(folder: Path) -> str | None:
    """Why ``folder`` is not provably a spamclf bundle that ``--force`` may replace; None if it is one.

    It is one if it is empty, or if its ``manifest.json`` is a spamclf manifest (the bundle's file
    list, each with a SHA-256, and the ``bundle_id`` the writer derives from them) and everything
    else in it is a regular file that manifest lists. The files' contents are not checked: a bundle
    whose files were changed or deleted is still a bundle, replaced whole. A folder that also holds
    anything else -- someone's notes, a subfolder -- is not, and loses nothing.
    """
    try:
        entries = {entry.name: entry for entry in os.scandir(folder)}
    except OSError as exc:
        return f"cannot list it: {exc.strerror or exc}"
    if not entries:
        return None
    manifest_entry = entries.pop(MANIFEST_FILE, None)
    if manifest_entry is None:
        return f"no {MANIFEST_FILE}"
    try:
        if not manifest_entry.is_file(follow_symlinks=False) or manifest_entry.stat().st_size > JSON_MAX_BYTES:
            return f"its {MANIFEST_FILE} is not a spamclf manifest"
        manifest = json.loads((folder / MANIFEST_FILE).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return f"its {MANIFEST_FILE} is not a spamclf manifest"
    problem = _manifest_problem(manifest)
    if problem:
        return f"its {MANIFEST_FILE} {problem}"
    for name, entry in sorted(entries.items()):
        if name not in manifest["files"] or not entry.is_file(follow_symlinks=False):
            return f"it holds {name}, which is not a file of its bundle"
    return None


def check_replaceable(target: Path, force: bool) -> None:
    """Raise BundleError unless ``target`` may be written: absent, or (with ``force``) provably a bundle (see ``_not_a_bundle``)."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if not force:
        raise BundleError(f"models directory {target} already exists; use --force to replace it")
    if target.is_symlink() or not target.is_dir():
        raise BundleError(f"{target} is not a folder; refusing to replace it with a models directory")
    problem = _not_a_bundle(target)
    if problem:
        # --force replaces a bundle, never a folder of someone's files given by mistake.
        raise BundleError(f"{target} is not a spamclf models directory ({problem}); refusing to replace it")


def write_bundle(
    target: str | Path, fill: Callable[[Path], None], force: bool = False, expect_id: str | None = None, manifest_out: dict | None = None
) -> Path:
    """Build a bundle in a temporary folder beside ``target`` with ``fill(folder)``, then move it into place.

    ``fill`` writes every file of BUNDLE_FILES and nothing else. An existing bundle is replaced
    only with ``force``, atomically (see ``_install``). Work folders that killed writers left in
    the same parent (``.NAME.tmp-PID-*``, for any NAME) are removed first, by their bundle files'
    names. Such a folder can hold a complete manifest (a kill between writing it and the rename),
    so loading refuses any folder named like one.

    ``expect_id``: the bundle_id of the bundle the caller read (``NO_BUNDLE``: there was none). The bundle at
    ``target`` is replaced only while it is still that one, checked before building and again just
    before the swap: otherwise BundleError, and the other writer's bundle stays. (Writers that share
    a folder hold ``online.models_lock`` around read, change and write, so nothing comes between
    the last check and the swap.)
    """
    target = Path(target)
    if expect_id is not None:
        _check_unchanged(target, expect_id)
    else:
        check_replaceable(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_dirs(target.parent):
        _remove_bundle_folder(stale)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    installed = False
    try:
        fill(tmp)
        written = {p.name for p in tmp.iterdir()}
        missing = [name for name in BUNDLE_FILES if name not in written]
        if missing:
            raise RuntimeError(f"bundle writer left out {', '.join(missing)}")
        extra = sorted(written - set(BUNDLE_FILES))
        if extra:
            raise RuntimeError(f"bundle writer wrote unexpected file {extra[0]}")
        manifest = _write_manifest(tmp)  # last: a folder without a manifest is never a bundle
        # Never install a bundle that loading would refuse. The manifest's hashes were just
        # computed from these very files: they need no second pass.
        _check(_read_folder(tmp), verify_hashes=False, work_folder=True)
        _fsync_tree(tmp)
        if expect_id is not None:
            _check_unchanged(target, expect_id)
        else:
            check_replaceable(target, force)  # another writer may have finished meanwhile
        _install(tmp, target)
        installed = True
        fsync_folder(target.parent)
        if manifest_out is not None:
            manifest_out.update(manifest)
    finally:
        if not installed and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # our own folder, holding only what ``fill`` wrote
    return target


def current_bundle_id(target: Path) -> str | None:
    """The bundle_id in ``target``'s manifest as it is on disk now; None where there is no bundle there
    (no folder, an empty folder). Not checked beyond the manifest: for telling whether a bundle changed.
    A folder of other files is not "no bundle": a writer that expects none must not replace it."""
    try:
        if not any(os.scandir(target)):
            return None
    except FileNotFoundError:
        return None
    except OSError:
        return "unreadable"
    try:
        manifest = json.loads((Path(target) / MANIFEST_FILE).read_bytes()[: JSON_MAX_BYTES + 1].decode("utf-8"))
    except FileNotFoundError:
        return f"no {MANIFEST_FILE}"
    except (OSError, ValueError):
        return "unreadable"
    return manifest.get("bundle_id", "unknown") if isinstance(manifest, dict) else "unknown"


NO_BUNDLE = ""  # ``expect_id`` of a writer that read no bundle: the folder must still hold none


def _check_unchanged(target: Path, expect_id: str) -> None:
    """BundleError unless the bundle at ``target`` is still the one with ``expect_id`` (``NO_BUNDLE``: none)."""
    now = current_bundle_id(target) or NO_BUNDLE
    if now != expect_id:
        raise BundleError(
            f"{target} was changed by another process since it was loaded (bundle {expect_id or 'none'}, now {now or 'none'}); "
            "load it again and repeat the change"
        )
    if now != NO_BUNDLE:
        check_replaceable(target, True)


# --- reading ------------------------------------------------------------------------------------


@dataclass
class _Read:
    """A bundle folder's files as read once, through one handle on the folder.

    ``data`` holds each file read whole; ``problems`` says why a file is not in it (missing, a
    symbolic link, not a regular file, too large, unreadable).
    """

    folder: Path
    names: set[str]
    data: dict[str, bytes] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> dict | None:
        """The manifest as parsed, if it is a JSON object with a ``files`` object; else None."""
        try:
            doc = json.loads(self.data[MANIFEST_FILE].decode("utf-8"))
        except (KeyError, ValueError):
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("files"), dict) else None


def _open_folder(folder: Path) -> int:
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise BundleError(f"models directory {folder} does not exist; train one with 'spamclf train'") from None
    except NotADirectoryError:
        raise BundleError(f"models directory {folder} is not a folder") from None
    except OSError as exc:
        raise BundleError(f"cannot open models directory {folder}: {exc.strerror or exc}") from None


def _open_file(dir_fd: int, name: str) -> int | str:
    """A read-only descriptor of the regular file ``name`` in the folder ``dir_fd``, or why there is none."""
    try:
        # O_NOFOLLOW: a bundle holds its own files; O_NONBLOCK: a FIFO named like one must not hang us.
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return "a symbolic link" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror or exc})"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return "not a regular file"
    return fd


def _read_fd(fd: int, cap: int) -> bytes | str:
    """The whole file behind ``fd``, or why not: larger than ``cap`` bytes, or unreadable."""
    size = os.fstat(fd).st_size
    if size > cap:
        return f"too large ({size} bytes; at most {cap} for this config)"
    try:
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            data = fh.read(size + 1)  # one more than its size: a file that grows is caught
            while len(data) <= cap and (more := fh.read(cap + 1 - len(data))):
                data += more
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if len(data) > cap:
        return f"too large (over {cap} bytes for this config)"
    return data


def _same_folder(folder: Path, dir_fd: int) -> bool:
    try:
        now, read = os.stat(folder), os.fstat(dir_fd)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (read.st_dev, read.st_ino)


def _read_folder(folder: str | Path) -> _Read:
    """Every file of the bundle at ``folder``, each read once (see the module's docstring).

    All files are opened through one descriptor of the folder, before any is read: a file opened is
    read whole even if a writer then replaces the bundle and deletes the old one. If a file was
    already gone (the old bundle was being deleted) and ``folder`` now names another folder, the
    new one is read from the start: a swap is never reported as a changed or incomplete bundle.
    """
    folder = Path(folder)
    for _ in range(_READ_TRIES):
        dir_fd = _open_folder(folder)
        fds: dict[str, int] = {}
        try:
            try:
                read = _Read(folder, set(os.listdir(dir_fd)))
            except OSError as exc:
                raise BundleError(f"cannot list {folder}: {exc.strerror or exc}") from None
            for name in (MANIFEST_FILE, *BUNDLE_FILES):
                opened = _open_file(dir_fd, name) if name in read.names else "missing"
                if isinstance(opened, int):
                    fds[name] = opened
                else:
                    read.problems[name] = opened
            if read.problems and not _same_folder(folder, dir_fd):
                continue  # replaced while we opened it: read what is there now
            for name in (MANIFEST_FILE, CONFIG_FILE):
                if name in fds:
                    _keep(read, name, _read_fd(fds[name], JSON_MAX_BYTES))
            caps = _size_caps(_config_for_caps(read), os.fstat(fds[VOCAB_FILE]).st_size if VOCAB_FILE in fds else 0)
            for name in BUNDLE_FILES:
                if name in fds and name not in read.data and name not in read.problems:
                    _keep(read, name, _read_fd(fds[name], caps[name]))
            return read
        finally:
            for fd in fds.values():
                os.close(fd)
            os.close(dir_fd)
    raise BundleError(f"{folder} was replaced while it was being read, {_READ_TRIES} times over; try again")


def _keep(read: _Read, name: str, data: bytes | str) -> None:
    if isinstance(data, bytes):
        read.data[name] = data
    else:
        read.problems[name] = data


def _config_for_caps(read: _Read) -> dict:
    """The bundle's config, to size the other files by, once its SHA-256 matches the manifest; else the defaults."""
    from ..config import defaults

    manifest, data = read.manifest(), read.data.get(CONFIG_FILE)
    if manifest is None or data is None or manifest["files"].get(CONFIG_FILE) != hashlib.sha256(data).hexdigest():
        return defaults()
    try:
        return _validated_config(check_json_bytes(data, CONFIG_FILE), CONFIG_FILE)
    except (UnsafeFile, BundleError):
        return defaults()


def _size_caps(config: dict, vocab_size: int) -> dict[str, int]:
    """The most bytes each file of a bundle trained with ``config`` can hold; a larger one is not read.

    A term is at most ``ngram_max`` words of ``MAX_TOKEN_CHARS`` characters, each at most 12 bytes of
    JSON (an escaped surrogate pair); weights at most float64, over at most ``max_features`` inputs
    (with ``max_features`` null, one per 5 bytes of vocabulary: ``"ab",``); ``model.keras`` holds
    the same weights once more, in HDF5.
    """
    features = config["features"]
    term_bytes = features["ngram_max"] * (MAX_TOKEN_CHARS * 12 + 1) + 4
    if features["max_features"] is None:
        n_max, vocab_cap = vocab_size // 5, UNBOUNDED_VOCAB_MAX_BYTES
    else:
        n_max = features["max_features"]
        vocab_cap = n_max * term_bytes + _MEMBER_SLACK
    widths = [n_max, *config["model"]["units"], 1]
    weights = sum((a + 1) * b * 8 + 2 * _MEMBER_SLACK for a, b in zip(widths, widths[1:]))
    return {
        MODEL_FILE: 2 * weights + MAX_CONFIG_BYTES,
        WEIGHTS_FILE: weights,
        VOCAB_FILE: vocab_cap,
        IDF_FILE: n_max * 8 + _MEMBER_SLACK,
        CONFIG_FILE: JSON_MAX_BYTES,
        METADATA_FILE: JSON_MAX_BYTES,
        HISTORY_FILE: JSON_MAX_BYTES,
        CURVES_FILE: PNG_MAX_BYTES,
        STORE_FILE: STORE_MAX_BYTES,
        STORE_INDEX_FILE: STORE_MAX_BYTES,
    }


# --- verifying ----------------------------------------------------------------------------------


def _manifest_problem(manifest) -> str | None:
    """What makes ``manifest`` not one the writer writes (its format version aside); None if nothing."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return "is not a spamclf manifest"
    if not isinstance(manifest.get("spamclf_version"), str):
        return "does not say which spamclf version wrote it"
    listed = manifest["files"]
    unknown = sorted(set(listed) - set(BUNDLE_FILES))
    if unknown:
        return f"lists {unknown[0]}, which is not a bundle file; refusing it"
    if set(listed) != set(_files_of(manifest)) or not all(isinstance(v, str) and _SHA256.fullmatch(v) for v in listed.values()):
        return "does not list the files of a bundle with their SHA-256"
    bundle_id = manifest.get("bundle_id")
    if not isinstance(bundle_id, str) or not _BUNDLE_ID.fullmatch(bundle_id) or bundle_id != _bundle_id(manifest):
        return "does not hold the bundle_id its writer derives from it (12 hex digits)"
    return None


def _files_of(manifest: dict) -> tuple[str, ...]:
    """The files a bundle of ``manifest``'s format holds (this version's, for a format it does not know)."""
    fmt = manifest.get("format_version")
    return FILES_OF_FORMAT.get(fmt, BUNDLE_FILES) if not isinstance(fmt, bool) else BUNDLE_FILES


def _check_manifest(read: _Read) -> dict:
    folder = read.folder
    problem = read.problems.get(MANIFEST_FILE)
    if problem == "missing":
        raise BundleError(f"{folder} is not a spamclf models directory: {MANIFEST_FILE} is missing")
    if problem:
        raise BundleError(f"{folder}/{MANIFEST_FILE} is {problem}")
    manifest = read.manifest()
    if manifest is None:
        raise BundleError(f"{folder}/{MANIFEST_FILE} is not JSON or not a spamclf manifest")
    fmt = manifest.get("format_version")
    if isinstance(fmt, bool) or fmt not in READABLE_FORMATS:
        raise BundleError(
            f"{folder} was written in bundle format {fmt!r} by spamclf {manifest.get('spamclf_version', '?')}; "
            f"this spamclf {__version__} reads format {', '.join(map(str, READABLE_FORMATS))}: retrain it"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise BundleError(f"{folder}/{MANIFEST_FILE} {problem}")
    return manifest


def _check_files(read: _Read, manifest: dict, verify_hashes: bool) -> None:
    folder = read.folder
    files = _files_of(manifest)
    extra = sorted(read.names - set(files) - {MANIFEST_FILE})
    if extra:
        raise BundleError(f"{folder} holds unexpected file {extra[0]}; refusing to load a bundle that was changed")
    for name in files:
        problem = read.problems.get(name)
        if problem == "missing":
            raise BundleError(f"{folder} is incomplete: {name} is missing")
        if problem == "a symbolic link":
            raise BundleError(f"{folder}/{name} is a symbolic link; a bundle holds its own files")
        if problem:
            raise BundleError(f"{folder}/{name} is {problem}")
    if not verify_hashes:
        return
    digests = _sha256_all({name: read.data[name] for name in files})
    for name in files:
        if digests[name] != manifest["files"][name]:
            raise BundleError(f"{folder}/{name} does not match its SHA-256 in the manifest; the bundle was changed")


def _weights_widths(arrays: dict) -> list[tuple[int, int]]:
    """(inputs, outputs) of each Dense layer in weights.npz, checked to chain into one sigmoid output."""
    shapes = {key: facts.shape for key, facts in arrays.items()}
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


def _validated_config(doc: dict, origin: str, section: str | None = None) -> dict:
    """``doc`` (the whole config, or one ``section`` of it) over the defaults, checked as config files are."""
    from ..config import _merge, defaults, validate
    from ..errors import ConfigError

    try:
        config = _merge(defaults(), doc if section is None else {section: doc}, origin)
        validate(config)
    except ConfigError as exc:
        raise BundleError(str(exc)) from None
    return config


def _check_shapes(folder: Path, config: dict, keras_facts: KerasFacts, widths: list, idf: dict) -> int:
    """The number of features, once the IDF, weights, Keras config and config agree; BundleError if not."""
    if set(idf) != {"idf"} or len(idf["idf"].shape) != 1:
        raise BundleError(f"{folder}/{IDF_FILE} does not hold one IDF vector")
    n_features = idf["idf"].shape[0]
    inputs = widths[0][0]
    if n_features != inputs:
        raise BundleError(f"{folder}: the vocabulary's IDF has {n_features} terms but the model takes {inputs} inputs")
    if keras_facts.n_inputs != inputs or list(keras_facts.dense_units) != [w[1] for w in widths]:
        raise BundleError(
            f"{folder}: {MODEL_FILE} (inputs {keras_facts.n_inputs}, layers {list(keras_facts.dense_units)}) does not match "
            f"{WEIGHTS_FILE} (inputs {inputs}, layers {[w[1] for w in widths]})"
        )
    units = config["model"]["units"]
    if [w[1] for w in widths] != [*units, 1]:
        raise BundleError(f"{folder}: {WEIGHTS_FILE} has layers {[w[1] for w in widths]}, not the {[*units, 1]} of model.units in {CONFIG_FILE}")
    max_features = config["features"]["max_features"]
    if n_features < 1 or (max_features is not None and n_features > max_features):
        raise BundleError(f"{folder}: the model takes {n_features} inputs, not 1 to features.max_features ({max_features})")
    return int(n_features)


def _check_vocabulary(folder: Path, data: bytes, config: dict, n_features: int) -> tuple[dict, list[str]]:
    """The vocabulary's settings and terms, checked: settings as config, equal to the config's; ``n_features`` words."""
    try:
        doc = check_json_bytes(data, VOCAB_FILE)
    except UnsafeFile as exc:
        raise BundleError(f"{folder}: {exc}") from None
    settings, terms = doc.get("settings"), doc.get("vocabulary")
    if not isinstance(settings, dict) or not isinstance(terms, list):
        raise BundleError(f"{folder}/{VOCAB_FILE} does not hold settings and a vocabulary")
    settings = _validated_config(settings, f"{folder}/{VOCAB_FILE}", "features")["features"]
    if settings != config["features"]:
        key = next(k for k in settings if settings[k] != config["features"][k])
        raise BundleError(
            f"{folder}/{VOCAB_FILE} was made with features.{key} {settings[key]!r}, but {CONFIG_FILE} says {config['features'][key]!r}"
        )
    if len(terms) != n_features:
        raise BundleError(f"{folder}: the vocabulary has {len(terms)} terms but the model takes {n_features} inputs")
    # One pass over all terms joined: each is words joined by single spaces, so none holds a control character
    # (counting the lines: a term holding the separator itself must not pass as two).
    joined = "\n".join(terms) + "\n" if all(isinstance(t, str) for t in terms) else ""
    if joined.count("\n") != len(terms) or not _TERMS.fullmatch(joined) or len(set(terms)) != len(terms):
        raise BundleError(f"{folder}/{VOCAB_FILE} holds a term that is not a word or n-gram, or a term twice")
    return settings, terms


def _finite(folder: Path, name: str, arrays) -> None:
    if not all(np.isfinite(a).all() for a in arrays):
        raise BundleError(f"{folder}/{name} holds a weight that is not a finite number (NaN or infinity); refusing it")


def _check(read: _Read, verify_hashes: bool = True, work_folder: bool = False) -> Checked:
    """Every check of the module's docstring on the bytes ``read`` holds, then those bytes as objects."""
    folder = read.folder
    if not work_folder and _WORK_FOLDER.fullmatch(Path(os.path.realpath(folder)).name):
        raise BundleError(f"{folder} is the work folder of a 'spamclf train' that did not finish; it is never a bundle")
    manifest = _check_manifest(read)
    _check_files(read, manifest, verify_hashes)
    data = read.data
    try:
        config = _validated_config(check_json_bytes(data[CONFIG_FILE], CONFIG_FILE), f"{folder}/{CONFIG_FILE}")
        metadata = check_json_bytes(data[METADATA_FILE], METADATA_FILE)
        check_json_bytes(data[HISTORY_FILE], HISTORY_FILE)
        check_png_bytes(data[CURVES_FILE], CURVES_FILE)
        keras_facts = check_keras_bytes(data[MODEL_FILE], MODEL_FILE)
        weight_facts = check_npz_bytes(data[WEIGHTS_FILE], WEIGHTS_FILE, lambda key: bool(_WEIGHT_NAME.fullmatch(key)))
        widths = _weights_widths(weight_facts)
        idf_facts = check_npz_bytes(data[IDF_FILE], IDF_FILE, lambda key: key == "idf")
    except UnsafeFile as exc:
        raise BundleError(f"{folder}: {exc}") from None
    n_features = _check_shapes(folder, config, keras_facts, widths, idf_facts)
    threshold = metadata.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise BundleError(f"{folder}/{METADATA_FILE} has no decision threshold between 0 and 1")
    if metadata.get("n_features", n_features) != n_features:
        raise BundleError(f"{folder}/{METADATA_FILE} says {metadata['n_features']} features but the model takes {n_features}")
    settings, terms = _check_vocabulary(folder, data[VOCAB_FILE], config, n_features)
    # Every header was checked against the bytes it stands for: the arrays are views of those bytes.
    idf = npz_arrays(data[IDF_FILE], idf_facts)["idf"]
    weights = npz_arrays(data[WEIGHTS_FILE], weight_facts)
    layers = [(weights[f"kernel_{i}"], weights[f"bias_{i}"]) for i in range(len(widths))]
    layers = [(kernel.astype(np.float32, copy=False), bias.astype(np.float32, copy=False)) for kernel, bias in layers]
    _finite(folder, IDF_FILE, [idf])
    _finite(folder, WEIGHTS_FILE, [a for layer in layers for a in layer])
    features = TfidfFeatures.fitted(settings, terms, idf)
    store = {name: data[name] for name in (STORE_FILE, STORE_INDEX_FILE) if name in manifest["files"]}
    return Checked(
        manifest=manifest, config=config, metadata=metadata, n_features=n_features, keras=keras_facts,
        features=features, layers=layers, model_bytes=data[MODEL_FILE], store_bytes=store,
    )


def read_store(store_bytes: dict[str, bytes], folder) -> dict:
    """The store a checked bundle holds, as ``write_store`` wrote it: store.npz's four arrays (of
    STORE_ARRAYS, one-dimensional, of their kinds; read-only views of the bytes) with store.json's
    ``terms``, ``keys`` and ``state``, as many keys as labels; BundleError names a problem. Read
    only when learning (``online.Store.from_bundle``, which checks the contents): scoring never
    parses the store, so its problems do not stop a bundle from classifying."""
    try:
        facts = check_npz_bytes(store_bytes[STORE_FILE], STORE_FILE, lambda key: key in STORE_ARRAYS, kinds="fi")
        if set(facts) != set(STORE_ARRAYS):
            raise UnsafeFile(f"{STORE_FILE} does not hold the arrays {', '.join(STORE_ARRAYS)}")
        for key, kind in STORE_ARRAYS.items():
            if facts[key].dtype.kind != kind or len(facts[key].shape) != 1:
                raise UnsafeFile(f"{STORE_FILE}: array {key!r} is not a vector of kind {kind!r}")
        doc = check_json_bytes(store_bytes[STORE_INDEX_FILE], STORE_INDEX_FILE)
        if not isinstance(doc.get("terms"), list) or not isinstance(doc.get("keys"), list) or not isinstance(doc.get("state", {}), dict):
            raise UnsafeFile(f"{STORE_INDEX_FILE} does not hold the store's terms and keys")
        if len(doc["keys"]) != facts["labels"].shape[0] or facts["indptr"].shape[0] != facts["labels"].shape[0] + 1:
            raise UnsafeFile(f"{STORE_FILE} and {STORE_INDEX_FILE} do not describe the same examples")
        if facts["indices"].shape != facts["counts"].shape:
            raise UnsafeFile(f"{STORE_FILE}: indices and counts differ in length")
    except UnsafeFile as exc:
        raise BundleError(f"{folder}: {exc}") from None
    return {**npz_arrays(store_bytes[STORE_FILE], facts), "terms": doc["terms"], "keys": doc["keys"], "state": doc.get("state", {})}


def check_bundle(folder: str | Path, verify_hashes: bool = True) -> Checked:
    """Read ``folder`` once and check it completely; BundleError names the first problem.

    ``verify_hashes=False`` skips comparing the files with their SHA-256 in the manifest: only for
    a writer, which has just hashed them to write the manifest.
    """
    return _check(_read_folder(folder), verify_hashes)


def verify(folder: str | Path) -> dict:
    """Check ``folder`` against its manifest and the shape of every file; return the manifest or raise BundleError."""
    return check_bundle(folder).manifest


# --- loading ------------------------------------------------------------------------------------


def _bundle(folder: Path, checked: Checked) -> Bundle:
    return Bundle(
        path=folder, features=checked.features, layers=checked.layers, config=checked.config, metadata=checked.metadata,
        manifest=checked.manifest, store_bytes=checked.store_bytes,
    )


def load_bundle(folder: str | Path) -> Bundle:
    """Read and check a bundle (see the module's docstring). Raises BundleError with a one-line reason for anything wrong."""
    folder = Path(folder)
    return _bundle(folder, check_bundle(folder))


def load_keras_model(folder: str | Path):
    """The bundle's Keras model, from the bytes that were checked with the whole bundle (imports TensorFlow)."""
    folder = Path(folder)
    checked = check_bundle(folder)
    try:
        check_keras_weights(checked.model_bytes, MODEL_FILE)
    except UnsafeFile as exc:
        raise BundleError(f"{folder}: {exc}") from None
    from .network import dense_weights, load_model

    # Keras reads a .keras file by its name: these checked bytes, in a folder of our own.
    with tempfile.TemporaryDirectory(prefix="spamclf-model-") as tmp:
        path = Path(tmp) / MODEL_FILE
        path.write_bytes(checked.model_bytes)
        model = load_model(path)
    _finite(folder, MODEL_FILE, [a for layer in dense_weights(model) for a in layer])
    return model


@dataclass
class Examined:
    """What ``inspect`` may show of a folder: the bundle, or else the problem, the manifest and each file's state."""

    bundle: Bundle | None
    problem: str | None
    manifest: dict | None = None
    files: dict[str, str] = field(default_factory=dict)


def examine(folder: str | Path) -> Examined:
    """Read ``folder`` once; the checked bundle, or the first problem and what is safe to show besides it."""
    folder = Path(folder)
    try:
        read = _read_folder(folder)
    except BundleError as exc:
        return Examined(None, str(exc))
    try:
        return Examined(_bundle(folder, _check(read)), None)
    except BundleError as exc:
        manifest = read.manifest()
        return Examined(None, str(exc), manifest, _file_states(read, manifest) if manifest else {})


def _file_states(read: _Read, manifest: dict) -> dict[str, str]:
    """Each file's state against the manifest: ok, changed, missing, unexpected, ..."""
    listed = manifest.get("files", {})
    present = {name: data for name, data in read.data.items() if name in BUNDLE_FILES and name in listed}
    digests = _sha256_all(present)
    report = {}
    for name in sorted(set(BUNDLE_FILES) | set(listed)):
        if name not in BUNDLE_FILES:
            report[name] = "listed but not a bundle file"
        elif name in read.problems:
            report[name] = read.problems[name]
        elif name not in listed:
            report[name] = "not listed"
        else:
            report[name] = "ok" if digests[name] == listed[name] else "changed"
    for name in sorted(read.names):
        if name not in report and name != MANIFEST_FILE:
            report[name] = "unexpected"
    return report

"""The daemon's scoring engine: the bundle it serves, the processes that score with it, and reloading.

One *generation* is a verified, loaded bundle and a pool of ``workers`` processes forked from the
daemon once that bundle is in memory: they inherit it and never read the models directory
themselves, so every answer of a generation comes from exactly that bundle. When the bundle on disk
changes, the daemon loads and verifies the new one (``load_bundle``: manifest, hashes, shapes), forks
a new generation and sends new requests there; the old pool finishes what it was given and exits. A
bundle that does not verify (tampered, half-written) is refused, logged, and the old one stays.

Why a process pool behind one event loop, not uvicorn's own ``--workers``: one process then owns
HTTP, the metrics, the queue bound and the reloads, so they are one state, not one per worker.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import stat
import threading
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..commands.filter import filter_message
from ..commands.predict import Classifier
from ..mail.sources import Item
from ..model.bundle import BUNDLE_FILES, MANIFEST_FILE, load_bundle


class Busy(Exception):
    """Every worker is busy and the queue is full: the request is refused (503), not queued."""


# --- in each worker process -----------------------------------------------------------------------

_worker: dict = {}


def _init_worker(clf: Classifier) -> None:
    """A worker holds the generation's Classifier, inherited through fork, never read from disk."""
    _worker["clf"] = clf
    quiet_child()
    _close_inherited_sockets()
    gc.freeze()


def _close_inherited_sockets() -> None:
    """Close the sockets a worker forked from the running daemon inherits: the listening one and the
    clients' connections. Held open here, a connection the daemon closes would never end for its
    client (no FIN while another process holds the socket). The pool talks over pipes, not sockets;
    stdin, stdout and stderr (a socket under journald) are kept."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: nothing to go by
        return
    for fd in fds:
        if fd > 2:
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.close(fd)
            except OSError:  # the listing's own fd, gone already
                pass


def quiet_child() -> None:
    """A child of the daemon leaves signals to it (a SIGTERM to the whole service reaches the children
    too: the daemon drains, then stops them) and dies with it."""
    signal.set_wakeup_fd(-1)  # a forked child shares the daemon's event-loop wake-up fd: let go of it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the daemon dies, even by SIGKILL (``prctl(PR_SET_PDEATHSIG)``)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the daemon died before prctl
        os._exit(1)


def _ping() -> int:
    return os.getpid()


def _score(raw: bytes, explain: int) -> dict:
    """``/v1/score``: the score, label and threshold of one message (its first ``max_bytes`` bytes)."""
    clf: Classifier = _worker["clf"]
    limit = clf.options.max_bytes
    item = Item("body", raw=raw[:limit], truncated=len(raw) > limit)
    row = next(iter(clf.predict_items([item], explain=explain)))
    if row.error:
        raise RuntimeError(row.error)
    out = {"score": row.score, "label": row.label, "threshold": clf.threshold, "bundle_id": clf.bundle.bundle_id}
    if explain:
        out["explain"] = row.explanation
    if row.truncated:
        out["truncated"] = True
    return out


def _filter(raw: bytes) -> tuple[bytes, str, float, str]:
    """``/v1/filter``: the message with filter mode's headers, its label and score, the bundle id."""
    clf: Classifier = _worker["clf"]
    result = filter_message(clf, raw)
    return result.output, result.label, result.score, clf.bundle.bundle_id


# --- in the daemon --------------------------------------------------------------------------------


def bundle_stamp(models_dir: Path) -> tuple:
    """What a cheap poll compares: the folder's and each bundle file's inode, size and mtime. A bundle
    installed by ``train``/``learn`` (a renamed folder) or a file edited in place both change it."""
    stamp = []
    for name in ("", MANIFEST_FILE, *BUNDLE_FILES):
        try:
            st = os.stat(models_dir / name)
            stamp.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            stamp.append((name, None))
    return tuple(stamp)


def load_for_scoring(models_dir: Path) -> Classifier:
    """The bundle at ``models_dir``, verified as every load is (the store's files hashed too), less the
    learning store's bytes (up to 1 GiB): scoring never reads them, and the daemon and
    every worker forked from it would hold them for as long as the bundle is served. Never learn with it:
    it would take the bundle for one that kept no examples."""
    bundle = load_bundle(models_dir)
    bundle.store_bytes = {}
    return Classifier(bundle)


@dataclass
class Generation:
    clf: Classifier
    pool: ProcessPoolExecutor
    bundle_id: str = field(init=False)

    def __post_init__(self):
        self.bundle_id = self.clf.bundle.bundle_id


class Engine:
    """The current generation, the bound on work in flight, and reloading (all called from the event loop)."""

    def __init__(self, models_dir: str | Path, workers: int, queue: int, log) -> None:
        self.models_dir = Path(models_dir)
        self.workers = workers
        self.capacity = workers + queue  # tasks in flight at most: one running per worker, ``queue`` waiting
        self.log = log
        self._pending = 0
        self._lock = threading.Lock()  # futures complete on the pool's own thread
        self.stamp = bundle_stamp(self.models_dir)
        self.refused_stamp = None
        self.reloads = {"ok": 0, "refused": 0}
        self.current = self._start(load_for_scoring(self.models_dir))

    @property
    def pending(self) -> int:
        return self._pending

    def _start(self, clf: Classifier) -> Generation:
        """Fork ``workers`` processes holding ``clf``; they are started (and ready) on return."""
        import multiprocessing

        gc.collect()
        pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=(clf,))
        for f in [pool.submit(_ping) for _ in range(self.workers)]:
            f.result()
        return Generation(clf, pool)

    def submit(self, fn, *args) -> tuple[Generation, Future]:
        """Run ``fn(*args)`` on the current generation; Busy when ``capacity`` tasks are in flight."""
        with self._lock:
            if self._pending >= self.capacity:
                raise Busy(f"busy: {self._pending} messages in flight, the most this daemon takes; try again")
            self._pending += 1
        gen = self.current
        try:
            try:
                future = gen.pool.submit(fn, *args)
            except BrokenExecutor:  # a worker died while idle: a fresh pool takes the message
                gen = self.broken(gen)
                future = gen.pool.submit(fn, *args)
        except BaseException:
            self._done(None)  # not in flight after all
            raise
        future.add_done_callback(self._done)
        return gen, future

    def _done(self, _future) -> None:
        with self._lock:
            self._pending -= 1

    def broken(self, gen: Generation) -> Generation:
        """``gen``'s pool broke (a worker killed, out of memory): a fresh pool for the same bundle, if
        ``gen`` is still the current generation. Returns the current one."""
        if self.current is gen:
            self.log("error", "worker_died", f"a scoring worker died; starting {self.workers} new ones")
            self.current = self._start(gen.clf)
            gen.pool.shutdown(wait=False, cancel_futures=True)
        return self.current

    async def poll(self) -> None:
        """Reload when the bundle's files changed since the last look (called every few seconds)."""
        stamp = bundle_stamp(self.models_dir)
        if stamp == self.stamp or stamp == self.refused_stamp:
            return
        await self.reload(stamp)

    async def reload(self, stamp: tuple | None = None) -> bool:
        """Load, verify and switch to the bundle now on disk; keep the current one if it does not verify."""
        stamp = stamp or bundle_stamp(self.models_dir)
        try:
            clf = await asyncio.to_thread(load_for_scoring, self.models_dir)
        except Exception as exc:  # noqa: BLE001 -- any bundle that does not load is refused, the old one kept
            self.refused_stamp = stamp
            self.reloads["refused"] += 1
            problem = " ".join(str(exc).split()) or exc.__class__.__name__
            self.log("error", "reload_refused", f"new bundle in {self.models_dir} refused: {problem}; still serving {self.current.bundle_id}")
            return False
        self.stamp, self.refused_stamp = stamp, None
        if clf.bundle.bundle_id == self.current.bundle_id:
            return True
        old = self.current
        self.current = self._start(clf)
        old.pool.shutdown(wait=False)  # what it was given still runs, on the old bundle
        self.reloads["ok"] += 1
        self.log("info", "reload", f"now serving bundle {clf.bundle.bundle_id} (was {old.bundle_id})", bundle_id=clf.bundle.bundle_id)
        return True

    def close(self) -> None:
        self.current.pool.shutdown(wait=True)

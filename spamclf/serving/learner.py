"""``/v1/learn`` and ``/v1/forget``: the online-learning API (``Classifier.learn``/``forget``/``save``)
run in a process of its own, started on the first such request.

Learning needs TensorFlow; the daemon, which forks its scoring workers, never imports it. The
learner changes the bundle under ``models_lock`` and saves it atomically *before* the daemon answers:
once a client has its 200, the change is on disk, and a SIGKILL of the daemon loses nothing.
One change runs at a time; ``queue`` more may wait, any further one gets 503.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from pathlib import Path

from .engine import Busy, quiet_child


def _change(models_dir: str, what: str, raw: bytes, label: str | None, lock_timeout: float) -> dict:
    """In the learner process: learn or forget one message and save the bundle (when that changed it),
    all under the models directory's lock; return what changed and the bundle_id now on disk."""
    from ..commands.predict import load
    from ..errors import DataError
    from ..model.online import models_lock

    with models_lock(models_dir, lock_timeout):
        clf = load(models_dir)
        result = clf.learn([raw], label) if what == "learn" else clf.forget([raw])
        errors = result.pop("errors", [])
        if errors:
            raise DataError(errors[0]["error"])
        changed = result.get("learned", 0) + result.get("relabelled", 0) + result.get("forgotten", 0)
        bundle_id = clf.save() if changed else clf.bundle.bundle_id
    return {**result, "bundle_id": bundle_id}


class Learner:
    def __init__(self, models_dir: str | Path, lock_timeout: float, queue: int) -> None:
        self.models_dir = str(models_dir)
        self.lock_timeout = lock_timeout
        self.limit = 1 + queue
        self._pending = 0
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, what: str, raw: bytes, label: str | None) -> dict:
        with self._lock:
            if self._pending >= self.limit:
                raise Busy(f"busy: {self._pending} changes to the model waiting; try again")
            self._pending += 1
        try:
            try:
                future = self._start().submit(_change, self.models_dir, what, raw, label, self.lock_timeout)
            except BrokenExecutor:  # the learner died while idle (out of memory, killed): a new one
                self._pool = None
                future = self._start().submit(_change, self.models_dir, what, raw, label, self.lock_timeout)
            return await asyncio.wrap_future(future)
        except BrokenExecutor:
            self._pool = None  # it died on this change, which was not saved: the next one starts a new learner
            raise
        finally:
            with self._lock:
                self._pending -= 1

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            # spawn: a fresh interpreter, not a copy of the daemon's event loop and scoring state
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=quiet_child)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

"""``/v1/learn`` and ``/v1/forget``: the online-learning API (``Classifier.learn``/``forget``/``save``)
run in a process of its own, started on the first such request.

Learning needs TensorFlow; the daemon, which forks its scoring workers, never imports it. The
learner changes the bundle under ``models_lock`` and saves it atomically *before* the daemon answers:
once a client has its 200, the change is on disk, and a SIGKILL of the daemon loses nothing.
The learner keeps the Classifier it saved (its store, its Keras trainer) for the next change, and
loads the bundle again only when another process replaced it on disk meanwhile.
One change runs at a time; ``queue`` more may wait, any further one gets 503.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from pathlib import Path

from .engine import Busy, quiet_child

# --- in the learner process -----------------------------------------------------------------------

_held: dict = {}  # "clf": the Classifier whose bundle is the one on disk, as the last change left it


def _change(models_dir: str, what: str, raw: bytes, label: str | None, lock_timeout: float) -> tuple[dict, str | None]:
    """In the learner process: learn or forget one message and save the bundle (when that changed it),
    all under the models directory's lock. Returns what changed with the bundle_id now on disk, and
    the bundle_id it had to load first (None: the Classifier it held was still the one on disk)."""
    from ..commands.predict import load
    from ..errors import DataError
    from ..model.bundle import current_bundle_id
    from ..model.online import models_lock

    with models_lock(models_dir, lock_timeout):
        # Taken out while it changes: a change that fails half-way (a full disk) leaves it unheld,
        # and the next change loads the bundle on disk rather than build on what was never saved.
        clf, loaded = _held.pop("clf", None), None
        if clf is None or current_bundle_id(Path(models_dir)) != clf.bundle.bundle_id:
            clf = load(models_dir)
            loaded = clf.bundle.bundle_id
        result = clf.learn([raw], label) if what == "learn" else clf.forget([raw])
        errors = result.pop("errors", [])
        if errors:
            raise DataError(errors[0]["error"])
        clf.bundle.store_bytes = {}  # read into the learner's store by now: the bytes it came from are dead weight
        changed = result.get("learned", 0) + result.get("relabelled", 0) + result.get("forgotten", 0)
        bundle_id = clf.save() if changed else clf.bundle.bundle_id
        _held["clf"] = clf
    return {**result, "bundle_id": bundle_id}, loaded


# --- in the daemon --------------------------------------------------------------------------------


class Learner:
    """The learner process and the bound on changes waiting for it. Called from the event loop's
    thread only (``submit`` and the tasks it starts), so its count needs no lock."""

    def __init__(self, models_dir: str | Path, lock_timeout: float, queue: int, log) -> None:
        self.models_dir = str(models_dir)
        self.lock_timeout = lock_timeout
        self.limit = 1 + queue
        self.log = log
        self._pending = 0
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, what: str, raw: bytes, label: str | None) -> asyncio.Task:
        """Start one change; the task ends with its answer (what ``_change`` returns). Busy when
        ``1 + queue`` changes are in the learner's hands already, those whose clients stopped waiting included."""
        if self._pending >= self.limit:
            raise Busy(f"busy: {self._pending} changes to the model waiting; try again")
        self._pending += 1
        return asyncio.ensure_future(self._run(what, raw, label))

    async def _run(self, what: str, raw: bytes, label: str | None) -> dict:
        args = (_change, self.models_dir, what, raw, label, self.lock_timeout)
        pool = self._start()
        try:
            try:
                future = pool.submit(*args)
            except BrokenExecutor:  # the learner died while idle (out of memory, killed): a new one
                self._forget(pool)
                pool = self._start()
                future = pool.submit(*args)
            result, loaded = await asyncio.wrap_future(future)
        except BrokenExecutor:
            self._forget(pool)  # it died on this change, which was not saved: the next one starts a new learner
            raise
        finally:
            self._pending -= 1
        if loaded:
            self.log("info", "learner_load", f"the learner loaded bundle {loaded} from {self.models_dir}", bundle_id=loaded)
        return result

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:  # not a new one that a change waiting behind the dead one started meanwhile
            self._pool = None

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            # spawn: a fresh interpreter, not a copy of the daemon's event loop and scoring state
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=quiet_child)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

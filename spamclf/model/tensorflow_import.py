"""Imports that run in a background thread while the main thread does other work."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Callable

_paused = {"count": 0, "was_enabled": False}
_paused_lock = threading.Lock()


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector off while a big package imports, and what the import made
    frozen afterwards (``gc.freeze``).

    Importing Keras and TensorFlow creates hundreds of thousands of objects the collector tracks: it
    set off full collections during the import, while the extraction workers needed both cores, and
    each later full collection walked all those objects again. Frozen, they are never walked: they
    live as long as the process anyway. Memory is still freed by reference counting meanwhile. The
    reference cycles that became garbage during the pause are frozen with the rest and never freed:
    about 1,000 objects for Keras, once per process, cheaper than one more pass to find them. The
    pause is process-wide, so
    nested or overlapping pauses (two threads importing) restore the collector's state once, when the
    last one ends; a collector the caller had turned off stays off.
    """
    with _paused_lock:
        if _paused["count"] == 0:
            _paused["was_enabled"] = gc.isenabled()
            gc.disable()
        _paused["count"] += 1
    try:
        yield
    finally:
        with _paused_lock:
            gc.freeze()
            _paused["count"] -= 1
            if _paused["count"] == 0 and _paused["was_enabled"]:
                gc.enable()


class BackgroundImport:
    """Runs an import function once in a daemon thread; ``wait`` blocks until it has finished.

    The import function itself calls ``wait`` first, so a caller on the main thread never imports
    the same packages at the same time as the background thread: two threads importing the same
    packages can deadlock on the import locks. Start one only when no other import runs in the
    background, for the same reason.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.thread: threading.Thread | None = None

    def start(self, target: Callable[[], object]) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=target, name=self.name, daemon=True)
            self.thread.start()

    def wait(self) -> None:
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()

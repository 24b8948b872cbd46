"""Imports that run in a background thread while the main thread does other work."""

from __future__ import annotations

import threading
from typing import Callable


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

"""Progress on stderr for long work; silent when stderr is not a terminal (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def counting(items: Iterable[T], label: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    """Yield ``items`` unchanged while showing ``label: N[/total]`` on an interactive stderr."""
    show = enabled and sys.stderr.isatty()
    last = 0.0
    n = 0
    for n, item in enumerate(items, start=1):
        if show and time.monotonic() - last > 0.2:
            last = time.monotonic()
            sys.stderr.write(f"\r{label}: {n}" + (f"/{total}" if total else ""))
            sys.stderr.flush()
        yield item
    if show:
        sys.stderr.write(f"\r{label}: {n}" + (f"/{total}" if total else "") + "\n")
        sys.stderr.flush()

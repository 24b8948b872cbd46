"""The one place that knows how many processes extract mail at once.

Every command reads, extracts and tokenises messages batch by batch; :func:`in_order` runs a task on
each batch, in worker processes when there is more than one batch, and hands the results back in
input order. The rest of the code handles one batch and never sees the pool.
"""

from __future__ import annotations

import gc
import os
from itertools import chain
from typing import Iterator


_worker: dict = {}  # in each worker process: the extraction options and the fitted features


def _init_worker(options, features, nice: int = 0) -> None:
    _worker.update(options=options, features=features)
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:  # not allowed here: the worker keeps its priority
            pass
    # What a worker holds from the start lives as long as it does: frozen, the collector's full passes,
    # which extraction's many small objects set off, stop walking it.
    gc.freeze()


def _run_in_worker(task, messages: list[str | bytes]):
    return task(messages, _worker["options"], _worker["features"])


def in_order(
    batches: Iterator[tuple], task, options, features=None, jobs: int | None = 1, started=None,
    nice: int = 0,
) -> Iterator[tuple]:
    """``(tag, task(messages, options, features))`` for each ``(tag, messages)`` of ``batches``, in order.

    ``task`` is a module-level function (workers receive it by name). With ``jobs`` > 1 (None or 0:
    one per CPU) it runs in worker processes, which start only once there is a second batch, so a
    small input never pays for them; at most ``2 * jobs`` batches are in flight, so memory stays
    bounded however long the input is. ``started`` (optional) is called once the workers exist, or
    once it is clear there will be none: training starts TensorFlow's background import there, so
    that the workers are forked from a process with one thread. ``nice`` (Unix): added to the
    workers' niceness, so that this process's own work meanwhile gets the CPU first.
    """
    first = next(batches, None)
    second = next(batches, None)
    ahead = [b for b in (first, second) if b is not None]
    jobs = (os.cpu_count() or 1) if not jobs else jobs
    if jobs <= 1 or second is None:
        if started is not None:
            started()
        for tag, messages in chain(ahead, batches):
            yield tag, task(messages, options, features)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    import multiprocessing
    import threading

    # Forking a process in which another thread runs (training imports TensorFlow in one) can leave
    # the child waiting forever on a lock that thread held; then workers start from a clean server.
    context = multiprocessing.get_context("forkserver" if threading.active_count() > 1 else None)
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(options, features, nice)) as pool:
        pending: deque = deque()
        for tag, messages in chain(ahead, batches):
            pending.append((tag, pool.submit(_run_in_worker, task, messages)))
            if started is not None:  # the first submit has started every worker
                started()
                started = None
            while len(pending) > 2 * jobs:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

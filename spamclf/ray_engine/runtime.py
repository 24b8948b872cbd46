"""Starting, joining and leaving a Ray runtime quietly: what ``--engine ray`` shares.

Ray is an optional extra (``pip install spamclf[ray]``): this module and the two that use it
(:mod:`spamclf.ray_engine.scoring`, :mod:`spamclf.ray_engine.train`) import it lazily, and nothing else
in spamclf imports them, so ``predict`` and ``train`` on the local engine never load Ray.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from typing import Iterator

from ..errors import SpamclfError

# Ray prints a banner, usage-stats notices, progress bars and worker logs by default; a
# command whose stdout is results and stderr one line per problem wants none of them.
_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
    "RAY_ENABLE_RECORD_ACTOR_TASK_LOGGING": "0",
    # The C++ core logs notices at level E to the driver's stderr (e.g. that an actor's
    # constructor arguments live in the object store, which Ray Data always does).
    "RAY_BACKEND_LOG_LEVEL": "fatal",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def import_ray():
    """Ray, or a one-line SpamclfError saying how to install it."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise SpamclfError("--engine ray needs Ray: pip install 'spamclf[ray]'") from None
    return ray


def _quiet_data_context() -> None:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    # Rows come out in input order, so a distributed run prints and writes what a local one does.
    ctx.execution_options.preserve_order = True
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[object]:
    """A Ray runtime for the duration of the block: join ``address``, or start a local one.

    A runtime that is already up (a caller's own ``ray.init``, a test fixture) is used as it
    is and left running; one started here is always shut down, error or not.
    """
    ray = import_ray()
    if ray.is_initialized():
        _quiet_data_context()
        yield ray
        return
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
        raise SpamclfError(f"cannot start or join {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    restore = _errors_to_stderr()
    try:
        _quiet_data_context()
        yield ray
    finally:
        ray.shutdown()
        restore()


def _errors_to_stderr():
    """Ray prints cluster error notices ("(raylet) A worker died...") on the driver's stdout,
    where our results go; send them to stderr. Returns the undo."""
    try:
        from ray._private import worker
    except ImportError:  # a Ray without this internal: leave it be
        return lambda: None
    original = getattr(worker, "print_to_stdstream", None)
    if original is None:
        return lambda: None

    def to_stderr(data, *args, **kwargs):
        return original({**data, "is_err": True}, *args, **kwargs)

    worker.print_to_stdstream = to_stderr

    def undo():
        worker.print_to_stdstream = original

    return undo


def cluster_cpus(ray) -> int:
    """CPUs the joined runtime offers (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def skip_entries(log) -> list[tuple[str, str]]:
    """``(path, entry as JSON)`` for each entry of the SkipLog ``log``, which is then emptied: how a Ray
    worker sends back, in rows of their own, what reading passed over inside a file."""
    entries = [(entry["path"], json.dumps(entry)) for entry in log.skipped]
    log.skipped.clear()
    return entries


def log_skip_entry(entry: str, skips) -> None:
    """An entry from :func:`skip_entries` into the driver's SkipLog ``skips`` (None: dropped)."""
    if skips is not None:
        skips.add(**json.loads(entry))

"""What both benchmarks share: the corpus, seeded splits, message folders, and measuring a process."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SEED = 42


def corpus_dir(given: str | None) -> Path:
    """The labelled corpus: --corpus, else $SPAMCLF_CORPUS, else data/spamassassin (``make data``)."""
    path = Path(given or os.environ.get("SPAMCLF_CORPUS") or ROOT / "data" / "spamassassin")
    if not (path / "spam").is_dir() or not (path / "ham").is_dir():
        sys.exit(f"benchmark: no corpus at {path} (needs spam/ and ham/); run 'make data' or pass --corpus DIR")
    return path


def labelled_files(corpus: Path) -> tuple[list[Path], np.ndarray]:
    """Every message file under spam/ and ham/ (sorted, hidden files skipped) and its label (1 spam)."""
    paths, labels = [], []
    for label, name in ((1, "spam"), (0, "ham")):
        for path in sorted((corpus / name).rglob("*")):
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(corpus).parts):
                paths.append(path)
                labels.append(label)
    return paths, np.asarray(labels)


def split(labels: np.ndarray, test_size: float = 0.2, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    from spamclf.mail.labelled import stratified_split

    return stratified_split(labels, test_size, seed)


def folds(labels: np.ndarray, k: int = 5, seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold: each class shuffled (seeded) and dealt round-robin into k folds."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        fold_of[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % k
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]


def materialize(paths: list[Path], labels: np.ndarray, dest: Path, count: int | None = None) -> Path:
    """Copy messages into dest/{spam,ham}/, cycling through them until ``count`` files exist.

    Copies after the first get an ``X-Bench-Copy: N`` header line so every file is distinct
    (training drops exact duplicates, and a real mailbox has no exact copies either).
    """
    if dest.exists():
        shutil.rmtree(dest)
    for name in ("spam", "ham"):
        (dest / name).mkdir(parents=True)
    count = len(paths) if count is None else count
    order = np.random.default_rng(SEED).permutation(len(paths))  # a prefix keeps both classes in proportion
    for i in range(count):
        j = order[i % len(paths)]
        src, label = paths[j], labels[j]
        raw = src.read_bytes()
        copy = i // len(paths)
        if copy:
            raw = b"X-Bench-Copy: %d\n" % copy + raw
        (dest / ("spam" if label else "ham") / f"{i:06d}.eml").write_bytes(raw)
    return dest


def measure(
    cmd: list[str] | str, stdin_path: Path | None = None, stdout_path: Path | None = None, env: dict | None = None, ok: tuple = (0,)
) -> dict:
    """Run one process to completion: wall seconds, CPU seconds and peak RSS (its children included).

    ``os.wait4`` gives the resource use of this one child, not of every child so far. A string
    ``cmd`` runs under ``bash -c`` (pipelines: their peak is the largest process's).
    """
    shell = isinstance(cmd, str)
    argv = ["bash", "-c", cmd] if shell else cmd
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, cwd=ROOT)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        for fh in (stdin, stdout):
            if hasattr(fh, "close"):
                fh.close()
    if proc.returncode not in ok:
        raise RuntimeError(f"benchmark step failed ({proc.returncode}): {cmd}\n{err.decode(errors='replace')[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def median_of(n: int, fn) -> dict:
    """The run with the median wall time of ``n`` runs of ``fn()`` (cold-start numbers are noisy)."""
    return median_run([fn() for _ in range(n)])


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time of ``runs``, with every run's wall time beside it."""
    runs = sorted(runs, key=lambda r: r["wall_s"])
    return {**runs[len(runs) // 2], "runs_wall_s": [round(r["wall_s"], 4) for r in runs]}


def spamclf_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "spamclf", *args]


def bogofilter() -> str | None:
    return shutil.which("bogofilter")


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1min_at_start": load,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(name: str, doc: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(doc, indent=2) + "\n")
    return path


def table(rows: list[list], header: list[str]) -> str:
    cells = [header, *[[("" if c is None else str(c)) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

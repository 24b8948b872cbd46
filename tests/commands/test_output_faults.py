"""Writing under faults, for real: a full disk, a read-only folder, a file size limit, a full or closed stdout.

Each failure is one ``Error:`` line with exit status 1, and the files an earlier run wrote are
left exactly as they were, with no temporary file beside them. A reader of stdout that goes
away (``| head -1``) is a normal end. The disk faults are real: a file size limit (RLIMIT_FSIZE,
EFBIG) works everywhere; a full or read-only tmpfs needs root in a namespace that may mount, and
those cases are skipped where it may not.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import spamclf
from spamclf.cli import main
from spamclf.commands.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[2]


def spamclf_run(*args, fsize: int | None = None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """``python -m spamclf ARGS`` in a subprocess; ``fsize``: no file it writes may grow past that many bytes."""

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "spamclf", *map(str, args)],
        stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        preexec_fn=limit_file_size if fsize else None,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(proc: subprocess.CompletedProcess, contains: str) -> None:
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.startswith("Error:") and len(err.splitlines()) == 1, err
    assert contains in err, err


@pytest.fixture
def tmpfs(tmp_path):
    """A fresh 8 MB tmpfs, unmounted afterwards; skipped where mounting is not permitted."""
    where = tmp_path / "fs"
    where.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True).returncode == 0
    except OSError:
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root where mounting is permitted)")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill_up(where: Path) -> None:
    """Fill the file system of ``where`` to the last byte."""
    fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


def make_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)


def earlier_outputs(command: str, base: Path, sample: Path, smoke_models: Path) -> tuple[Path, list]:
    """Write what an earlier run of ``command`` leaves in ``base``; return the folder and the next run's arguments."""
    if command == "preprocess":
        out = base / "split"
        preprocess([str(sample)], out, seed=1, progress=False)
        return out, ["preprocess", "--data", sample, "--out", out, "--seed", "2", "-q"]
    if command == "evaluate":
        out = base / "report"
        spamclf.evaluate(smoke_models, [str(sample)], report_dir=out, progress=False)
        return out, ["evaluate", "--models", smoke_models, "--data", sample, "--report", out, "--threshold", "0.3", "-q"]
    out = base / "models"
    shutil.copytree(smoke_models, out)
    return out, ["train", "--data", sample, "--models", out, "--force", "--config", ROOT / "configs" / "smoke.yaml", "-q"]


# The size limit lets the small files through and stops the first large one part-way.
FILE_SIZE_LIMIT = {"preprocess": 100_000, "evaluate": 8_000, "train": 20_000}


@pytest.mark.parametrize("command", ["preprocess", "evaluate", "train"])
def test_a_file_size_limit_is_one_line_and_keeps_the_earlier_outputs(command, tmp_path, sample, smoke_models):
    out, args = earlier_outputs(command, tmp_path, sample, smoke_models)
    before, names = snapshot(out), sorted(os.listdir(out.parent))
    proc = spamclf_run(*args, fsize=FILE_SIZE_LIMIT[command])
    assert_one_line_error(proc, "File too large")
    assert snapshot(out) == before
    assert sorted(os.listdir(out.parent)) == names  # no temporary file or folder left beside it


@pytest.mark.parametrize("fault", ["full", "read-only"])
@pytest.mark.parametrize("command", ["preprocess", "evaluate", "train"])
def test_a_full_or_read_only_disk_is_one_line_and_keeps_the_earlier_outputs(command, fault, tmpfs, sample, smoke_models):
    out, args = earlier_outputs(command, tmpfs, sample, smoke_models)
    before = snapshot(out)
    if fault == "full":
        fill_up(tmpfs)
    else:
        make_read_only(tmpfs)
    names = sorted(os.listdir(tmpfs))
    proc = spamclf_run(*args)
    assert_one_line_error(proc, "No space left on device" if fault == "full" else "Read-only file system")
    assert snapshot(out) == before
    assert sorted(os.listdir(tmpfs)) == names


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--models", "MODELS", "--format", "table", "SAMPLE"],
        ["predict", "--models", "MODELS", "--format", "jsonl", "SAMPLE"],
        ["predict", "--models", "MODELS", "--format", "csv", "SAMPLE"],
        ["inspect", "--models", "MODELS", "--json"],
    ],
)
def test_a_full_stdout_is_one_line(args, smoke_models, sample):
    args = [smoke_models if a == "MODELS" else sample / "spam" if a == "SAMPLE" else a for a in args]
    with open("/dev/full", "w") as full:
        proc = spamclf_run(*args, stdout=full)
    assert_one_line_error(proc, "cannot write to standard output: No space left on device")


def test_a_closed_pipe_ends_predict_normally_with_its_summary(smoke_models, sample):
    # Ten copies of the sample: far more rows than a pipe holds, so the writer must meet the closed pipe.
    predict = subprocess.Popen(
        [sys.executable, "-m", "spamclf", "predict", "--models", str(smoke_models), "--format", "jsonl", *[str(sample)] * 10],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    head = subprocess.Popen(["head", "-1"], stdin=predict.stdout, stdout=subprocess.PIPE)
    predict.stdout.close()  # head alone reads the pipe now
    first, _ = head.communicate(timeout=120)
    err = predict.stderr.read().decode()
    assert predict.wait(timeout=120) == 0, err
    assert json.loads(first)["error"] is None
    summary = re.fullmatch(r"(\d+) scored, 0 failed, stopped when the output was closed", err.strip())
    assert summary, err  # the summary, and nothing else: no traceback, no "Exception ignored"
    assert 1 <= int(summary.group(1)) < 3000  # the scoring stopped


def test_a_killed_writers_temporary_files_are_removed_by_the_next_preprocess(tmp_path, sample):
    # A kill -9 part-way leaves a hidden .NAME.tmp-PID-* file (never a partial NAME); the next
    # preprocess into the folder removes it, and leaves a live writer's alone.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".train.jsonl.tmp-{gone.pid}-abc123"
    live = out / f".train.jsonl.tmp-{os.getpid()}-def456"
    other = out / "notes.txt"
    for path in (stale, live, other):
        path.write_text("x")
    result = CliRunner().invoke(main, ["preprocess", "--data", str(sample), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["notes.txt", "stats.json", "test.jsonl", "train.jsonl"]

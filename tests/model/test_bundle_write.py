"""Writing a models directory is atomic: a killed ``train`` never leaves a bundle that loads half-written,
an existing bundle is replaced only with --force and then in one step, and leftovers are cleaned up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from spamclf.model import bundle as bundle_mod
from spamclf.model.bundle import BUNDLE_FILES, MANIFEST_FILE, load_bundle, write_bundle
from spamclf.cli import main
from spamclf.errors import BundleError


def copier(src: Path, marker: str | None = None):
    """A ``fill`` that writes the files of an existing bundle (and optionally marks the config)."""

    def fill(folder: Path) -> None:
        for name in BUNDLE_FILES:
            shutil.copyfile(src / name, folder / name)
        if marker:
            text = (src / "config.json").read_text()
            (folder / "config.json").write_text(text.rstrip() + "\n\n")  # still JSON, different bytes
            (folder / "history.json").write_text(f'{{"marker": "{marker}"}}\n')

    return fill


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_write_then_refuse_without_force_then_replace_with_force(smoke_models, tmp_path):
    target = tmp_path / "models"
    write_bundle(target, copier(smoke_models))
    first = load_bundle(target).bundle_id
    with pytest.raises(BundleError, match="already exists; use --force"):
        write_bundle(target, copier(smoke_models, "again"))
    assert load_bundle(target).bundle_id == first
    write_bundle(target, copier(smoke_models, "second"), force=True)
    assert load_bundle(target).bundle_id != first
    assert '"marker": "second"' in (target / "history.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no temporary or old folder left


def test_replace_works_with_the_two_rename_fallback(smoke_models, tmp_path, monkeypatch):
    target = tmp_path / "models"
    write_bundle(target, copier(smoke_models))
    monkeypatch.setattr(bundle_mod, "_renameat2", lambda *a: False)  # as on a system without renameat2
    write_bundle(target, copier(smoke_models, "fallback"), force=True)
    assert '"marker": "fallback"' in (target / "history.json").read_text()
    load_bundle(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux")
def test_rename_exchange_swaps_two_folders_in_one_call(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "which").write_text("a")
    (b / "which").write_text("b")
    assert bundle_mod._renameat2(a, b, bundle_mod._RENAME_EXCHANGE)
    assert (a / "which").read_text() == "b" and (b / "which").read_text() == "a"
    with pytest.raises(FileExistsError):
        bundle_mod._renameat2(a, b, bundle_mod._RENAME_NOREPLACE)


def test_force_never_replaces_a_folder_that_is_not_a_bundle(smoke_models, tmp_path):
    target = tmp_path / "documents"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    with pytest.raises(BundleError, match="not a spamclf models directory"):
        write_bundle(target, copier(smoke_models), force=True)
    assert (target / "thesis.tex").read_text() == "precious"


def test_train_force_on_a_folder_that_is_not_a_bundle_fails_before_training(sample, tmp_path):
    target = tmp_path / "documents"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    result = CliRunner().invoke(main, ["train", "--data", str(sample), "--models", str(target), "--force", "-q"])
    assert result.exit_code == 3
    assert "not a spamclf models directory" in result.stderr
    assert [p.name for p in target.iterdir()] == ["thesis.tex"]


def test_a_writer_that_fails_leaves_nothing(smoke_models, tmp_path):
    def bad_fill(folder: Path) -> None:
        copier(smoke_models)(folder)
        (folder / "model.pkl").write_bytes(b"\x80\x04N.")

    with pytest.raises(RuntimeError, match="unexpected file model.pkl"):
        write_bundle(tmp_path / "models", bad_fill)
    assert list(tmp_path.iterdir()) == []


def test_stale_work_folders_of_any_target_are_cleaned_up_but_a_live_writers_are_not(smoke_models, tmp_path):
    stale = tmp_path / f".models.tmp-{dead_pid()}-abc123"
    stale.mkdir()
    (stale / "model.keras").write_bytes(b"half")
    stale_old = tmp_path / f".models.old-{dead_pid()}-def456"
    stale_old.mkdir()
    live = tmp_path / f".models.tmp-{os.getppid()}-xyz789"  # our parent process is alive
    live.mkdir()
    other = tmp_path / f".other.tmp-{dead_pid()}-ghi"  # another target's, in the same parent
    other.mkdir()
    (other / "manifest.json").write_text("{}")
    kept = tmp_path / f".mine.tmp-{dead_pid()}-jkl"  # named like one, but holding a file no bundle has
    kept.mkdir()
    (kept / "thesis.tex").write_text("precious")
    (kept / "weights.npz").write_bytes(b"half")
    write_bundle(tmp_path / "models", copier(smoke_models))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["models", live.name, kept.name])
    assert [p.name for p in kept.iterdir()] == ["thesis.tex"]  # only a bundle's own files are ever deleted


KILLED_TRAIN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import spamclf.model.bundle as bundle

    def hang(folder, *rest):
        # The test kills or interrupts us here, at the step of writing it chose (argv[1]).
        Path(sys.argv[2]).write_text(str(folder))
        # Until the test kills or interrupts us, in short sleeps: the kernel may hand SIGINT to any
        # of the process's threads (TensorFlow runs many); Python then raises KeyboardInterrupt in
        # the main thread at its next step, which one long sleep would not reach for ten minutes.
        while True:
            time.sleep(0.05)

    setattr(bundle, sys.argv[1], hang)
    from spamclf.cli import main
    main(sys.argv[3:])
    """
)


def interrupt_train_while_writing(
    target: Path, sample: Path, smoke_config: Path, sig: int, step: str = "_write_manifest"
) -> tuple[subprocess.Popen, Path]:
    """Run ``spamclf train --force`` into ``target``; send ``sig`` once it reaches ``step`` of writing the bundle.

    ``_write_manifest``: every other file is in the work folder; ``_install``: the manifest too, the
    folder is complete but not yet renamed into place.
    """
    ready = target.parent / "ready"
    args = ["train", "--data", str(sample), "--models", str(target), "--config", str(smoke_config), "--force", "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_TRAIN, step, str(ready), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "train never reached the bundle writing step"
            time.sleep(0.05)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"train still running 60 s after signal {sig}; stderr: {proc.stderr.read().decode()!r}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, Path(ready.read_text())


def test_killing_train_mid_write_leaves_the_old_bundle_and_no_partial_one(smoke_models, sample, smoke_config, tmp_path):
    target = tmp_path / "models"
    shutil.copytree(smoke_models, target)
    before = load_bundle(target).bundle_id
    proc, partial = interrupt_train_while_writing(target, sample, smoke_config, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL

    assert partial.parent == tmp_path and partial.name.startswith(".models.tmp-")
    assert partial.is_dir() and (partial / "model.keras").is_file()  # it was killed mid-write
    assert not (partial / MANIFEST_FILE).exists()

    assert load_bundle(target).bundle_id == before  # the old bundle, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["models", "ready", partial.name])
    result = CliRunner().invoke(main, ["predict", "--models", str(partial), str(sample / "spam")])
    assert result.exit_code == 3 and "work folder of a 'spamclf train' that did not finish" in result.stderr

    write_bundle(target, copier(smoke_models, "next"), force=True)  # the next write into the same parent
    assert not partial.exists()
    assert '"marker": "next"' in (target / "history.json").read_text()


def test_a_bundle_that_loading_would_refuse_is_never_installed(smoke_models, tmp_path):
    def bad_fill(folder: Path) -> None:
        copier(smoke_models)(folder)
        (folder / "metadata.json").write_text('{"threshold": 7}')

    with pytest.raises(BundleError, match="no decision threshold between 0 and 1"):
        write_bundle(tmp_path / "models", bad_fill)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_write_cleans_up_and_keeps_the_old_bundle(smoke_models, sample, smoke_config, tmp_path):
    target = tmp_path / "models"
    shutil.copytree(smoke_models, target)
    before = load_bundle(target).bundle_id
    proc, partial = interrupt_train_while_writing(target, sample, smoke_config, signal.SIGINT)
    assert proc.returncode == 130
    assert proc.stderr.read().decode().strip() == "Interrupted."
    assert not partial.exists()
    assert load_bundle(target).bundle_id == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "ready"]


def test_a_work_folder_killed_after_its_manifest_never_loads_and_any_later_train_beside_it_removes_it(
    smoke_models, sample, smoke_config, tmp_path
):
    """Killed between writing the manifest and the rename, the work folder is a complete bundle but for its name."""
    target = tmp_path / "models"
    proc, partial = interrupt_train_while_writing(target, sample, smoke_config, signal.SIGKILL, step="_install")
    assert proc.returncode == -signal.SIGKILL
    assert partial.name.startswith(".models.tmp-") and (partial / MANIFEST_FILE).is_file()
    assert not target.exists()

    with pytest.raises(BundleError, match="work folder of a 'spamclf train' that did not finish"):
        load_bundle(partial)
    link = tmp_path / "looks-fine"
    link.symlink_to(partial)
    with pytest.raises(BundleError, match="work folder"):
        load_bundle(link)
    result = CliRunner().invoke(main, ["predict", "--models", str(partial), str(sample / "spam")])
    assert result.exit_code == 3 and result.stdout == ""
    result = CliRunner().invoke(main, ["inspect", "--models", str(link)])
    assert result.exit_code == 3 and "NOT VERIFIED" in result.stdout

    link.unlink()
    write_bundle(tmp_path / "another", copier(smoke_models))  # any later train into the same parent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["another", "ready"]


def test_train_force_keeps_a_folder_whose_manifest_is_not_a_bundles(sample, smoke_config, tmp_path):
    """The issue's case: a manifest.json of some other tool beside someone's work."""
    p = tmp_path / "p"
    (p / "src").mkdir(parents=True)
    (p / "src" / "main.c").write_text("int main;")
    (p / "manifest.json").write_text('{"manifest_version":3}\n')
    (p / "thesis.tex").write_text("work\n")
    args = ["train", "--data", str(sample), "--models", str(p), "--config", str(smoke_config), "--force", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "not a spamclf models directory" in lines[0]
    assert sorted(x.name for x in p.iterdir()) == ["manifest.json", "src", "thesis.tex"]
    assert (p / "thesis.tex").read_text() == "work\n" and (p / "src" / "main.c").is_file()


@pytest.mark.parametrize("extra", ["notes.txt", "src/main.c", "model.keras.orig"])
def test_force_keeps_someones_files_beside_a_real_bundle(smoke_models, tmp_path, extra):
    """A real manifest, but the folder holds more than its list: nothing of it may go."""
    target = tmp_path / "models"
    shutil.copytree(smoke_models, target)
    (target / extra).parent.mkdir(exist_ok=True)
    (target / extra).write_text("mine")
    before = sorted(p.name for p in target.iterdir())
    with pytest.raises(BundleError, match=rf"not a spamclf models directory \(it holds {extra.split('/')[0]}, which is not a file of its bundle\)"):
        write_bundle(target, copier(smoke_models, "second"), force=True)
    assert sorted(p.name for p in target.iterdir()) == before and (target / extra).read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_force_replaces_a_changed_or_incomplete_bundle_and_an_empty_folder(smoke_models, tmp_path):
    """A bundle whose files were changed or deleted is still a bundle by its manifest."""
    target = tmp_path / "models"
    shutil.copytree(smoke_models, target)
    (target / "history.json").write_text("changed")
    (target / "idf.npz").unlink()
    write_bundle(target, copier(smoke_models, "second"), force=True)
    assert '"marker": "second"' in (target / "history.json").read_text()
    load_bundle(target)
    empty = tmp_path / "empty"
    empty.mkdir()
    write_bundle(empty, copier(smoke_models), force=True)
    load_bundle(empty)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "models"]


@pytest.mark.parametrize("manifest", [
    {"format_version": 1, "spamclf_version": "0.1.0"},  # no file list
    "not even JSON",
])
def test_force_keeps_a_folder_whose_manifest_is_not_a_spamclf_manifest(smoke_models, tmp_path, manifest):
    target = tmp_path / "models"
    shutil.copytree(smoke_models, target)
    (target / MANIFEST_FILE).write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    with pytest.raises(BundleError, match="its manifest.json is not a spamclf manifest"):
        write_bundle(target, copier(smoke_models, "second"), force=True)
    assert (target / "history.json").read_bytes() == (smoke_models / "history.json").read_bytes()


@pytest.mark.parametrize("name, key", [("weights.npz", "kernel_0"), ("idf.npz", "idf")])
def test_a_bundle_with_weights_that_are_not_finite_is_never_written(smoke_models, tmp_path, name, key):
    """A run that diverged has NaN weights: the writer's last check refuses them, and nothing is left."""

    def nan_fill(folder: Path) -> None:
        copier(smoke_models)(folder)
        with np.load(smoke_models / name) as npz:
            arrays = dict(npz)
        arrays[key][0] = np.nan
        with open(folder / name, "wb") as fh:
            np.savez(fh, **arrays)

    with pytest.raises(BundleError, match=f"{name} holds a weight that is not a finite number"):
        write_bundle(tmp_path / "models", nan_fill)
    assert list(tmp_path.iterdir()) == []

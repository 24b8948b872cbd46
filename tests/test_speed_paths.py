"""The fast paths give the same answers as the plain ones: parallel extraction, background TensorFlow import."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest

import spamclf
from spamclf.mail.sources import Item


def test_parallel_extraction_gives_the_same_rows_in_the_same_order(smoke_models, sample):
    clf = spamclf.load(smoke_models)
    serial = [r.as_dict() for r in clf.predict([sample], jobs=1)]
    parallel = [r.as_dict() for r in clf.predict([sample], jobs=2)]
    assert len(serial) >= 300 and parallel == serial


def test_workers_start_only_for_inputs_larger_than_a_batch(smoke_models, sample):
    clf = spamclf.load(smoke_models)
    files = sorted((sample / "spam").iterdir())
    items = [Item(str(p), raw=p.read_bytes()) for p in files[:3]]
    rows = clf.predict_items(iter(items), jobs=2, batch_size=256)
    next(rows)
    assert multiprocessing.active_children() == []
    list(rows)
    many = [Item(str(p), raw=p.read_bytes()) for p in files] + [Item("missing.eml", error="cannot read")]
    rows = clf.predict_items(iter(many), jobs=2, batch_size=16)
    first = next(rows)
    assert multiprocessing.active_children()  # a pool extracts the later batches
    rest = list(rows)
    assert [first.path, *(r.path for r in rest)] == [i.path for i in many]
    assert rest[-1].error == "cannot read" and rest[-1].score is None
    serial = list(clf.predict_items(iter(many), jobs=1, batch_size=16))
    assert [r.score for r in serial] == [first.score, *(r.score for r in rest)]


def test_cli_jobs_option_matches_serial_output(smoke_models, sample):
    def run(jobs: str) -> str:
        cmd = [sys.executable, "-m", "spamclf", "predict", "--models", str(smoke_models), "--format", "csv", "--jobs", jobs, str(sample)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    serial = run("1")
    assert serial.count("\n") >= 300 and run("2") == serial


def test_training_with_the_background_import_is_reproducible(sample, smoke_config, tmp_path):
    # train() starts importing TensorFlow in a thread while it reads the mail; the result must
    # not depend on that: two runs give the same weights, bit for bit
    import numpy as np

    from spamclf.model.bundle import load_weights

    for name in ("a", "b"):
        spamclf.train([str(sample)], tmp_path / name, config=smoke_config, overrides=["train.epochs=2"], progress=False)
    for (ka, ba), (kb, bb) in zip(load_weights(tmp_path / "a" / "weights.npz"), load_weights(tmp_path / "b" / "weights.npz")):
        assert np.array_equal(ka, kb) and np.array_equal(ba, bb)


def test_parallel_reading_for_training_gives_the_same_data_and_skip_log(sample, tmp_path):
    # Workers only extract: messages, their order, dedupe and the skip log (in order) must not change.
    import shutil

    from spamclf.mail.labelled import load_labelled
    from spamclf.mail.extract import ExtractOptions

    data = tmp_path / "data"
    shutil.copytree(sample, data)
    spam = sorted((data / "spam").iterdir())
    shutil.copy(spam[0], data / "ham" / "copy_with_other_label.txt")
    shutil.copy(spam[1], data / "spam" / "zz_same_label_copy.txt")
    (data / "spam" / ".hidden").write_text("x")
    (data / "ham" / "zz_dangling").symlink_to(tmp_path / "nowhere")
    runs = [load_labelled([str(data)], ExtractOptions(), progress=False, jobs=jobs, batch_size=16) for jobs in (1, 2)]
    serial, parallel = ({"paths": d.paths, "texts": d.texts, "labels": d.labels, "digests": d.digests,
                         "skips": d.skips.skipped, "duplicates": d.duplicates} for d in runs)
    assert serial["duplicates"] == 2 and len(serial["skips"]) == 4 and len(serial["paths"]) == 300
    assert parallel == serial
    # Training counts terms in the workers, the texts left there (untidy): the fit is the one of the loaded texts
    from spamclf.mail.labelled import count_labelled
    from spamclf.model.features import TfidfFeatures

    x_texts = TfidfFeatures().fit_transform(serial["texts"])
    for jobs in (1, 2):
        counted = count_labelled([str(data)], ExtractOptions(), TfidfFeatures(), progress=False, jobs=jobs, batch_size=16)
        assert counted.texts == [] and len(counted) == 300 and len(counted.term_counts) == -(-300 // 16)
        assert (counted.paths, counted.digests) == (serial["paths"], serial["digests"])
        assert (TfidfFeatures().fit_counted(counted.term_counts) != x_texts).nnz == 0


def test_jobs_option_on_the_labelled_commands_gives_the_same_results(tmp_path, sample, smoke_models):
    """--jobs 1 (no workers) and --jobs 2 read the same data: same split, same evaluation."""
    from click.testing import CliRunner

    from spamclf.cli import main

    runner = CliRunner()
    outs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"split{jobs}"
        assert runner.invoke(main, ["preprocess", "--data", str(sample), "--out", str(out), "--jobs", jobs, "-q"]).exit_code == 0
        outs[jobs] = (out / "train.jsonl").read_bytes(), (out / "test.jsonl").read_bytes()
        result = runner.invoke(main, ["evaluate", "--models", str(smoke_models), "--data", str(sample), "--jobs", jobs, "--json", "-q"])
        outs[jobs] += (result.stdout,)
    assert outs["1"] == outs["2"]


def test_scoring_through_the_python_api_runs_blas_on_one_thread_and_leaves_the_callers_setting(smoke_models, sample):
    # The caller's process has two BLAS threads (NumPy loaded before spamclf could set anything);
    # while a batch is scored there is one, and afterwards two again.
    code = (
        "import sys, spamclf, spamclf.model.scorer as scorer\nfrom threadpoolctl import threadpool_info\n"
        "blas = lambda: max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas')\n"
        "seen, real = [], scorer.logits\n"
        "scorer.logits = lambda x, layers: seen.append(blas()) or real(x, layers)\n"
        "rows = list(spamclf.load(sys.argv[1]).predict([sys.argv[2]], jobs=1, explain=2))\n"
        "print(blas(), len(rows) >= 300, sorted(set(seen)))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code, str(smoke_models), str(sample)], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["2", "True", "[1]"]


def test_the_program_runs_numpy_without_huge_pages_unless_the_environment_asks():
    # NumPy's huge pages for large arrays: faulting them in stalled saving a bundle after training.
    code = "import spamclf.cli, numpy; print(numpy._core.multiarray._set_madvise_hugepage(True))"
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    for setting, used in ((None, "False"), ("1", "True")):
        run_env = env if setting is None else {**env, "NUMPY_MADVISE_HUGEPAGE": setting}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env)
        assert proc.returncode == 0 and proc.stdout.strip() == used, proc.stderr[-2000:]


def test_keras_loads_without_scikit_learn_matplotlib_and_pandas_which_stay_importable():
    code = (
        "import sys\nfrom spamclf.model.network import import_keras\nimport_keras()\n"
        "print(sorted(m for m in ('sklearn', 'matplotlib', 'pandas') if m in sys.modules))\n"
        "import sklearn.base, matplotlib, pandas\nprint('importable')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "importable"]


def test_a_training_run_draws_without_matplotlib_and_extracts_in_niced_workers(tmp_path, sample, smoke_config):
    # Matplotlib's import would take turns on the interpreter lock with building and tracing the
    # network; the learning curves are drawn with Pillow instead (evaluation reports still use it).
    # The extraction workers run at a lower priority than the process importing TensorFlow.
    seen = tmp_path / "niceness"
    code = (
        "import os, sys, spamclf, spamclf.workers as p\n"
        "real = p._init_worker\n"
        "def init(*args):\n"
        "    real(*args)\n"
        f"    open({str(seen)!r}, 'a').write(f'{{os.nice(0)}}\\n')\n"
        "p._init_worker = init\n"
        f"spamclf.train([{str(sample)!r}], {str(tmp_path / 'models')!r}, config={str(smoke_config)!r}, progress=False, jobs=2)\n"
        "print('matplotlib' in sys.modules, 'PIL' in sys.modules, os.nice(0))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["False", "True"]
    assert (tmp_path / "models" / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
    from spamclf.commands.train import WORKER_NICE

    own = int(out[2])
    assert seen.read_text().split() == [str(min(own + WORKER_NICE, 19))] * 2


def test_keras_import_leaves_the_collector_on_and_its_objects_frozen():
    # Importing Keras with the collector paused: on again afterwards, and the import's objects frozen
    # (later full collections skip them); a collector the caller turned off stays off.
    code = (
        "import gc, sys\nfrom spamclf.model.network import import_keras\n"
        "if sys.argv[1] == 'off': gc.disable()\n"
        "before = gc.get_freeze_count()\nimport_keras()\n"
        "print(gc.isenabled(), gc.get_freeze_count() - before > 100_000)\n"
    )
    for state, enabled in (("on", "True"), ("off", "False")):
        out = subprocess.run([sys.executable, "-c", code, state], capture_output=True, text=True, check=True).stdout.split()
        assert out == [enabled, "True"]


def test_overlapping_pauses_of_the_collector_restore_it_once_when_the_last_ends():
    import gc

    from spamclf.model.tensorflow_import import collector_paused

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        first, second = collector_paused(), collector_paused()
        first.__enter__()
        assert not gc.isenabled()
        second.__enter__()  # another thread's import, started while the first runs
        made = [[] for _ in range(1000)]
        first.__exit__(None, None, None)  # the first ends before the second: still paused
        assert not gc.isenabled()
        second.__exit__(None, None, None)
        assert gc.isenabled()
        assert gc.get_freeze_count() - frozen >= len(made)  # what the imports made is frozen
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


def test_hidden_modules_fail_to_import_only_inside_the_block_and_only_in_its_thread():
    import threading

    from spamclf.model.network import _hidden

    sys.modules.pop("spamclf_no_such_module", None)
    sys.modules.pop("colorsys", None)  # a small module nothing here uses
    other = {}
    with _hidden(("spamclf_no_such_module", "json", "colorsys")):
        with pytest.raises(ImportError):
            import spamclf_no_such_module  # noqa: F401
        with pytest.raises(ImportError):
            import colorsys  # noqa: F401
        import json  # already imported: left alone

        assert json.dumps(1) == "1"
        # another thread (training's main thread reading mail while Keras loads) imports as usual
        thread = threading.Thread(target=lambda: other.update(colorsys=__import__("colorsys")))
        thread.start()
        thread.join()
    assert other["colorsys"].rgb_to_hsv(1, 0, 0) == (0, 1, 1) and sys.modules["colorsys"] is other["colorsys"]
    assert "spamclf_no_such_module" not in sys.modules and sys.modules["json"] is json


@pytest.mark.parametrize("jobs", [1, 2])
def test_training_starts_its_import_once_the_workers_are_forked(sample, jobs):
    # The callback (training's background import) runs once, after the workers exist: they were
    # forked from this process (its children), not started by a fork server while a thread ran.
    from spamclf.mail.labelled import load_labelled
    from spamclf.mail.extract import ExtractOptions

    seen = []
    data = load_labelled([str(sample)], ExtractOptions(), progress=False, jobs=jobs, batch_size=32,
                         started=lambda: seen.append(len(multiprocessing.active_children())))
    assert len(data) == 300 and seen == [0 if jobs == 1 else 2]

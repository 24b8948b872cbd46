"""--engine ray on a real local Ray runtime (2 CPUs, started once): scoring and training.

Scoring must give local ``predict``'s rows, one per input, even when a worker dies;
training must give the vocabulary local training fits and a bundle local ``predict`` loads.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from conftest import run_python  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from spamclf.ray_engine import scoring as ray_scoring  # noqa: E402
from spamclf.cli import main  # noqa: E402
from spamclf.commands.predict import Classifier  # noqa: E402
from spamclf.mail.sources import SkipLog  # noqa: E402


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """One small local runtime for the module; the crash hook's marker path is set before workers start."""
    marker = tmp_path_factory.mktemp("crash") / "die-at"
    os.environ[ray_scoring.CRASH_MARKER_ENV] = str(marker)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=400 * 1024 * 1024)
    yield marker
    ray.shutdown()
    os.environ.pop(ray_scoring.CRASH_MARKER_ENV, None)


def mbox(files) -> bytes:
    """The messages of ``files`` as one mbox, each after an envelope line."""
    return b"".join(b"From someone@example.com Mon Jan  1 00:00:00 2024\n" + f.read_bytes() + b"\n" for f in files)


def cut_gzip(data: bytes) -> bytes:
    """``data`` gzipped and cut after three quarters: a truncated archive."""
    packed = gzip.compress(data)
    return packed[: len(packed) * 3 // 4]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample):
    """Sample spam plus a folder of awkward inputs: hidden, backup, dangling link, an mbox, a CSV, a CSV with
    no rows, a truncated gzip mbox (both logged while reading, on the worker); and a missing path."""
    extra = tmp_path_factory.mktemp("extra")
    hams = sorted((sample / "ham").iterdir())[:3]
    shutil.copy(hams[0], extra / "plain.eml")
    shutil.copy(hams[1], extra / ".hidden.eml")
    shutil.copy(hams[1], extra / "draft.eml~")
    (extra / "gone.eml").symlink_to(extra / "nowhere")
    (extra / "box.mbox").write_bytes(mbox(hams))
    (extra / "table.csv").write_text('text\n"Subject: cheap pills\n\nbuy now"\n"Subject: lunch\n\nsee you at noon"\n')
    (extra / "empty.csv").write_text("text\n")
    (extra / "cut.mbox.gz").write_bytes(cut_gzip(mbox(hams)))
    return [str(sample / "spam"), str(extra), str(extra / "missing.eml")]


def local_rows(models, inputs):
    skips = SkipLog()
    rows = [r.as_dict() for r in Classifier.load(models).predict(inputs, skips=skips)]
    return rows, skips


def assert_same_rows(got: list[dict], want: list[dict]) -> None:
    assert [r["path"] for r in got] == [r["path"] for r in want]
    for g, w in zip(got, want):
        assert (g["label"], g["error"]) == (w["label"], w["error"]), g["path"]
        if w["score"] is None:
            assert g["score"] is None
        else:
            assert abs(g["score"] - w["score"]) <= 1e-6, g["path"]


def test_rows_equal_local_predict(ray_local, smoke_models, inputs):
    want, local_skips = local_rows(smoke_models, inputs)
    skips = SkipLog()
    got = [r.as_dict() for r in ray_scoring.iter_predictions(inputs, smoke_models, workers=2, skips=skips)]
    assert_same_rows(got, want)
    assert any(r["path"].endswith("box.mbox#3") for r in got) and any(r["path"].endswith("table.csv#row=2") for r in got)
    errors = {Path(r["path"]).name for r in got if r["error"]}
    assert errors == {"gone.eml", "missing.eml"}
    assert sorted(e["path"] for e in skips.skipped) == sorted(e["path"] for e in local_skips.skipped)
    # what the workers passed over while reading reaches the caller's log too, with the same reasons
    assert skips.counts() == local_skips.counts() and "csv file with no rows" in skips.counts()
    assert any(r.startswith("corrupt gzip data after") for r in skips.counts())


def test_killed_worker_still_one_row_per_input(ray_local, smoke_models, sample):
    """A scoring actor dies after its first batch; Ray restarts it and reruns the lost batch."""
    ray_local.write_text("2")  # die at a worker's second batch: mid-run, after rows were already emitted
    want, _ = local_rows(smoke_models, [sample])
    got = [r.as_dict() for r in ray_scoring.iter_predictions([sample], smoke_models, workers=2)]
    assert not ray_local.exists(), "no worker died: the test did not test anything"
    assert_same_rows(got, want)
    assert len({r["path"] for r in got}) == len(got) == len(want) > 300


def test_cli_writes_parquet_and_jsonl(ray_local, smoke_models, inputs, tmp_path):
    import pyarrow.dataset as pads

    want, _ = local_rows(smoke_models, inputs)
    runner = CliRunner()
    out = tmp_path / "scores"
    result = runner.invoke(main, ["predict", "--models", str(smoke_models), "--engine", "ray", "--out", str(out), *inputs])
    assert result.exit_code == 3, result.output  # two inputs could not be read
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["failed"], summary["format"]) == (len(want), 2, "parquet")
    assert "csv file with no rows" in result.stderr  # passed over on a worker, still in the summary line
    table = pads.dataset(str(out), format="parquet").to_table()
    assert table.column_names == ["path", "score", "label", "error"]
    assert_same_rows(sorted(table.to_pylist(), key=lambda r: r["path"]), sorted(want, key=lambda r: r["path"]))

    result = runner.invoke(main, ["predict", "--models", str(smoke_models), "--engine", "ray", "--format", "jsonl", "--out", str(tmp_path / "j"), inputs[0]])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for f in sorted((tmp_path / "j").iterdir()) for line in f.read_text().splitlines()]
    assert len(lines) == len(list((Path(inputs[0])).iterdir()))


def test_cli_stdout_matches_local(ray_local, smoke_models, sample):
    runner = CliRunner()
    files = [str(p) for p in sorted((sample / "ham").iterdir())[:20]]
    local = runner.invoke(main, ["predict", "--models", str(smoke_models), "--format", "csv", *files])
    distributed = runner.invoke(main, ["predict", "--models", str(smoke_models), "--format", "csv", "--engine", "ray", "--workers", "2", *files])
    assert local.exit_code == distributed.exit_code == 0, distributed.output
    assert distributed.stdout == local.stdout


def test_score_dataset_of_raw_messages(ray_local, smoke_models, sample):
    """The Python API: a Dataset from read_binary_files in, the same scores as score_messages out."""
    files = sorted((sample / "spam").iterdir())[:24]
    ds = ray.data.read_binary_files([str(f) for f in files], include_paths=True)
    rows = ray_scoring.score_dataset(ds, smoke_models, workers=1).take_all()  # one CPU left for the read tasks
    clf = Classifier.load(smoke_models)
    want = dict(zip((f.name for f in files), clf.score_messages([f.read_bytes() for f in files]).tolist()))
    assert len(rows) == len(files)
    for row in rows:
        assert row["error"] is None
        assert abs(row["score"] - want[Path(row["path"]).name]) <= 1e-6
        assert row["label"] == clf.label(row["score"])


def test_read_messages_then_score_dataset(ray_local, smoke_models, inputs):
    """The two public stages composed by hand: mailboxes and tables expanded by Ray tasks, then scored."""
    from spamclf.model.bundle import load_bundle
    from spamclf.mail.extract import ExtractOptions

    want, _ = local_rows(smoke_models, inputs)
    max_bytes = ExtractOptions.from_config(load_bundle(smoke_models).config).max_bytes
    ds = ray_scoring.read_messages(inputs, max_bytes)
    got = ray_scoring.score_dataset(ds, smoke_models, workers=1).take_all()  # one CPU left for the read tasks
    assert_same_rows(got, want)


def test_distributed_vocabulary_equals_sklearn(ray_local, sample):
    from spamclf.config import load_config
    from spamclf.mail.labelled import load_labelled
    from spamclf.mail.extract import ExtractOptions
    from spamclf.model.features import TfidfFeatures
    from spamclf.ray_engine.train import fit_features_on_ray

    texts = load_labelled([str(sample)], ExtractOptions.from_config(load_config()), progress=False).texts
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=4)
    # max_features far below the vocabulary, so the cut lands among terms of equal frequency;
    # max_df and bigrams so that every rule is exercised
    settings = TfidfFeatures(max_features=700, min_df=2, max_df=0.5, ngram_max=2).settings()
    local = TfidfFeatures(**settings).fit(texts)
    distributed = fit_features_on_ray(ds, len(texts), settings)
    assert len(local.vocabulary_) == 700
    assert distributed.vocabulary_ == local.vocabulary_
    np.testing.assert_array_equal(distributed.idf_, local.idf_)


def test_train_two_workers_gives_a_bundle_local_predict_loads(ray_local, smoke_models, sample, smoke_config, tmp_path):
    import spamclf
    from spamclf.model.bundle import load_bundle, verify

    out = tmp_path / "models"
    # Early stopping on, with a learning rate that overfits the sample within a few epochs: the
    # replicas must agree when to stop, and the bundle must hold the best epoch's weights.
    stopping = ["--set", "train.early_stopping=true", "--set", "train.learning_rate=0.05", "--set", "train.epochs=12"]
    # A relative path, as a user gives it: the log is written there, not in a Ray worker's folder.
    log = ["--set", f"train.csv_log={os.path.relpath(tmp_path / 'log.csv')}"]
    args = ["train", "--data", str(sample), "--models", str(out), "--config", str(smoke_config), "--engine", "ray", "--workers", "2", "-q", *stopping, *log]
    generated = set(Path(tempfile.gettempdir()).glob("__autograph_generated_file*"))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # Ray ends its Train workers without exit handlers: what TensorFlow wrote to the temporary
    # folder for their compiled steps must not outlive the run.
    assert set(Path(tempfile.gettempdir()).glob("__autograph_generated_file*")) <= generated
    summary = json.loads(result.stdout)
    assert summary["engine"]["workers"] == 2
    verify(out)
    ray_bundle, local_bundle = load_bundle(out), load_bundle(smoke_models)
    assert ray_bundle.features.vocabulary_ == local_bundle.features.vocabulary_  # same data, same config
    assert ray_bundle.metadata["data"]["fingerprint"] == local_bundle.metadata["data"]["fingerprint"]
    rows = list(spamclf.load(out).predict([sample / "spam"]))
    assert len(rows) == 120 and sum(r.label == "spam" for r in rows) >= 100
    ray_acc = spamclf.evaluate(out, [str(sample)], progress=False)["accuracy"]
    local_acc = spamclf.evaluate(smoke_models, [str(sample)], progress=False)["accuracy"]
    assert abs(ray_acc - local_acc) <= 0.03, (ray_acc, local_acc)
    val = ray_bundle.metadata["validation_metrics"]["accuracy"], local_bundle.metadata["validation_metrics"]["accuracy"]
    assert abs(val[0] - val[1]) <= 0.07, val

    # The best validation loss the Ray Train workers all-reduced from their shards is the
    # loss of the saved weights on the whole validation set: every validation row was
    # evaluated exactly once, rank 0's weights are the ones every replica held, and early
    # stopping restored the best epoch's.
    from spamclf.mail.labelled import load_labelled, stratified_split
    from spamclf.mail.extract import ExtractOptions
    from spamclf.model.scorer import logits

    cfg = ray_bundle.config
    assert cfg["train"]["early_stopping"]
    history = json.loads((out / "history.json").read_text())
    with (tmp_path / "log.csv").open() as fh:
        logged = list(csv.DictReader(fh))  # Keras' CSVLogger on rank 0, once per epoch
    assert [float(row["val_loss"]) for row in logged] == pytest.approx(history["val_loss"], rel=1e-6)
    best = int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) == summary["epochs_run"] == best + 1 + cfg["train"]["patience"] < cfg["train"]["epochs"]
    assert history["val_loss"][-1] > history["val_loss"][best] * 1.01  # the restore is seen
    data = load_labelled([str(sample)], ExtractOptions.from_config(cfg), progress=False)
    _, val_idx = stratified_split(data.y, cfg["train"]["validation_split"], cfg["train"]["seed"])
    z = logits(ray_bundle.features.transform([data.texts[i] for i in val_idx]), ray_bundle.layers).astype(np.float64)
    y = data.y[val_idx]
    loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    assert abs(history["val_loss"][best] - loss) <= 1e-4 * max(1.0, loss), (history["val_loss"][best], loss)
    assert history["val_loss"][0] > history["val_loss"][best]  # the replicas did learn, together


def test_errors_are_one_line(tmp_path, sample):
    runner = CliRunner()
    result = runner.invoke(main, ["predict", "--models", str(tmp_path / "none"), "--engine", "ray", str(sample)])
    assert result.exit_code == 3 and result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    result = runner.invoke(main, ["predict", "--models", str(tmp_path / "none"), "--out", str(tmp_path / "o"), str(sample)])
    assert result.exit_code == 2 and "--engine ray" in result.output


def test_cli_and_local_predict_do_not_import_ray(smoke_models, sample):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "import spamclf.cli, spamclf.ray_engine.scoring, spamclf.ray_engine.train\n"
        f"r = CliRunner().invoke(spamclf.cli.main, ['predict', '--models', {str(smoke_models)!r}, {str(sample / 'spam')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    assert run_python(code) == "[]"


def test_without_ray_one_line_error(smoke_models, sample, tmp_path):
    """What a user without the extra sees: one line naming the extra, nothing on stdout."""
    for args in (
        ["predict", "--models", str(smoke_models), "--engine", "ray", str(sample / "spam")],
        ["train", "--data", str(sample), "--models", str(tmp_path / "m"), "--engine", "ray"],
    ):
        code = f"import sys\nsys.modules['ray'] = None  # as if not installed\nfrom spamclf.cli import main\nmain({args!r})\n"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 1, out.stderr
        assert out.stdout == ""
        assert out.stderr.strip() == "Error: --engine ray needs Ray: pip install 'spamclf[ray]'"


def test_distributed_reading_logs_what_it_passes_over_as_local_training_does(sample, tmp_path):
    # The read stage (_read_labelled, run by Ray tasks) and its replay (_kept), called directly: the
    # same messages kept, and the same skip log, as load_labelled's, for a table with no rows, a
    # truncated gzip mbox, an unreadable link and an exact duplicate.
    import pyarrow as pa

    from spamclf.config import load_config
    from spamclf.mail.labelled import load_labelled
    from spamclf.mail.extract import ExtractOptions
    from spamclf.ray_engine.train import _kept, _read_labelled, list_labelled_files

    data = tmp_path / "data"
    spams, hams = sorted((sample / "spam").iterdir())[:3], sorted((sample / "ham").iterdir())[:4]
    for label, files in (("spam", spams), ("ham", hams)):
        (data / label).mkdir(parents=True)
        for f in files:
            shutil.copy(f, data / label / f.name)
    shutil.copy(hams[0], data / "ham" / "again.eml")
    (data / "ham" / "empty.csv").write_text("text\n")
    (data / "ham" / "gone.eml").symlink_to(data / "nowhere")
    (data / "spam" / "cut.mbox.gz").write_bytes(cut_gzip(mbox(hams[1:])))

    options = ExtractOptions.from_config(load_config())
    local = load_labelled([str(data)], options, progress=False, jobs=1)
    skips = SkipLog()
    units = list_labelled_files([str(data)], skips)
    batch = pa.table({"unit": list(range(len(units))), "source": [s for s, _ in units], "label": [label for _, label in units]})
    keys, distributed = _kept(_read_labelled(batch, options.__dict__), skips)
    assert distributed.paths == local.paths and distributed.labels == local.labels and len(keys) == len(local)
    assert skips.skipped == local.skips.skipped
    assert {"csv file with no rows", "exact duplicate (the first copy is kept)"} <= set(skips.counts())
    assert any(r.startswith("corrupt gzip data after") for r in skips.counts()) and any(r.startswith("unreadable") for r in skips.counts())


def test_ray_training_refuses_to_replace_a_folder_that_is_not_a_bundle_before_any_work(tmp_path, sample):
    # The same models-dir check as local training, before Ray is even imported: --force never deletes
    # someone's files, and says so at once rather than after training.
    target = tmp_path / "p"
    target.mkdir()
    (target / "manifest.json").write_text('{"manifest_version": 3}')
    (target / "thesis.tex").write_text("work")
    args = ["train", "--data", str(sample), "--models", str(target), "--engine", "ray", "--force", "-q"]
    code = (
        "import sys\nfrom spamclf.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as exc:\n    print(exc.code, 'ray' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.split() == ["3", "False"] and "not a spamclf models directory" in proc.stderr
    assert (target / "thesis.tex").read_text() == "work"

"""The command line: help and version, the four commands end to end, and one-line errors for wrong input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from spamclf.cli import main

COMMANDS = ["preprocess", "train", "evaluate", "predict", "learn", "inspect"]
METRIC_KEYS = {"accuracy", "precision", "recall", "f1", "roc_auc", "false_positive_rate", "n", "confusion_matrix"}


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_version():
    from spamclf import __version__

    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help_with_an_example(command):
    result = run(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_evaluate_json_has_the_contract_keys(smoke_models, sample):
    result = run("evaluate", "--models", smoke_models, "--data", sample, "--json", "-q")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert METRIC_KEYS <= set(doc)
    assert doc["n"] == 300
    assert sum(map(sum, doc["confusion_matrix"])) == 300
    assert doc["accuracy"] > 0.9  # a real model, even the smoke one, learns this sample


def test_evaluate_table(smoke_models, sample):
    result = run("evaluate", "--models", smoke_models, "--data", sample, "-q")
    assert result.exit_code == 0
    for word in ("accuracy", "precision", "recall", "roc_auc", "false_positive_rate", "confusion matrix"):
        assert word in result.stdout


@pytest.mark.parametrize("fmt", ["table", "csv", "jsonl"])
def test_predict_one_row_per_file_in_stable_order(smoke_models, sample, fmt):
    result = run("predict", "--models", smoke_models, "--format", fmt, sample / "spam")
    assert result.exit_code == 0, result.output
    files = sorted(str(p) for p in (sample / "spam").iterdir())
    lines = result.stdout.strip().splitlines()
    if fmt == "jsonl":
        rows = [json.loads(line) for line in lines]
        assert [r["path"] for r in rows] == files
        assert all(0.0 <= r["score"] <= 1.0 and r["label"] in ("spam", "ham") and r["error"] is None for r in rows)
        assert sum(r["label"] == "spam" for r in rows) > 0.8 * len(rows)
    elif fmt == "csv":
        assert lines[0] == "path,score,label,error"
        assert [line.split(",")[0] for line in lines[1:]] == files
    else:
        assert lines[0].split() == ["LABEL", "SCORE", "PATH"]
        assert [line.split()[-1] for line in lines[1:]] == files
    assert f"{len(files)} scored, 0 failed" in result.stderr


def test_predict_unreadable_input_gets_an_error_row_and_exit_3(smoke_models, sample, tmp_path):
    good = next((sample / "ham").iterdir())
    result = run("predict", "--models", smoke_models, "--format", "jsonl", good, tmp_path / "missing.eml")
    assert result.exit_code == 3
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(good), str(tmp_path / "missing.eml")]
    assert rows[0]["error"] is None and rows[1]["error"] and rows[1]["score"] is None
    assert "1 scored, 1 failed" in result.stderr


def test_messages_longer_than_max_bytes_are_scored_on_their_start_and_said_so(smoke_models, sample, tmp_path):
    from spamclf.commands.predict import Classifier

    clf = Classifier.load(smoke_models)
    cap = clf.options.max_bytes
    spam, ham = sorted((sample / "spam").iterdir())[0], sorted((sample / "ham").iterdir())[0]
    big = tmp_path / "spam" / "big.eml"
    big.parent.mkdir()
    big.write_bytes(spam.read_bytes() + b"\n" + b"padding words here\n" * (cap // 19 + 100))
    (tmp_path / "ham").mkdir()
    (tmp_path / "ham" / "small.eml").write_bytes(ham.read_bytes())

    result = run("predict", "--models", smoke_models, "--format", "jsonl", big, ham)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["truncated"] is True and "truncated" not in rows[1]
    assert rows[0]["score"] == pytest.approx(float(clf.score_messages([big.read_bytes()[:cap]])[0]), abs=1e-6)
    assert f"2 scored, 0 failed, 1 cut at {cap} bytes (extract.max_bytes)" in result.stderr
    csv_out = run("predict", "--models", smoke_models, "--format", "csv", big)
    assert csv_out.stdout.splitlines()[0] == "path,score,label,error"  # the CSV columns stay as they are

    evaluated = run("evaluate", "--models", smoke_models, "--data", tmp_path, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["truncated_messages"] == 1


def test_predict_threshold_option_changes_labels(smoke_models, sample):
    everything_spam = run("predict", "--models", smoke_models, "--format", "jsonl", "--threshold", "0", sample / "ham")
    labels = {json.loads(line)["label"] for line in everything_spam.stdout.splitlines()}
    assert labels == {"spam"}


def test_preprocess_then_train_and_evaluate_on_its_files(tmp_path, sample, smoke_config):
    out = tmp_path / "split"
    result = run("preprocess", "--data", sample, "--out", out, "--seed", "3", "-q")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["messages"] == 300
    assert stats["train"]["spam"] + stats["test"]["spam"] == 120
    assert stats["test"] == {"ham": 36, "spam": 24}  # stratified 20 %
    models = tmp_path / "models"
    result = run("train", "--data", out / "train.jsonl", "--models", models, "--config", smoke_config, "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["data"]["messages"] == 240
    result = run("evaluate", "--models", models, "--data", out / "test.jsonl", "--json", "-q")
    assert json.loads(result.stdout)["n"] == 60


def test_preprocess_is_reproducible(tmp_path, sample):
    for name in ("a", "b"):
        assert run("preprocess", "--data", sample, "--out", tmp_path / name, "--seed", "7", "-q").exit_code == 0
    for split in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "a" / split).read_bytes() == (tmp_path / "b" / split).read_bytes()
    run("preprocess", "--data", sample, "--out", tmp_path / "c", "--seed", "8", "-q")
    assert (tmp_path / "a" / "test.jsonl").read_bytes() != (tmp_path / "c" / "test.jsonl").read_bytes()


def test_preprocess_refuses_an_out_folder_that_an_input_would_read(tmp_path, sample):
    # --out D/spam, run twice, used to label its own split spam and drop the real ham as duplicates of it.
    data = tmp_path / "data"
    shutil.copytree(sample, data)
    before = sorted(p for p in data.rglob("*"))
    for args in (
        ["--data", data, "--out", data / "spam"],
        ["--data", data, "--out", data],
        ["--spam", data / "spam", "--ham", data / "ham", "--out", data / "ham" / "split"],
        ["--data", tmp_path / "link", "--out", data / "spam"],  # the same folder through a link
    ):
        (tmp_path / "link").unlink(missing_ok=True)
        (tmp_path / "link").symlink_to(data)
        _one_line_error(run("preprocess", *args, "-q"), 1, "inside the input" if args[-1] != data else "is the input")
    assert sorted(p for p in data.rglob("*")) == before  # refused before any work: nothing written
    split = tmp_path / "split"
    assert run("preprocess", "--data", data, "--out", split, "-q").exit_code == 0
    _one_line_error(run("preprocess", "--data", split / "train.jsonl", "--out", split, "-q"), 1, "would replace the input")


def test_train_refuses_to_overwrite_without_force(smoke_models, sample, smoke_config):
    before = (smoke_models / "manifest.json").read_bytes()
    result = run("train", "--data", sample, "--models", smoke_models, "--config", smoke_config, "-q")
    assert result.exit_code != 0
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert (smoke_models / "manifest.json").read_bytes() == before


def _one_line_error(result, code: int | None = None, contains: str = ""):
    assert result.exit_code != 0 if code is None else result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    err = result.stderr.strip()
    assert err.startswith("Error:") and len(err.splitlines()) == 1, err
    assert contains in err


@pytest.fixture
def one_class(tmp_path, sample) -> Path:
    folder = tmp_path / "oneclass"
    (folder / "spam").mkdir(parents=True)
    (folder / "ham").mkdir()
    for src in list((sample / "spam").iterdir())[:5]:
        (folder / "spam" / src.name).write_bytes(src.read_bytes())
    return folder


@pytest.mark.parametrize("command", ["train", "evaluate", "preprocess"])
def test_wrong_data_is_a_one_line_error(command, tmp_path, sample, smoke_models, one_class):
    empty = tmp_path / "empty"
    (empty / "spam").mkdir(parents=True)
    (empty / "ham").mkdir()
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    (unlabelled / "msg.eml").write_text("Subject: hi\n\nhello\n")
    extra = {
        "train": ["--models", tmp_path / "m", "--config", "configs/smoke.yaml"],
        "evaluate": ["--models", smoke_models],
        "preprocess": ["--out", tmp_path / "out"],
    }[command]
    cases = [
        (tmp_path / "does-not-exist", "does not exist"),
        (unlabelled, "no spam/ and ham/ subfolder"),
        (empty, "no messages"),
        (unlabelled / "msg.eml", "not one written by 'spamclf preprocess'"),
    ]
    if command != "evaluate":  # evaluate measures one class alone (test_evaluate_on_one_class)
        cases.append((one_class, "found no ham"))
    for data, message in cases:
        _one_line_error(run(command, "--data", data, *extra), 1, message)


def test_evaluate_on_one_class(tmp_path, sample, smoke_models, one_class):
    # A folder of spam only: how much of it is caught; of ham only: how much is marked spam.
    spam = run("evaluate", "--models", smoke_models, "--data", one_class, "--json", "-q", "--report", tmp_path / "r")
    assert spam.exit_code == 0, spam.output
    m = json.loads(spam.stdout)
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    assert tn == fp == 0 and tp + fn == m["n"] > 0
    assert m["recall"] == m["accuracy"] == tp / m["n"] and m["false_negative_rate"] == fn / m["n"]
    assert m["false_positive_rate"] is None and m["roc_auc"] is None
    report = tmp_path / "r"
    assert sorted(p.name for p in report.glob("*.png")) == ["score_histogram.png"]  # the curves need both classes
    assert "need both classes" in (report / "report.html").read_text()
    table = run("evaluate", "--models", smoke_models, "--data", one_class, "-q")
    assert "false_positive_rate  n/a (no ham)" in table.stdout and "roc_auc              n/a (no ham)" in table.stdout

    ham = tmp_path / "ham-only"
    (ham / "ham").mkdir(parents=True)
    (ham / "spam").mkdir()
    for src in sorted((sample / "ham").iterdir())[:30]:
        (ham / "ham" / src.name).write_bytes(src.read_bytes())
    m = json.loads(run("evaluate", "--models", smoke_models, "--data", ham, "--json", "-q").stdout)
    (tn, fp), _ = m["confusion_matrix"]
    assert m["false_positive_rate"] == fp / 30 and tn + fp == 30
    assert m["recall"] is None and m["false_negative_rate"] is None and m["f1"] is None

    _one_line_error(run("evaluate", "--models", smoke_models, "--data", one_class, "--target-fpr", "0.01"), 1, "needs ham messages")


def test_unknown_config_key_is_a_one_line_error(tmp_path, sample):
    _one_line_error(run("train", "--data", sample, "--models", tmp_path / "m", "--set", "train.epoch=2"), 1, "train.epoch")


def test_models_dir_that_does_not_exist(tmp_path, sample):
    for args in (
        ["evaluate", "--models", tmp_path / "nope", "--data", sample],
        ["predict", "--models", tmp_path / "nope", sample / "ham"],
    ):
        _one_line_error(run(*args), 3, "does not exist")


def test_models_dir_that_is_not_a_bundle(tmp_path, sample):
    _one_line_error(run("predict", "--models", tmp_path, sample / "ham"), 3, "manifest.json is missing")


def test_real_subprocess_run_is_quiet_and_correct(tmp_path, sample, smoke_config, root):
    """The installed entry point, as a user runs it: no traceback, no TensorFlow log noise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KERAS_"))}
    models = tmp_path / "models"
    train = subprocess.run(
        [sys.executable, "-m", "spamclf", "train", "--data", str(sample), "--models", str(models), "--config", str(smoke_config)],
        capture_output=True, text=True, env=env, cwd=root,
    )
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["data"]["messages"] == 300
    for noise in ("oneDNN", "absl", "cuda", "Traceback", "WARNING", "UserWarning", "I0000", "E0000"):
        assert noise not in train.stderr, train.stderr
    predict = subprocess.run(
        [sys.executable, "-m", "spamclf", "predict", "--models", str(models), "--format", "csv", str(sample / "spam")],
        capture_output=True, text=True, env=env, cwd=root,
    )
    assert predict.returncode == 0
    assert len(predict.stdout.splitlines()) == 1 + 120
    assert "120 scored, 0 failed" in predict.stderr


@pytest.mark.parametrize("command, status", [(["inspect", "--models", "MODELS", "--json"], 0), (["inspect", "--models", "MISSING"], 3)])
def test_program_leaving_without_teardown_keeps_status_output_and_exit_handlers(tmp_path, smoke_models, root, command, status):
    # Once TensorFlow is loaded, the program skips the interpreter's teardown (os._exit); a module
    # named tensorflow stands in for it here. Output through a pipe is flushed, exit handlers run,
    # and the exit status is the command's.
    argv = [str(smoke_models) if a == "MODELS" else str(tmp_path / "missing") if a == "MISSING" else a for a in command]
    code = (
        "import atexit, sys, types\n"
        "sys.modules['tensorflow'] = types.ModuleType('tensorflow')\n"
        "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
        f"sys.argv = ['spamclf', *{argv!r}]\n"
        "from spamclf.cli import entry_point\nentry_point()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert proc.returncode == status, proc.stderr
    assert proc.stderr.rstrip().endswith("exit handler ran")
    if status == 0:
        assert json.loads(proc.stdout)["verified"] is True
    else:
        assert "Error:" in proc.stderr


def test_hostile_file_names_keep_the_table_and_the_log_one_line_each(smoke_models, sample, tmp_path):
    # A newline or a terminal escape in a file name: escaped in the table and on stderr, exact in CSV.
    spam = sorted((sample / "spam").iterdir())[0].read_bytes()
    names = ["new\nline.eml", "red\x1b[31m.eml", "plain.eml"]
    for name in names:
        (tmp_path / name).write_bytes(spam)
    table = run("predict", "--models", str(smoke_models), str(tmp_path))
    lines = table.stdout.splitlines()
    assert table.exit_code == 0 and len(lines) == 1 + len(names)
    assert all(line.startswith("spam ") for line in lines[1:])
    assert any(line.endswith(f"{tmp_path}/new\\nline.eml") for line in lines) and "\x1b" not in table.stdout
    rows = run("predict", "--models", str(smoke_models), "--format", "jsonl", str(tmp_path)).stdout.splitlines()
    assert sorted(json.loads(r)["path"] for r in rows) == sorted(str(tmp_path / n) for n in names)
    missing = run("predict", "--models", str(tmp_path / "no\nsuch"), str(tmp_path))
    assert missing.exit_code == 3 and missing.stderr.startswith("Error: ") and len(missing.stderr.splitlines()) == 1
    assert "no\\nsuch" in missing.stderr
    (tmp_path / "not\na bundle").mkdir()  # exists, does not verify: inspect's own error line
    broken = run("inspect", "--models", str(tmp_path / "not\na bundle"))
    assert broken.exit_code == 3 and len(broken.stderr.splitlines()) == 1 and "not\\na bundle" in broken.stderr

"""``spamclf learn`` and ``train --relearn`` end to end: real tiny models, real subprocesses for the
concurrency, the kills and the procmail recipe."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from spamclf.cli import main

from conftest import ROOT, SAMPLE, SMOKE, make_format_1

SPAMCLF = str(Path(sys.executable).parent / "spamclf")
SPAM = sorted((SAMPLE / "spam").iterdir())
HAM = sorted((SAMPLE / "ham").iterdir())
SUMMARY = re.compile(r"^(\d+) learned, (\d+) relabelled, (\d+) unchanged, (\d+) failed", re.M)


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def counts(result) -> tuple[int, ...]:
    """(learned, relabelled, unchanged, failed) from the summary line on stderr."""
    found = SUMMARY.findall(result.stderr)
    assert len(found) == 1, result.stderr
    return tuple(map(int, found[0]))


def learn(models, *args, input=None):
    return run("learn", "--models", models, "--config", SMOKE, *args, input=input)


def bundle_id(models: Path) -> str:
    return json.loads((models / "manifest.json").read_text())["bundle_id"]


def stored_keys(models: Path) -> list[str]:
    return json.loads((models / "store.json").read_text())["keys"]


@pytest.fixture(scope="module")
def taught(tmp_path_factory) -> Path:
    """A models directory that learned 8 spam and 8 ham from nothing, through the command line."""
    models = tmp_path_factory.mktemp("taught") / "models"
    assert learn(models, "--spam", *SPAM[:8]).exit_code == 0
    assert learn(models, "--ham", *HAM[:8]).exit_code == 0
    return models


@pytest.fixture
def models(taught, tmp_path) -> Path:
    """A copy of ``taught`` for a test that changes it."""
    copy = tmp_path / "models"
    shutil.copytree(taught, copy)
    return copy


# --- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, problem",
    [
        ([str(SPAM[0])], "give a label: --spam or --ham"),
        (["--spam", "--ham", str(SPAM[0])], "--spam or --ham, not both"),
        (["--forget", "--spam", str(SPAM[0])], "--forget takes no label"),
        (["--spam"], "give at least one input"),
        (["--ham", "-", "-"], "'-' (stdin) is given more than once"),
    ],
)
def test_a_wrong_call_is_one_line_status_2_and_changes_nothing(tmp_path, args, problem):
    result = learn(tmp_path / "models", *args, input=b"Subject: hi\n\nhello\n")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [result.stderr.strip()] and result.stderr.startswith("Error: ")
    assert problem in result.stderr
    assert not (tmp_path / "models").exists()


def test_learning_from_nothing_again_and_with_the_other_label(tmp_path):
    models = tmp_path / "models"
    first = learn(models, "--spam", SPAM[0], "--json")
    assert first.exit_code == 0, first.output
    assert counts(first) == (1, 0, 0, 0)
    doc = json.loads(first.stdout)
    assert doc["created"] and doc["saved"] and doc["bundle_id"] == bundle_id(models)

    again = learn(models, "--spam", SPAM[0], "--json")
    assert counts(again) == (0, 0, 1, 0)
    assert not json.loads(again.stdout)["saved"] and json.loads(again.stdout)["bundle_id"] == doc["bundle_id"]
    assert bundle_id(models) == doc["bundle_id"]  # nothing changed: nothing written

    moved = learn(models, "--ham", SPAM[0])
    assert counts(moved) == (0, 1, 0, 0)
    assert len(stored_keys(models)) == 1
    assert bundle_id(models) != doc["bundle_id"]


def test_a_filter_that_learned_one_class_labels_nothing_spam_from_disk_too(tmp_path):
    models = tmp_path / "models"
    assert counts(learn(models, "--spam", SPAM[0])) == (1, 0, 0, 0)
    rows = run("predict", "--models", models, "--format", "jsonl", *SPAM[1:20], *HAM[:20])
    assert {json.loads(line)["score"] for line in rows.stdout.splitlines()} == {0.0}  # as in the process that learned
    filtered = subprocess.run([SPAMCLF, "predict", "--models", str(models), "-"], input=SPAM[1].read_bytes(), capture_output=True)
    assert filtered.returncode == 1 and b"\nX-Spam-Flag: NO\n" in filtered.stdout
    assert counts(learn(models, "--ham", HAM[0])) == (1, 0, 0, 0)
    rows = run("predict", "--models", models, "--format", "jsonl", *SPAM[1:20], *HAM[:20])
    assert 0.0 not in {json.loads(line)["score"] for line in rows.stdout.splitlines()}


def test_json_summary_keys(tmp_path):
    result = learn(tmp_path / "m", "--ham", HAM[0], "--json", "-q")
    doc = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert set(doc) == {"learned", "relabelled", "unchanged", "failed", "errors", "skipped", "created", "saved", "models", "bundle_id"}


def test_stdin_is_one_message_and_a_filtered_copy_is_the_same_message(models, tmp_path):
    raw = SPAM[10].read_bytes()
    via_stdin = learn(models, "--spam", "-", input=raw)
    assert counts(via_stdin) == (1, 0, 0, 0), via_stdin.stderr

    # spamclf predict - (filter mode) adds X-Spam-* headers: the message stays the same one
    filtered = subprocess.run([SPAMCLF, "predict", "--models", str(models), "-"], input=raw, capture_output=True)
    assert filtered.returncode in (0, 1, 2), filtered.stderr
    assert b"\nX-Spam-Score: " in filtered.stdout and filtered.stdout != raw
    assert counts(learn(models, "--spam", "-", input=filtered.stdout)) == (0, 0, 1, 0)
    (tmp_path / "filtered.eml").write_bytes(filtered.stdout)
    assert counts(learn(models, "--spam", tmp_path / "filtered.eml")) == (0, 0, 1, 0)
    assert counts(learn(models, "--spam", SPAM[10])) == (0, 0, 1, 0)
    # filtered twice: the first X-Spam-* headers became X-Forged-Spam-*, which learning ignores as well
    twice = subprocess.run([SPAMCLF, "predict", "--models", str(models), "-"], input=filtered.stdout, capture_output=True)
    assert b"\nX-Forged-Spam-Score: " in twice.stdout
    assert counts(learn(models, "--ham", "-", input=twice.stdout)) == (0, 1, 0, 0)


def test_folders_and_mailboxes_are_learned_message_by_message(models, tmp_path):
    mbox = tmp_path / "junk.mbox"
    with open(mbox, "wb") as fh:
        for path in SPAM[20:23]:
            raw = path.read_bytes()
            if not raw.startswith(b"From "):  # the corpus's files start with their mbox From line
                raw = b"From spammer@example.com Sat Jan  1 00:00:00 2000\n" + raw
            fh.write(raw[:5] + raw[5:].replace(b"\nFrom ", b"\n>From ") + b"\n")
    folder = tmp_path / "more"
    folder.mkdir()
    for path in SPAM[23:25]:
        shutil.copy(path, folder)
    result = learn(models, "--spam", mbox, folder)
    assert counts(result) == (5, 0, 0, 0), result.stderr
    assert counts(learn(models, "--spam", mbox, folder)) == (0, 0, 5, 0)


def test_an_unreadable_input_is_an_error_line_the_rest_is_learned_exit_3(models, tmp_path):
    missing = tmp_path / "no-such.eml"
    result = learn(models, "--spam", missing, SPAM[30], "--json")
    assert result.exit_code == 3
    assert f"Error: {missing}: no such file or folder" in result.stderr.splitlines()
    assert counts(result) == (1, 0, 0, 1)
    doc = json.loads(result.stdout)
    assert doc["errors"] == [{"path": str(missing), "error": "no such file or folder"}] and doc["saved"]
    assert counts(learn(models, "--spam", SPAM[30])) == (0, 0, 1, 0)  # it was saved


def test_a_broken_models_directory_is_exit_3_and_left_alone(tmp_path, models):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("not a bundle")
    result = learn(notes, "--spam", SPAM[0])
    assert result.exit_code == 3 and result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in notes.iterdir()) == ["todo.txt"]

    before = (models / "weights.npz").read_bytes()
    (models / "weights.npz").write_bytes(before[:-10] + b"0123456789")  # tampered
    result = learn(models, "--spam", SPAM[0])
    assert result.exit_code == 3 and len(result.stderr.splitlines()) == 1, result.stderr
    assert (models / "weights.npz").read_bytes() == before[:-10] + b"0123456789"


def test_forget(models):
    assert counts(learn(models, "--spam", SPAM[40], SPAM[41])) == (2, 0, 0, 0)
    result = run("learn", "--models", models, "--forget", SPAM[40], "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "1 forgotten, 0 unknown, 0 failed"
    assert json.loads(result.stdout)["forgotten"] == 1
    assert run("learn", "--models", models, "--forget", SPAM[40]).stderr.strip() == "0 forgotten, 1 unknown, 0 failed"
    assert counts(learn(models, "--spam", SPAM[40], SPAM[41])) == (1, 0, 1, 0)


def test_forget_needs_a_bundle(tmp_path):
    result = run("learn", "--models", tmp_path / "none", "--forget", SPAM[0])
    assert result.exit_code == 3 and result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1


def test_config_applies_when_creating_and_a_different_one_is_noted(tmp_path):
    models = tmp_path / "models"
    assert learn(models, "--spam", SPAM[0], "--set", "learn.replay=8").exit_code == 0
    assert json.loads((models / "config.json").read_text())["learn"]["replay"] == 8
    same = learn(models, "--spam", SPAM[1], "--set", "learn.replay=8")
    assert "note:" not in same.stderr
    other = learn(models, "--spam", SPAM[2], "--set", "learn.replay=4")
    assert other.exit_code == 0 and f"note: {models} keeps the config it was created with" in other.stderr
    assert json.loads((models / "config.json").read_text())["learn"]["replay"] == 8


def test_a_held_lock_is_waited_for_then_one_line_exit_3(models):
    from spamclf.model.online import models_lock

    with models_lock(models):
        start = time.monotonic()
        result = learn(models, "--spam", SPAM[50], "--wait", "0.5")
        waited = time.monotonic() - start
    assert result.exit_code == 3 and len(result.stderr.splitlines()) == 1
    assert "being changed by another process" in result.stderr
    assert 0.5 <= waited
    assert counts(learn(models, "--spam", SPAM[50], "--wait", "0")) == (1, 0, 0, 0)  # released: no wait needed


# --- train --relearn ---------------------------------------------------------------------------------


def test_train_relearn_rebuilds_from_the_store(models, taught):
    before = bundle_id(models)
    result = run("train", "--models", models, "--relearn", "-q")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["messages"], doc["ham"], doc["spam"]) == (16, 8, 8)
    assert doc["bundle_id"] == bundle_id(models) != before
    assert stored_keys(models)  # the store is kept
    assert doc["epochs_run"] == 8  # the smoke config's epochs: a fit from scratch, not online steps
    # 16 online steps barely move a new network (every score near 0.5); a fit on the 16 tells them apart
    assert gap(models) > 0.3 > gap(taught) + 0.2


def gap(models: Path) -> float:
    """Mean score of the 8 learned spam less that of the 8 learned ham."""
    from spamclf.commands.predict import load

    scores = [row.score for row in load(models).predict([*SPAM[:8], *HAM[:8]])]
    return sum(scores[:8]) / 8 - sum(scores[8:]) / 8


@pytest.mark.parametrize("extra", [["--data", str(SAMPLE)], ["--spam", str(SAMPLE / "spam")], ["--set", "train.epochs=1"], ["--force"]])
def test_train_relearn_with_other_options_is_a_usage_error(models, extra):
    before = bundle_id(models)
    result = run("train", "--models", models, "--relearn", *extra)
    assert result.exit_code == 2 and result.stderr.startswith("Error: --relearn") and len(result.stderr.splitlines()) == 1
    assert bundle_id(models) == before


def test_train_relearn_is_in_its_help():
    assert "--relearn" in run("train", "--help").output


def test_train_relearn_of_nothing_learned(smoke_models, tmp_path):
    shutil.copytree(smoke_models, tmp_path / "trained")
    make_format_1(tmp_path / "trained")  # from before learning: its examples are not kept
    result = run("train", "--models", tmp_path / "trained", "--relearn")
    assert result.exit_code == 1 and "has learned no messages" in result.stderr


def test_train_relearn_of_a_trained_bundle_refits_on_its_training_examples(smoke_models, tmp_path):
    shutil.copytree(smoke_models, tmp_path / "trained")  # 'train' keeps its examples in the store
    result = run("train", "--models", tmp_path / "trained", "--relearn")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["messages"] == len(json.loads((smoke_models / "store.json").read_text())["keys"]) == 300


# --- real processes at once ----------------------------------------------------------------------------


def start_learn(models: Path, *args) -> subprocess.Popen:
    command = [SPAMCLF, "learn", "--models", str(models), "--config", str(SMOKE), "-q", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_learns_at_once_from_nothing_both_land(tmp_path):
    models = tmp_path / "models"
    runs = [start_learn(models, "--spam", SPAM[0]), start_learn(models, "--ham", HAM[0], HAM[1])]
    results = [p.communicate(timeout=120) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], results
    assert len(stored_keys(models)) == 3  # no lost update
    assert counts(learn(models, "--spam", SPAM[0])) == (0, 0, 1, 0)
    assert counts(learn(models, "--ham", HAM[0], HAM[1])) == (0, 0, 2, 0)


def test_predict_during_learn_reads_a_whole_bundle(models):
    from spamclf.commands.predict import load

    probe = [*SPAM[60:63], *HAM[60:63]]
    old = [row.score for row in load(models).predict(probe)]
    learner = start_learn(models, "--spam", *SPAM[100:116])
    seen, cli_runs = [], 0
    while learner.poll() is None or len(seen) < 5:
        if learner.poll() is None and cli_runs < 3:  # the command itself, too, a few times
            proc = subprocess.run([SPAMCLF, "predict", "--models", str(models), "--format", "jsonl", *map(str, probe)], capture_output=True)
            assert proc.returncode == 0, proc.stderr
            seen.append([json.loads(line)["score"] for line in proc.stdout.splitlines()])
            cli_runs += 1
        rows = list(load(models).predict(probe))
        assert all(row.error is None for row in rows), rows
        seen.append([row.score for row in rows])
        if learner.poll() is not None:
            seen.append([row.score for row in load(models).predict(probe)])
    assert learner.returncode == 0, learner.stderr.read()
    new = [row.score for row in load(models).predict(probe)]
    assert new != old
    for scores in seen:  # every read saw the old bundle or the new one, whole
        assert scores == pytest.approx(old, abs=1e-6) or scores == pytest.approx(new, abs=1e-6), (scores, old, new)
    assert any(s == pytest.approx(old, abs=1e-6) for s in seen) and any(s == pytest.approx(new, abs=1e-6) for s in seen)


def work_folders(models: Path) -> list[str]:
    return sorted(p.name for p in models.parent.iterdir() if p.name.startswith(f".{models.name}.") and p.is_dir())


@pytest.mark.parametrize("when", ["before saving", "while saving"])
def test_a_killed_learn_leaves_the_previous_bundle(models, when):
    from spamclf.commands.predict import load

    before = bundle_id(models)
    proc = start_learn(models, "--spam", *SPAM[70:80])
    if when == "before saving":
        time.sleep(1.0)  # reading, importing TensorFlow, learning: the lock is held, nothing written yet
    else:
        deadline = time.monotonic() + 120
        while not work_folders(models) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        assert work_folders(models), "the learn ended before it was seen saving"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    now = bundle_id(models)
    clf = load(models)  # whole and verified
    assert all(row.error is None for row in clf.predict(SPAM[:2]))
    if now != before:  # the kill came after the swap: the new bundle, whole
        assert len(stored_keys(models)) == 26
    else:
        assert len(stored_keys(models)) == 16

    after = learn(models, "--spam", *SPAM[70:80], "--wait", "0")  # the lock died with the process
    assert after.exit_code == 0, after.stderr
    assert len(stored_keys(models)) == 26
    assert work_folders(models) == []  # the killed writer's folder is cleaned up


# --- the recipes of docs/learning-recipes.md -------------------------------------------------------

EXAMPLES = ROOT / "configs" / "mail"
RECIPES = (ROOT / "docs" / "learning-recipes.md").read_text(encoding="utf-8")
BIN = str(Path(sys.executable).parent)


@pytest.mark.parametrize("name", ["procmailrc-learn", "spamclf-learn-junk"])
def test_the_recipes_shown_are_the_files_tested(name):
    assert (EXAMPLES / name).read_text() in RECIPES


def maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.skipif(shutil.which("procmail") is None, reason="procmail is not installed")
def test_procmail_rule_files_and_learns_mail_to_the_trap(models, tmp_path):
    home = tmp_path / "home"
    (home / ".spamclf").mkdir(parents=True)
    shutil.move(models, home / ".spamclf" / "models")
    models = home / ".spamclf" / "models"
    before = len(stored_keys(models))
    rc = home / "procmailrc"
    # procmail takes HOME from the password file, not the environment: spell it out.
    text = (EXAMPLES / "procmailrc-learn").read_text().replace("$HOME", str(home))
    rc.write_text(f"SHELL=/bin/sh\nPATH={BIN}:/usr/bin:/bin\nMAILDIR={home}/Mail\nDEFAULT={home}/Mail/inbox/\n" + text)
    (home / "Mail").mkdir()
    env = {**os.environ, "HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin"}
    from_line, rest = HAM[90].read_bytes().split(b"\n", 1)
    trapped = from_line + b"\nCc: trap@example.org\n" + rest  # a ham's words, sent to the trap too
    for raw in (trapped, HAM[91].read_bytes()):
        proc = subprocess.run(["procmail", "-m", str(rc)], input=raw, env=env, capture_output=True, cwd=home)
        assert proc.returncode == 0, proc.stderr
    [filed] = [p.read_bytes() for p in (home / "Mail" / "spam" / "new").iterdir()]
    assert b"\nX-Spam-Flag: " in filed and filed.endswith(rest.split(b"\n\n", 1)[1])  # filtered, then filed
    [inbox] = [p.read_bytes() for p in (home / "Mail" / "inbox" / "new").iterdir()]
    assert inbox.endswith(HAM[91].read_bytes().split(b"\n\n", 1)[1])
    assert len(stored_keys(models)) == before + 1  # the trapped one was learned, the other not
    # ... as spam, and as the message that came (its X-Spam-* headers ignored)
    assert counts(learn(models, "--spam", "-", input=trapped)) == (0, 0, 1, 0)


def test_cron_script_learns_the_junk_folder_and_moves_it_on(models, tmp_path):
    junk = maildir(tmp_path / "Maildir" / ".Junk")
    for i, path in enumerate(SPAM[110:113]):
        shutil.copy(path, junk / ("new" if i else "cur") / f"{i}.host:2,S")
    env = {
        **os.environ, "SPAMCLF_MODELS": str(models), "JUNK": str(junk), "SPAMCLF": SPAMCLF,
        "STAGE": str(tmp_path / "Maildir" / ".Junk.learning"), "DONE": str(tmp_path / "Maildir" / ".Junk.learned"),
    }
    script = str(EXAMPLES / "spamclf-learn-junk")
    proc = subprocess.run(["sh", script], env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert len(stored_keys(models)) == 19
    assert sorted(p.name for p in (tmp_path / "Maildir" / ".Junk.learned" / "cur").iterdir()) == ["0.host:2,S", "1.host:2,S", "2.host:2,S"]
    assert not any((junk / "cur").iterdir()) and not any((junk / "new").iterdir())
    assert subprocess.run(["sh", script], env=env, capture_output=True).returncode == 0  # nothing new: nothing to do

    shutil.copy(SPAM[113], junk / "new" / "3.host")
    (models / "manifest.json").write_text("{}")  # broken: the run fails, the message stays staged
    assert subprocess.run(["sh", script], env=env, capture_output=True).returncode == 3
    assert [p.name for p in (tmp_path / "Maildir" / ".Junk.learning" / "cur").iterdir()] == ["3.host"]

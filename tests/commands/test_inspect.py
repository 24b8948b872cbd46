"""``spamclf inspect``: what a bundle is, and -- for a changed one -- only what is safe to show, with exit 3."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from conftest import SMOKE
from spamclf.cli import main
from spamclf.commands.inspect import inspect_bundle


def run(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def test_json_describes_the_bundle(smoke_models, smoke_summary, smoke_config):
    import yaml

    result = run("--models", smoke_models, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    manifest = json.loads((smoke_models / "manifest.json").read_text())
    assert info["verified"] is True and info["problem"] is None
    assert info["bundle_id"] == manifest["bundle_id"]
    assert info["spamclf_version"] == manifest["spamclf_version"]
    assert info["created"] == smoke_summary["created"]
    assert info["data"]["fingerprint"] == smoke_summary["data"]["fingerprint"]
    assert info["data"]["messages"] == 300
    assert info["threshold"] == smoke_summary["threshold"]
    assert info["validation_metrics"] == smoke_summary["validation_metrics"]
    smoke = yaml.safe_load(smoke_config.read_text())
    assert info["config"]["model"]["units"] == smoke["model"]["units"]
    assert info["layers"] == [*smoke["model"]["units"], 1]
    assert info["n_features"] <= smoke["features"]["max_features"]
    assert set(info["files"].values()) == {"ok"}


def test_text_output(smoke_models, smoke_summary):
    result = run("--models", smoke_models)
    assert result.exit_code == 0
    out = result.stdout
    assert "verified (bundle " in out
    assert smoke_summary["data"]["fingerprint"] in out
    assert f"{smoke_summary['threshold']:.6f}" in out
    assert "accuracy" in out and '"units"' in out


def test_a_changed_bundle_shows_its_manifest_and_which_file_changed(smoke_models, tmp_path):
    bad = tmp_path / "models"
    shutil.copytree(smoke_models, bad)
    (bad / "metadata.json").write_text(json.dumps({"threshold": 0.0}))  # a lie that must not be shown
    (bad / "notes.txt").write_text("hi")
    result = run("--models", bad, "--json")
    assert result.exit_code == 3
    info = json.loads(result.stdout)
    assert info["verified"] is False
    assert "unexpected file notes.txt" in info["problem"]
    assert info["files"]["metadata.json"] == "changed" and info["files"]["notes.txt"] == "unexpected"
    assert info["files"]["model.keras"] == "ok"
    assert info["manifest"]["bundle_id"]
    assert "threshold" not in info and "config" not in info
    assert result.stderr.strip() == f"Error: {info['problem']}"

    text = run("--models", bad)
    assert text.exit_code == 3
    assert "NOT VERIFIED" in text.stdout and "changed" in text.stdout


def test_a_missing_folder(tmp_path):
    info = inspect_bundle(tmp_path / "nothing")
    assert info["verified"] is False and "does not exist" in info["problem"]
    result = run("--models", tmp_path / "nothing")
    assert result.exit_code == 3 and "does not exist" in result.stderr


def test_help_has_an_example():
    result = run("--help")
    assert result.exit_code == 0 and "Example" in result.output and "spamclf inspect --models" in result.output


ESCAPES = "\x1b]0;owned\x07\x1b[2J"  # set the terminal's title, clear the screen


def test_no_string_from_a_bundle_reaches_the_terminal_raw(smoke_models, tmp_path):
    """Whoever can write the folder can write any string and a matching manifest: text output escapes them."""
    from spamclf.model.bundle import _write_manifest

    evil = tmp_path / "models"
    shutil.copytree(smoke_models, evil)
    metadata = json.loads((evil / "metadata.json").read_text())
    metadata["created"] = ESCAPES
    metadata["data"]["sources"] = [ESCAPES]
    metadata["versions"][ESCAPES] = ESCAPES
    (evil / "metadata.json").write_text(json.dumps(metadata))
    _write_manifest(evil)
    result = run("--models", evil)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;owned\\x07\\x1b[2J" in result.stdout  # shown, escaped
    assert json.loads(run("--models", evil, "--json").stdout)["created"] == ESCAPES  # JSON keeps it exactly


def test_no_string_from_a_bundle_that_does_not_verify_reaches_the_terminal_raw(smoke_models, tmp_path):
    evil = tmp_path / "models"
    shutil.copytree(smoke_models, evil)
    manifest = json.loads((evil / "manifest.json").read_text())
    manifest["spamclf_version"] = ESCAPES
    (evil / "manifest.json").write_text(json.dumps(manifest))
    (evil / f"{ESCAPES}.txt").write_text("hi")
    result = run("--models", evil)
    assert result.exit_code == 3
    assert "NOT VERIFIED" in result.stdout and "unexpected" in result.stdout
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout + result.stderr


def test_a_bundle_that_learned_from_nothing_says_what_it_learned(sample, tmp_path):
    import spamclf

    clf = spamclf.load(tmp_path / "learned", create=True, config=str(SMOKE))
    clf.learn([sample / "spam"], "spam")
    clf.learn([sample / "ham"], "ham")
    clf.save()
    result = CliRunner().invoke(main, ["inspect", "--models", str(tmp_path / "learned")])
    assert result.exit_code == 0
    assert "learned                300 messages (180 ham, 120 spam)" in result.output
    assert "None" not in result.output and "epochs run" not in result.output

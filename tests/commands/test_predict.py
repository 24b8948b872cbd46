"""The Python API: the same code path as the CLI, and classification without TensorFlow."""

from __future__ import annotations

import json

import numpy as np
import pytest

import spamclf
from conftest import run_python
from spamclf.model.bundle import BUNDLE_FILES, MANIFEST_FILE
from spamclf.errors import BundleError
from spamclf.mail.extract import extract


def test_bundle_holds_exactly_its_files(smoke_models):
    assert sorted(p.name for p in smoke_models.iterdir()) == sorted([*BUNDLE_FILES, MANIFEST_FILE])
    meta = json.loads((smoke_models / "metadata.json").read_text())
    assert 0.0 < meta["threshold"] < 1.0
    assert len(meta["data"]["fingerprint"]) == 64
    assert meta["versions"]["keras"].startswith("3.")
    assert meta["data"]["per_label"] == {"ham": 180, "spam": 120}
    history = json.loads((smoke_models / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == meta["epochs_run"] >= 1
    assert (smoke_models / "learning_curves.png").read_bytes().startswith(b"\x89PNG")


def test_load_and_predict(smoke_models, sample):
    clf = spamclf.load(smoke_models)
    rows = list(clf.predict([sample / "spam", sample / "ham"]))
    assert len(rows) == 300
    assert [r.path for r in rows[:120]] == sorted(str(p) for p in (sample / "spam").iterdir())
    spam_hits = sum(r.label == "spam" for r in rows[:120])
    ham_hits = sum(r.label == "ham" for r in rows[120:])
    assert spam_hits > 100 and ham_hits > 160


def test_scores_of_raw_messages_and_texts_agree(smoke_models, sample):
    clf = spamclf.load(smoke_models)
    raws = [p.read_bytes() for p in sorted((sample / "ham").iterdir())[:10]]
    texts = [extract(r, clf.options) for r in raws]
    np.testing.assert_allclose(clf.score_messages(raws), clf.score_texts(texts))
    with pytest.raises(TypeError):  # raw messages are bytes; a str is refused, not taken for extracted text
        clf.score_messages([texts[0]])


def test_evaluate_api_matches_cli_numbers(smoke_models, sample):
    from click.testing import CliRunner

    from spamclf.cli import main

    api = spamclf.evaluate(smoke_models, [str(sample)], progress=False)
    cli = json.loads(CliRunner().invoke(main, ["evaluate", "--models", str(smoke_models), "--data", str(sample), "--json", "-q"]).stdout)
    assert api == cli


def test_predicting_never_imports_tensorflow_or_sklearn(smoke_models, sample):
    code = (
        "import sys, spamclf\n"
        f"rows = list(spamclf.load({str(smoke_models)!r}).predict([{str(sample / 'spam')!r}]))\n"
        "assert len(rows) == 120\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'pandas') if m in sys.modules))\n"
    )
    assert run_python(code) == "[]"


# --- a score that is not a finite number is an error, never a number or a label ------------------


@pytest.fixture(scope="module")
def overflowing(smoke_models, tmp_path_factory):
    """The smoke bundle with every kernel scaled by 1e30: finite weights whose sums overflow, so the
    network gives NaN for every message (as a diverged training run's bundle did). Re-hashed, as
    someone who can write the folder can, so that it loads."""
    import shutil

    from spamclf.model import bundle as bundle_mod

    folder = tmp_path_factory.mktemp("overflowing") / "models"
    shutil.copytree(smoke_models, folder)
    layers = bundle_mod.load_weights(folder / "weights.npz")
    bundle_mod.save_weights(folder / "weights.npz", [(kernel * np.float32(1e30), bias) for kernel, bias in layers])
    bundle_mod._write_manifest(folder)
    return folder


NON_FINITE = "the model gave a non-finite score (nan): its models directory cannot be used; retrain it"


def _strict_json(line: str) -> dict:
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_a_non_finite_score_is_an_error_row_never_a_number_or_a_label(overflowing, sample):
    clf = spamclf.load(overflowing)
    rows = list(clf.predict([sample / "spam"], ham_cutoff=None))
    assert len(rows) == 120
    assert all((r.score, r.label, r.error) == (None, None, NON_FINITE) for r in rows)
    with pytest.raises(BundleError, match="non-finite score"):
        clf.label(float("nan"))
    assert clf.label(0.9) == "spam"  # a finite score still gets its label


def test_predict_writes_valid_json_and_exits_3_for_non_finite_scores(overflowing, sample, root):
    import subprocess
    import sys

    command = [sys.executable, "-m", "spamclf", "predict", "--models", str(overflowing), "--format", "jsonl", str(sample / "spam")]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=root)
    assert proc.returncode == 3
    rows = [_strict_json(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 120 and all(r["score"] is None and r["label"] is None and r["error"] == NON_FINITE for r in rows)
    assert proc.stderr == "0 scored, 120 failed\n"  # and no NumPy warning about the overflow


def test_filter_mode_passes_the_message_through_with_exit_3_for_a_non_finite_score(overflowing, sample, root):
    import subprocess
    import sys

    raw = sorted((sample / "spam").iterdir())[0].read_bytes()
    command = [sys.executable, "-m", "spamclf", "predict", "--models", str(overflowing), "-"]
    proc = subprocess.run(command, input=raw, capture_output=True, cwd=root)
    assert proc.returncode == 3
    assert proc.stdout == raw  # no X-Spam-Score: nan, no header at all
    assert proc.stderr.decode() == f"Error: {NON_FINITE}\n"


def test_evaluate_refuses_non_finite_scores_with_one_line(overflowing, sample):
    from click.testing import CliRunner

    from spamclf.cli import main

    with pytest.raises(BundleError, match="^the model gave a non-finite score for 300 of 300 messages"):
        spamclf.evaluate(overflowing, [str(sample)], progress=False)
    result = CliRunner().invoke(main, ["evaluate", "--models", str(overflowing), "--data", str(sample), "--json", "-q"])
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.startswith("Error: the model gave a non-finite score for 300 of 300 messages") and result.stderr.count("\n") == 1


def test_an_infinite_logit_is_no_probability():
    # float32 sums past 3.4e38 overflow to inf: the sigmoid would call that a certain 1.0
    import scipy.sparse as sp

    from spamclf.model.scorer import forward

    layers = [(np.full((2, 1), 3e38, np.float32), np.zeros(1, np.float32))]
    x = sp.csr_matrix(np.array([[1.0, 1.0], [0.5, 0.0], [0.0, 0.0]], np.float32))
    scores = forward(x, layers)
    assert np.isnan(scores[0]) and scores[1] == 1.0 and scores[2] == 0.5


def test_a_pandas_series_or_dataframe_of_messages_gives_a_dataframe(smoke_models, sample):
    import pandas as pd

    clf = spamclf.load(smoke_models)
    paths = sorted((sample / "spam").iterdir())[:3] + sorted((sample / "ham").iterdir())[:3]
    raws = [p.read_bytes() for p in paths]
    messages = pd.Series(raws[:3] + [raws[3].decode("latin-1"), None] + raws[4:], index=list("abcdefg")[:7])
    out = clf.predict(messages)
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(messages.index)
    assert list(out.columns) == ["score", "label", "error"]
    expected = clf.score_messages(raws[:3] + [raws[3].decode("latin-1").encode()] + raws[4:])
    scored = out.drop(index="e")
    np.testing.assert_allclose(scored["score"].to_numpy(float), expected, rtol=1e-6)
    assert set(scored["label"]) <= {"spam", "ham"} and scored["error"].isna().all()
    assert out.loc["e", "error"].startswith("no message") and pd.isna(out.loc["e", "score"])
    # a DataFrame: its text column by name, the other columns left alone
    frame = pd.DataFrame({"id": range(6), "Message": raws}, index=range(10, 16))
    by_frame = clf.predict(frame, explain=2)
    assert list(by_frame.index) == list(range(10, 16)) and "explain" in by_frame
    with pytest.raises(spamclf.errors.DataError, match="no text column"):
        clf.predict(pd.DataFrame({"a": [1], "b": [2]}))


def test_pandas_is_imported_only_when_a_frame_is_given(smoke_models, sample):
    code = (
        "import sys, spamclf\n"
        f"rows = list(spamclf.load({str(smoke_models)!r}).predict([{str(sample / 'spam')!r}]))\n"
        "print(len(rows) > 0, 'pandas' in sys.modules)\n"
    )
    assert run_python(code) == "True False"

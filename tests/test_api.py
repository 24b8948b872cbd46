"""The Python API: the same code path as the CLI, and classification without TensorFlow."""

from __future__ import annotations

import json

import numpy as np
import pytest

import spamclf
from conftest import run_python
from spamclf.model.bundle import BUNDLE_FILES, MANIFEST_FILE
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

"""predict --explain: the named tokens are the ones that really moved the score."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from click.testing import CliRunner

import spamclf
from spamclf.cli import main
from spamclf.model.explain import explain_row
from spamclf.mail.extract import extract
from spamclf.model.scorer import logits


def test_contributions_are_the_logit_change_when_the_token_is_removed(smoke_models, sample):
    clf = spamclf.load(smoke_models)
    message = sorted((sample / "spam").iterdir())[0]
    x = clf.features.transform([extract(message.read_bytes(), clf.options)])
    result = explain_row(x, clf.bundle.layers, clf.features.vocabulary_, 3)
    assert result["spam"], "a spam message must have tokens pushing towards spam"
    weights = [w for _, w in result["spam"]]
    assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
    assert all(w < 0 for _, w in result["ham"])
    index = {t: i for i, t in enumerate(clf.features.vocabulary_)}
    for token, weight in result["spam"] + result["ham"]:
        without = x.copy()
        without[0, index[token]] = 0.0
        without.eliminate_zeros()
        change = logits(x, clf.bundle.layers)[0] - logits(without, clf.bundle.layers)[0]
        assert np.isclose(change, weight, atol=1e-3)


def test_explain_in_every_format(smoke_models, sample):
    message = str(sorted((sample / "spam").iterdir())[0])
    runner = CliRunner()
    jsonl = runner.invoke(main, ["predict", "--models", str(smoke_models), "--explain", "2", "--format", "jsonl", message])
    row = json.loads(jsonl.stdout)
    assert len(row["explain"]["spam"]) == 2
    top = row["explain"]["spam"][0][0]
    csv_out = runner.invoke(main, ["predict", "--models", str(smoke_models), "--explain", "2", "--format", "csv", message])
    (csv_row,) = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert csv_row["spam_tokens"].split()[0].startswith(f"{top}:+")
    table = runner.invoke(main, ["predict", "--models", str(smoke_models), "--explain", "2", message])
    assert f"spam: {top}:+" in table.stdout
    plain = runner.invoke(main, ["predict", "--models", str(smoke_models), "--format", "jsonl", message])
    assert "explain" not in json.loads(plain.stdout)

"""The daemon's scoring engine, in this process: what it loads to score with."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLE
from serving.daemons import copy_bundle
from spamclf.commands.predict import Classifier
from spamclf.errors import BundleError
from spamclf.model.bundle import STORE_INDEX_FILE, load_bundle
from spamclf.serving.engine import load_for_scoring

MESSAGES = [*sorted((SAMPLE / "spam").iterdir())[:6], *sorted((SAMPLE / "ham").iterdir())[:6]]


def test_the_scoring_bundle_holds_no_learning_store_and_scores_the_same(smoke_models):
    full = load_bundle(smoke_models)
    assert full.store_bytes and sum(map(len, full.store_bytes.values())) > 1000  # the bundle keeps its examples
    clf = load_for_scoring(smoke_models)
    assert clf.bundle.store_bytes == {}
    assert clf.bundle.bundle_id == full.bundle_id
    raws = [p.read_bytes() for p in MESSAGES]
    assert np.array_equal(clf.score_messages(raws), Classifier(full).score_messages(raws))


def test_the_store_it_does_not_keep_is_still_checked(smoke_models, tmp_path):
    served = tmp_path / "models"
    copy_bundle(smoke_models, served)
    index = served / STORE_INDEX_FILE
    data = index.read_bytes()
    index.write_bytes(data.replace(b'"keys"', b'"kezs"', 1) if b'"keys"' in data else data + b" ")
    with pytest.raises(BundleError, match=STORE_INDEX_FILE):
        load_for_scoring(served)

"""The online benchmark's figures and stream: ROC AUC against scikit-learn, lam on hand-worked cases,
the chronological order of hand-made messages with odd and missing dates, and the peers' protocol on
a few messages."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks.online import Bogofilter, Spamprobe, chronological, figures, lam, message_date, roc_auc, run_all, stream


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_is_scikit_learns_with_ties_counted_half(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(300) < 0.3
    # coarse scores: many ties, within and across the classes, as bogofilter's 0/1 and spamprobe's 7 digits give
    scores = np.round(np.clip(rng.normal(0.3 + 0.4 * y, 0.3), 0, 1), 1)
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_roc_auc_on_hand_worked_cases():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5  # one tie between the classes counts half
    # spam 0.7 beats ham 0.4 and loses to ham 0.9; spam 0.4 ties ham 0.4 (half) and loses to 0.9: 1.5 of 4 pairs
    assert roc_auc([0, 0, 1, 1], [0.4, 0.9, 0.7, 0.4]) == 1.5 / 4
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_lam_is_the_logit_mean_of_the_corrected_rates():
    # 9 ham with 2 marked spam, 19 spam with 4 missed: rates (2.5/9.5) and (4.5/19.5), error odds
    # 2.5/7 and 4.5/15; their geometric mean as a rate
    y = np.array([0] * 9 + [1] * 19, bool)
    verdict = np.array([1, 1] + [0] * 7 + [0] * 4 + [1] * 15, bool)
    odds = math.sqrt((2.5 / 7) * (4.5 / 15))
    assert lam(y, verdict) == pytest.approx(odds / (1 + odds))
    assert lam(y, verdict) == pytest.approx(0.246606, abs=1e-6)


def test_lam_of_equal_rates_is_that_rate_and_zero_errors_still_count_half_a_message():
    y = np.array([0] * 99 + [1] * 99, bool)
    assert lam(y, y) == pytest.approx(0.5 / 99.5)  # no errors: both rates 0.5 / 99.5
    assert lam(y, ~y) == 1.0  # every message wrong: the rates are 1, the logit infinite
    assert math.isnan(lam(np.ones(3, bool), np.ones(3, bool)))  # no ham: undefined


def test_figures_count_unsure_as_not_spam():
    y = [0, 0, 1, 1, 1]
    out = figures(y, [0.1, 0.6, 0.6, 0.9, 0.2], ["ham", "unsure", "unsure", "spam", "ham"], [0.001] * 5)
    assert (out["false_positives"], out["false_negatives"], out["unsure"]) == (0, 2, 2)
    assert out["fpr"] == 0.0 and out["fnr"] == pytest.approx(2 / 3)
    assert out["ms_per_message"] == pytest.approx(1.0)


def _message(folder, name, date_line):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"From: a@example.com\n" + (date_line + b"\n" if date_line else b"") + b"Subject: s\n\nbody\n")
    return path


def test_message_dates_read_zones_and_refuse_what_is_not_a_date(tmp_path):
    zoned = message_date(b"Date: Thu, 22 Aug 2002 12:07:35 +0800\n\nx")
    assert zoned.isoformat() == "2002-08-22T12:07:35+08:00"
    assert message_date(b"Date: Thu, 22 Aug 2002 04:07:35 -0000\n\nx") == zoned  # no zone: UTC
    assert message_date(b"Subject: none\n\nx") is None
    assert message_date(b"Date: 2002/09/14 Sat 02:29:32 CDT\n\nx") is None
    assert message_date(b"Date: Thu, 22 Aug 0102 12:07:35 +0800\n\nx") is None  # year 102: not a date


def test_the_chronological_stream_places_undated_messages_beside_their_folder_neighbours(tmp_path):
    a, b = tmp_path / "ham" / "a", tmp_path / "spam" / "b"
    paths = [
        _message(a, "001", b"Date: Mon, 02 Sep 2002 10:00:00 +0000"),
        _message(a, "002", None),  # takes 001's date: after it, before b/003
        _message(a, "003", b"Date: Wed, 04 Sep 2002 10:00:00 +0000"),
        _message(b, "001", b"Date: not a date"),  # first of its folder: takes 002's date, the one after
        _message(b, "002", b"Date: Tue, 03 Sep 2002 10:00:00 +0200"),
        _message(b, "003", b"Date: Tue, 03 Sep 2002 09:00:00 +0000"),  # later than b/002 in UTC
    ]
    order, notes = chronological(paths)
    names = [str(paths[i].relative_to(tmp_path)) for i in order]
    assert names == ["ham/a/001", "ham/a/002", "spam/b/001", "spam/b/002", "spam/b/003", "ham/a/003"]
    assert notes["undated_or_unparseable"] == 2 and notes["placed_last"] == 0
    assert notes["messages_per_year"] == {2002: 4}


def test_a_folder_with_no_dates_goes_last_and_the_random_order_is_seeded(tmp_path):
    dated = _message(tmp_path / "x", "1", b"Date: Mon, 02 Sep 2002 10:00:00 +0000")
    undated = [_message(tmp_path / "y", str(i), None) for i in range(3)]
    paths = [*undated, dated]
    order, notes = chronological(paths)
    assert [paths[i] for i in order] == [dated, *undated] and notes["placed_last"] == 3
    labels = np.array([0, 1, 0, 1])
    first = stream(paths, labels, "random", seed=3)
    assert first[0] == stream(paths, labels, "random", seed=3)[0] and sorted(first[0]) == sorted(paths)
    assert [labels[paths.index(p)] for p in first[0]] == list(first[1])


@pytest.mark.parametrize("peer", [Bogofilter, Spamprobe])
def test_a_peer_scores_each_message_before_it_learns_it(peer, tmp_path):
    if not shutil.which(peer.name):
        pytest.skip(f"{peer.name} not installed")
    # the same spam five times over, with a fresh Message-ID each: learned, it scores higher the next time
    paths = []
    for i in range(5):
        path = tmp_path / "mail" / f"{i}.eml"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"Message-ID: <%d@x>\nSubject: cheap pills zorbex\n\nzorbex quintal vardimo pills cheap now\n" % i)
        paths.append(path)
    ham = tmp_path / "mail" / "ham.eml"
    ham.write_bytes(b"Message-ID: <h@x>\nSubject: meeting notes\n\nthe agenda for tuesday and the minutes\n")
    labels = np.array([0, 1, 1, 1, 1, 1])
    out = run_all([peer()], tmp_path / "online", [ham, *paths], labels, "empty", "test")[peer.name]
    assert (out["messages"], out["spam"], out["start_messages"]) == (6, 5, 0)
    empty, trained = peer(), peer()
    empty.start(tmp_path / "empty", [], [])
    trained.start(tmp_path / "trained", [ham, *paths[:3]], labels[:4])
    assert trained.score(paths[4])[0] > empty.score(paths[4])[0]  # a start learns its messages


def test_filters_take_turns_and_one_failing_leaves_the_others_their_rows(tmp_path):
    if not shutil.which("bogofilter"):
        pytest.skip("bogofilter not installed")

    class Broken(Bogofilter):
        name = "broken"

        def learn(self, path, label):
            raise RuntimeError("no learning here\nsecond line")

    paths = []
    for i, (subject, label) in enumerate([(b"agenda", 0), (b"pills", 1), (b"minutes", 0), (b"cheap pills", 1)]):
        path = tmp_path / "mail" / f"{i}.eml"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"Message-ID: <%d@x>\nSubject: %s\n\n%s\n" % (i, subject, subject))
        paths.append(path)
    out = run_all([Broken(), Bogofilter()], tmp_path / "work", paths, np.array([0, 1, 0, 1]), "empty", "test")
    assert out["broken"] == {"error": "no learning here"}
    assert out["bogofilter"]["messages"] == 4 and len(out) == 2

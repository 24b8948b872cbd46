"""Online learning through the Python API (issue 19): real tiny Keras models, real bundles, no mocks.

``clf.learn`` / ``forget`` / ``relearn`` / ``save`` and ``spamclf.load(dir, create=True)``: new tokens
become features, the same label twice changes nothing, the other label moves a message, forget
removes it, scoring reflects every change from memory, saving is atomic and never replaces a bundle
another process wrote, and the store's files are tamper-checked like the rest of a bundle.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import spamclf
from conftest import make_format_1
from spamclf.commands.filter import add_headers
from spamclf.mail.extract import extract
from spamclf.mail.header_block import header_end
from spamclf.mail.labelled import learning_key
from spamclf.errors import BundleError, DataError, UsageError
from spamclf.model.bundle import MANIFEST_FILE, STORE_FILE, STORE_INDEX_FILE, _bundle_id, load_bundle

# Tiny and quick: a small network, a small vocabulary, refits only when a test asks for one.
TINY = {
    "features": {"max_features": 800, "min_df": 1},
    "model": {"units": [16, 8]},
    "train": {"epochs": 4, "batch_size": 16},
    "learn": {"first_refit": 100000, "learning_rate": 0.01, "steps": 2, "replay": 8},
}


def message(subject: str, body: str, sender: str = "someone@example.com", msgid: str | None = None) -> bytes:
    head = f"From: {sender}\nTo: you@example.org\nSubject: {subject}\n"
    if msgid:
        head += f"Message-ID: <{msgid}>\n"
    return (head + "\n" + body + "\n").encode()


def corpus(sample: Path, n: int) -> tuple[list[bytes], list[int]]:
    """``n`` spam and ``n`` ham of the sample, interleaved."""
    spam = sorted((sample / "spam").iterdir())[:n]
    ham = sorted((sample / "ham").iterdir())[:n]
    raws, labels = [], []
    for s, h in zip(spam, ham):
        raws += [s.read_bytes(), h.read_bytes()]
        labels += [1, 0]
    return raws, labels


@pytest.fixture(scope="module")
def learned(sample, tmp_path_factory):
    """A learner that learned 20 spam and 20 ham of the sample one message at a time, saved."""
    folder = tmp_path_factory.mktemp("learned") / "models"
    clf = spamclf.load(folder, create=True, config=TINY)
    raws, labels = corpus(sample, 20)
    for raw, label in zip(raws, labels):
        clf.learn([raw], label)
    clf.save()
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(folder, target)
    return target


def test_an_empty_filter_labels_nothing_spam(sample, tmp_path):
    clf = spamclf.load(tmp_path / "new", create=True, config=TINY)
    rows = list(clf.predict([str(sample / "spam")]))
    assert rows and all(r.label == "ham" and r.score == 0.0 for r in rows)
    with pytest.raises(DataError, match="nothing learned yet"):
        clf.save()
    assert not (tmp_path / "new").exists()
    with pytest.raises(BundleError, match="does not exist"):
        spamclf.load(tmp_path / "new")  # without create, as before


def test_a_campaign_of_unseen_words_is_caught_after_five_of_its_messages(learned, sample, tmp_path):
    clf = spamclf.load(copy_of(learned, tmp_path))
    words = "zorvex quimbal trandolin fezzwick plumbrix gravolan nexquor"
    ham = corpus(sample, 1)[0][1]  # a learned ham's header block, a body of words never seen
    head = ham[: header_end(ham)]
    campaign = [head + f"\n\n{words} {words} offer {i}\n".encode() for i in range(6)]
    assert not any(w in clf.features._index for w in words.split())  # the words are new
    before = float(clf.score_messages([campaign[5]])[0])
    assert clf.learn(campaign[:5], "spam")["learned"] == 5
    assert all(w in clf.features._index for w in words.split())  # they became features
    after = float(clf.score_messages([campaign[5]])[0])
    assert before < clf.threshold <= after, (before, after)


def test_learning_the_same_label_twice_changes_nothing_and_the_other_label_moves_it(learned, sample, tmp_path):
    clf = spamclf.load(copy_of(learned, tmp_path))
    raw = sorted((sample / "spam").iterdir())[30].read_bytes()
    assert clf.learn([raw], "spam") == {"learned": 1, "relabelled": 0, "unchanged": 0, "errors": []}
    store = clf._learner.store
    size, kernel, scores = len(store), clf.bundle.layers[0][0].copy(), clf.score_messages([raw])
    assert clf.learn([raw], True) == {"learned": 0, "relabelled": 0, "unchanged": 1, "errors": []}
    assert len(store) == size and np.array_equal(clf.bundle.layers[0][0], kernel)
    assert np.array_equal(clf.score_messages([raw]), scores)
    # filtered first (our X-Spam headers, a forged one renamed): still the same message
    filtered = add_headers(b"X-Spam-Flag: NO\n" + raw, [("X-Spam-Flag", "YES"), ("X-Spam-Score", "0.9")])
    assert clf.learn([filtered], 1)["unchanged"] == 1
    assert clf.learn([raw], "ham") == {"learned": 0, "relabelled": 1, "unchanged": 0, "errors": []}
    assert len(store) == size and store.labels[-1] == 0


def test_forget_removes_a_message_and_counts_unknown_ones(learned, sample, tmp_path):
    clf = spamclf.load(copy_of(learned, tmp_path))
    raws, _ = corpus(sample, 20)
    result = clf.forget([raws[0], raws[0], message("never", "learned at all")])
    store = clf._learner.store
    assert result == {"forgotten": 1, "unknown": 2, "errors": []}
    assert len(store) == 39 and store.class_counts() == (20, 19)
    assert clf.learn([raws[0]], "spam")["learned"] == 1  # learned anew, not "unchanged"


def test_bad_labels_and_unreadable_inputs(learned, tmp_path):
    clf = spamclf.load(copy_of(learned, tmp_path))
    with pytest.raises(UsageError, match="not spam or ham"):
        clf.learn([b"x"], "junk")
    with pytest.raises(UsageError, match="2 labels for 1 messages"):
        clf.learn([b"x"], ["spam", "ham"])
    result = clf.learn([tmp_path / "missing.eml", message("hi", "a real message")], ["spam", "ham"])
    assert result["learned"] == 1 and result["errors"] == [{"path": str(tmp_path / "missing.eml"), "error": "no such file or folder"}]


def test_learning_shows_in_predict_at_once_without_reading_the_disk(learned, sample, tmp_path):
    folder = copy_of(learned, tmp_path)
    clf = spamclf.load(folder)
    shutil.rmtree(folder)  # nothing left to read
    path = tmp_path / "msg.eml"
    path.write_bytes(message("quarterly figures zyxwvut", "zyxwvut report attached " * 5))
    before = next(iter(clf.predict([str(path)]))).score
    for i in range(3):
        clf.learn([message(f"zyxwvut {i}", "zyxwvut report attached " * 5 + str(i))], "spam")
    after = next(iter(clf.predict([str(path)]))).score
    assert after > before


def test_save_and_load_keep_the_store_and_the_scores(learned, sample, tmp_path):
    clf = spamclf.load(copy_of(learned, tmp_path))
    raws, _ = corpus(sample, 30)
    clf.learn(raws[40:], [1, 0] * 10)
    expected = clf.score_messages(raws)
    bundle_id = clf.save()
    again = spamclf.load(tmp_path / "models")
    assert again.bundle.bundle_id == bundle_id
    assert np.allclose(again.score_messages(raws), expected, atol=1e-6)
    saved = json.loads((tmp_path / "models" / STORE_INDEX_FILE).read_text())
    assert len(saved["keys"]) == 60 and saved["keys"] == clf._learner.store.keys
    assert again.learn(raws[:2], [1, 0])["unchanged"] == 2  # the store came back


def test_relearn_rebuilds_from_the_store(learned, tmp_path):
    folder = copy_of(learned, tmp_path)
    before = load_bundle(folder)
    summary = spamclf.relearn(folder)
    assert summary["messages"] == 40 and summary["ham"] == summary["spam"] == 20 and summary["epochs_run"] >= 1
    after = load_bundle(folder)
    assert after.bundle_id == summary["bundle_id"] != before.bundle_id
    assert json.loads((folder / STORE_INDEX_FILE).read_text())["state"]["refits"] == 1
    empty = spamclf.load(tmp_path / "new", create=True, config=TINY)
    with pytest.raises(DataError, match="nothing to relearn"):
        empty.relearn()


def test_a_stale_save_is_refused_and_the_other_update_kept(learned, tmp_path):
    folder = copy_of(learned, tmp_path)
    first, second = spamclf.load(folder), spamclf.load(folder)
    first.learn([message("one", "first update")], "ham")
    saved = first.save()
    second.learn([message("two", "second update")], "spam")
    with pytest.raises(BundleError, match="changed by another process"):
        second.save()
    assert load_bundle(folder).bundle_id == saved
    first.learn([message("three", "first again")], "ham")
    first.save()  # its own save is no obstacle


def test_two_new_learners_of_one_folder_do_not_overwrite_each_other(tmp_path):
    a = spamclf.load(tmp_path / "m", create=True, config=TINY)
    b = spamclf.load(tmp_path / "m", create=True, config=TINY)
    a.learn([message("a", "alpha words")], "spam")
    b.learn([message("b", "beta words")], "ham")
    a.save()
    with pytest.raises(BundleError, match="changed by another process"):
        b.save()


def test_models_lock_is_exclusive_and_survives_the_folder_swap(learned, tmp_path):
    folder = copy_of(learned, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import spamclf, time\nwith spamclf.models_lock({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BundleError, match="being changed by another process"):
            with spamclf.models_lock(folder, timeout=0.2):
                pass
    finally:
        holder.kill()
        holder.wait()
    with spamclf.models_lock(folder, timeout=5) as lock:
        clf = spamclf.load(folder)
        clf.learn([message("locked", "under the lock")], "ham")
        clf.save()
        assert lock.parent == tmp_path and lock.name == ".models.lock"


@pytest.mark.parametrize("name", [STORE_FILE, STORE_INDEX_FILE])
def test_a_changed_store_file_is_refused(learned, tmp_path, name):
    folder = copy_of(learned, tmp_path)
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{name} does not match its SHA-256"):
        spamclf.load(folder)


def rewrite(folder: Path, name: str, data: bytes) -> None:
    """Replace a file and write a manifest that matches: what only the content checks can catch."""
    import hashlib

    (folder / name).write_bytes(data)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    manifest["bundle_id"] = _bundle_id(manifest)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_a_store_with_a_consistent_manifest_but_bad_contents_is_refused(learned, tmp_path):
    import io

    folder = copy_of(learned, tmp_path)
    with np.load(folder / STORE_FILE) as npz:
        arrays = dict(npz)
    arrays["labels"] = arrays["labels"].copy()
    arrays["labels"][0] = 7
    out = io.BytesIO()
    np.savez(out, **arrays)
    rewrite(folder, STORE_FILE, out.getvalue())
    clf = spamclf.load(folder)  # scoring does not read the store
    with pytest.raises(BundleError, match="a label is not 0 or 1"):
        clf.learn([b"Subject: x\n\nhello"], "ham")
    doc = json.loads((folder / STORE_INDEX_FILE).read_text())
    doc["keys"] = doc["keys"][1:]
    rewrite(folder, STORE_INDEX_FILE, json.dumps(doc).encode())
    clf = spamclf.load(folder)
    with pytest.raises(BundleError, match="do not describe the same examples"):
        clf.learn([b"Subject: x\n\nhello"], "ham")
    rewrite(folder, STORE_INDEX_FILE, b"not JSON")
    assert spamclf.load(folder).score_messages([b"Subject: x\n\nhello"]).shape == (1,)  # scoring never parses it
    with pytest.raises(BundleError, match="store.json is not JSON"):
        spamclf.relearn(folder)


def test_learning_into_a_format_1_bundle_keeps_its_network_and_starts_a_store(smoke_models, sample, tmp_path):
    folder = make_format_1(copy_of(smoke_models, tmp_path))
    clf = spamclf.load(folder)
    raws, _ = corpus(sample, 3)
    trained = clf.score_messages(raws)
    assert clf.learn([message("new", "a first correction")], "ham")["learned"] == 1
    assert np.corrcoef(trained, clf.score_messages(raws))[0, 1] > 0.9  # the trained network, not a new one
    clf.save()
    again = load_bundle(folder)
    assert again.manifest["format_version"] == 2 and len(json.loads((folder / STORE_INDEX_FILE).read_text())["keys"]) == 1


KILLED_SAVE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import spamclf, spamclf.model.bundle as bundle

    def hang(folder, *rest):
        Path(sys.argv[2]).write_text(str(folder))
        while True:
            time.sleep(0.05)

    setattr(bundle, "_write_manifest", hang)  # every other file written, the manifest not yet
    clf = spamclf.load(sys.argv[1])
    clf.learn([b"Subject: killed\\n\\nkilled while saving"], "spam")
    clf.save()
    """
)


def test_a_save_killed_midway_leaves_the_old_bundle_whole(learned, tmp_path):
    folder = copy_of(learned, tmp_path)
    before = load_bundle(folder).bundle_id
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(folder), str(ready)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    partial = Path(ready.read_text())
    assert partial.is_dir() and (partial / STORE_FILE).is_file() and not (partial / MANIFEST_FILE).exists()
    assert load_bundle(folder).bundle_id == before
    clf = spamclf.load(folder)
    assert clf.learn([b"Subject: killed\n\nkilled while saving"], "spam")["learned"] == 1  # it was never saved


def test_train_keeps_its_examples_so_learn_forget_and_relearn_cover_them(smoke_models, sample, tmp_path):
    folder = copy_of(smoke_models, tmp_path)
    doc = json.loads((folder / STORE_INDEX_FILE).read_text())
    trained = json.loads((folder / "metadata.json").read_text())["data"]["messages"]
    assert len(doc["keys"]) == trained and doc["state"]["trained"] and not doc["state"].get("partial")
    clf = spamclf.load(folder)
    spam = str(sorted((sample / "spam").iterdir())[0])
    assert clf.learn([spam], "spam")["unchanged"] == 1  # training learned it already
    store, learner = clf._learner.store, clf._learner
    for path in sorted((sample / "ham").iterdir())[:5] + [Path(spam)]:  # each kept as learn counts it
        raw = path.read_bytes()
        ids, counts = store.rows[store.where[learning_key(raw)]]
        assert {store.terms[i]: c for i, c in zip(ids, counts)} == Counter(learner.tokens(extract(raw, clf.options, tidy=False)))
    assert clf.forget([spam]) == {"forgotten": 1, "unknown": 0, "errors": []}  # and the network is refitted without it
    assert len(clf._learner.store) == trained - 1 and clf._learner.store.state["refits"] == 1


UNCHANGED_NETWORK_SAVES = textwrap.dedent(
    """
    import sys
    import numpy as np
    import spamclf

    folder, known, campaign = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
    clf = spamclf.load(folder)
    assert clf.learn([known], "spam")["unchanged"] == 1
    clf.save()  # nothing learned: a new bundle (its metadata says when), the same network
    assert clf.forget([b"Subject: never\\n\\nlearned at all"])["unknown"] == 1
    clf.save()
    n_features, scores = clf.features.n_features, clf.score_messages([known, campaign])
    assert clf.learn([campaign], "spam")["learned"] == 1
    # within the margin and no new feature: stored, and the network as it was
    assert clf.features.n_features == n_features and np.array_equal(clf.score_messages([known, campaign]), scores)
    clf.save()
    print(len(clf._learner.store), "tensorflow" in sys.modules)
    """
)


def test_a_save_that_changed_no_weights_keeps_the_network_files_and_needs_no_tensorflow(learned, tmp_path):
    folder = copy_of(learned, tmp_path)
    clf = spamclf.load(folder)
    words = "zorvex quimbal trandolin fezzwick plumbrix"
    variants = [message("cheap zorvex", f"{words} {words}", msgid=f"{i}@campaign.example") for i in range(12)]
    for raw in variants[:-1]:  # the same words again until the network is sure of them
        clf.learn([raw], "spam")
        if float(clf.score_messages([variants[-1]])[0]) > 1 - clf._learner.policy["margin"]:
            break
    clf.save()
    (tmp_path / "known").write_bytes(variants[0])
    (tmp_path / "campaign").write_bytes(variants[-1])
    before = {name: (folder / name).read_bytes() for name in ("model.keras", "weights.npz")}
    stored, bundle_before = len(clf._learner.store), load_bundle(folder).bundle_id
    out = subprocess.run(
        [sys.executable, "-c", UNCHANGED_NETWORK_SAVES, str(folder), str(tmp_path / "known"), str(tmp_path / "campaign")],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(stored + 1), "False"]  # the campaign message was stored; TensorFlow never imported
    assert load_bundle(folder).bundle_id != bundle_before
    assert {name: (folder / name).read_bytes() for name in before} == before



def test_a_kept_model_file_changed_since_loading_is_not_saved(learned, tmp_path):
    folder = copy_of(learned, tmp_path)
    clf = spamclf.load(folder)
    before = load_bundle(folder).bundle_id
    assert clf.forget([message("never", "learned")])["unknown"] == 1
    model = folder / "model.keras"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))  # changed in place: the manifest still names the loaded bundle
    with pytest.raises(BundleError, match="model.keras changed since it was loaded"):
        clf.save()
    assert json.loads((folder / MANIFEST_FILE).read_text())["bundle_id"] == before

def test_stored_rows_are_the_rows_transform_makes_from_the_text(learned, sample):
    from spamclf.mail.extract import extract
    from spamclf.mail.header_block import message_key

    clf = spamclf.load(learned)
    assert clf.learn(corpus(sample, 20)[0][:2], [1, 0])["unchanged"] == 2  # (the learner, made from the bundle)
    learner = clf._learner
    raws, _ = corpus(sample, 20)
    texts = [extract(raw, clf.options, tidy=False) for raw in raws]
    positions = [learner.store.where[message_key(raw)] for raw in raws]
    stored, made = learner.rows(positions), clf.features.transform(texts)
    assert stored.shape == made.shape and stored.nnz == made.nnz > 0
    assert np.array_equal(stored.indices, made.indices) and np.array_equal(stored.indptr, made.indptr)
    assert np.allclose(stored.data, made.data, atol=1e-6)

"""Labelled data: duplicates are counted and dropped, and no message lands in both splits."""

from __future__ import annotations

import json
import mailbox


from spamclf.mail.labelled import LabelledData, count_labelled, item_key, load_labelled, message_digest, read_labelled
from spamclf.model.features import TfidfFeatures
from spamclf.mail.extract import ExtractOptions
from spamclf.commands.preprocess import preprocess
from spamclf.mail.sources import LabelledSource


def test_digest_ignores_the_envelope_line():
    body = b"Subject: x\n\nsame"
    assert message_digest(b"From a@b Mon Jan  1 00:00:00 2001\n" + body) == message_digest(b"From c@d Tue Feb  2 00:00:00 2002\n" + body)
    assert message_digest(body) != message_digest(body + b"!")


def test_training_keys_every_message_as_learn_does_whether_or_not_workers_run(tmp_path, sample):
    box = mailbox.mbox(str(tmp_path / "spam.mbox"))
    for path in sorted((sample / "spam").iterdir())[:20]:
        box.add(path.read_bytes())
    box.flush()
    sources = [LabelledSource(str(sample / "ham"), 0), LabelledSource(str(tmp_path / "spam.mbox"), 1)]
    expected = [item_key(item) for item, _ in read_labelled(sources, ExtractOptions(), LabelledData(), progress=False)]
    for jobs in (1, 2):
        data = count_labelled(sources, ExtractOptions(), TfidfFeatures(), progress=False, jobs=jobs, batch_size=16)
        assert data.keys == expected and len(set(data.keys)) == len(data) > 100


def test_duplicates_across_formats_are_dropped_and_reported(tmp_path, sample):
    spam = sorted((sample / "spam").iterdir())
    box = mailbox.mbox(str(tmp_path / "again.mbox"))
    for path in spam[:10]:
        box.add(path.read_bytes())  # the same messages again, now inside a mailbox
    box.flush()
    data = load_labelled(
        [str(sample), LabelledSource(str(tmp_path / "again.mbox"), 1), LabelledSource(str(spam[0]), 0)], ExtractOptions(), progress=False
    )
    assert len(data) == 300
    stats = data.stats()
    assert stats["duplicates_dropped"] >= 10  # Python's mbox writer may quote a "From " body line: then not exact
    reasons = stats["skipped_by_reason"]
    assert reasons.get("exact duplicate with the other label (the first copy is kept)") == 1
    assert all(entry["duplicate_of"] for entry in stats["skipped_messages"] if "duplicate" in entry["reason"])


def test_preprocess_never_puts_one_message_in_both_splits(tmp_path, sample):
    folder = tmp_path / "data"
    for label in ("spam", "ham"):
        (folder / label).mkdir(parents=True)
        for n, path in enumerate(sorted((sample / label).iterdir())):
            raw = path.read_bytes()
            (folder / label / path.name).write_bytes(raw)
            if n % 3 == 0:  # every third message twice, under another name
                (folder / label / f"copy-{path.name}").write_bytes(raw)
    stats = preprocess([str(folder)], tmp_path / "out", test_size=0.3, seed=7, progress=False)
    assert stats["duplicates_dropped"] == 40 + 60
    digests = {}
    for split in ("train", "test"):
        lines = (tmp_path / "out" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[1:]
        digests[split] = [json.loads(line)["sha256"] for line in lines]
    assert len(digests["train"]) + len(digests["test"]) == 300
    assert not set(digests["train"]) & set(digests["test"])


def test_rows_made_while_loading_equal_the_texts_transformed(sample, smoke_models, tmp_path):
    """What ``evaluate`` scores: the workers' TF-IDF rows are the rows of the extracted texts, in order,
    whatever the number of workers, for raw messages and for a preprocessed file's texts."""
    import numpy as np

    from spamclf.commands.predict import Classifier

    from spamclf.commands.evaluate import labelled_rows

    clf = Classifier.load(smoke_models)
    texts = load_labelled([str(sample)], clf.options, progress=False, jobs=1)  # the sample has no duplicates
    expected = clf.features.transform(texts.texts)
    for jobs in (1, 2):
        data = labelled_rows([str(sample)], clf, progress=False, jobs=jobs)
        assert data.paths == texts.paths and data.labels == texts.labels and data.texts == []
        x = data.row_matrix()
        assert x.shape == expected.shape and (x != expected).nnz == 0
        assert np.array_equal(clf.score_rows(x), clf.score_texts(texts.texts))
    preprocess([str(sample)], tmp_path / "pre", options=clf.options, progress=False)
    preprocessed = tmp_path / "pre" / "test.jsonl"
    data = labelled_rows([str(preprocessed)], clf, progress=False)
    again = load_labelled([str(preprocessed)], clf.options, progress=False)
    assert (data.row_matrix() != clf.features.transform(again.texts)).nnz == 0


def test_evaluation_measures_every_copy_and_training_drops_duplicates(sample, smoke_models, tmp_path):
    from spamclf.commands.evaluate import labelled_rows
    from spamclf.commands.predict import Classifier

    spam = sorted((sample / "spam").iterdir())[:3]
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    for i, path in enumerate(spam * 2):
        (data_dir / f"{i}.eml").write_bytes(path.read_bytes())
    clf = Classifier.load(smoke_models)
    source = [LabelledSource(str(data_dir), 1)]
    assert len(labelled_rows(source, clf, progress=False)) == 6
    loaded = load_labelled(source, clf.options, progress=False)
    assert len(loaded) == 3 and loaded.duplicates == 3

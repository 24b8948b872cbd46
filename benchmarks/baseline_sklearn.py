"""The scikit-learn baseline: TF-IDF and logistic regression on each file's decoded bytes.

``train DIR MODEL`` fits on DIR/{spam,ham}; ``classify MODEL INPUT...`` prints ``path,score,label``
rows. The model is stored as JSON and NPZ (vocabulary, IDF, coefficients), never pickled.
Run as a whole process by the speed benchmark; ``fit`` and ``scores`` serve the accuracy one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


def fit(texts: list[str], labels: np.ndarray):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, dtype=np.float32)
    model = LogisticRegression(C=10.0, max_iter=1000, solver="liblinear")
    model.fit(vectorizer.fit_transform(texts), labels)
    return vectorizer, model


def scores(vectorizer, model, texts: list[str]) -> np.ndarray:
    return model.predict_proba(vectorizer.transform(texts))[:, 1]


def _files(root: Path):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]


def train(folder: Path, out: Path) -> None:
    paths = {label: _files(folder / name) for label, name in ((1, "spam"), (0, "ham"))}
    texts = [_text(p.read_bytes()) for label in (1, 0) for p in paths[label]]
    labels = np.asarray([label for label in (1, 0) for _ in paths[label]])
    vectorizer, model = fit(texts, labels)
    out.mkdir(parents=True, exist_ok=True)
    vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    (out / "vocabulary.json").write_text(json.dumps(vocab))
    np.savez(out / "model.npz", idf=vectorizer.idf_, coef=model.coef_, intercept=model.intercept_)


def load(out: Path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vocab = json.loads((out / "vocabulary.json").read_text())
    with np.load(out / "model.npz", allow_pickle=False) as npz:
        vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, vocabulary=vocab)
        vectorizer.idf_ = npz["idf"]
        model = LogisticRegression()
        model.coef_, model.intercept_, model.classes_ = npz["coef"], npz["intercept"], np.array([0, 1])
    return vectorizer, model


def classify(out: Path, inputs: list[str], batch: int = 512) -> None:
    vectorizer, model = load(out)
    paths = [p for given in inputs for p in _files(Path(given))]
    write = sys.stdout.write
    for start in range(0, len(paths), batch):  # bounded memory, rows streamed out
        chunk = paths[start : start + batch]
        for path, score in zip(chunk, scores(vectorizer, model, [_text(p.read_bytes()) for p in chunk])):
            write(f"{path},{score:.6f},{'spam' if score >= 0.5 else 'ham'}\n")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "train":
        train(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "classify":
        classify(Path(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit("usage: baseline_sklearn.py train DIR MODEL | classify MODEL INPUT...")

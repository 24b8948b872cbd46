"""TF-IDF features: fitted with scikit-learn, applied with NumPy/SciPy alone.

``fit`` uses scikit-learn's ``TfidfVectorizer`` with our own analyzer; what it
learns (the vocabulary and the IDF weights) is saved as JSON and NPZ. ``transform``
re-implements the vectorizer's transform from those two arrays, so classifying
needs neither scikit-learn nor TensorFlow; a test keeps both transforms equal.
The matrix stays sparse (CSR, float32) from end to end.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")


def analyze(text: str, *, lowercase: bool = True, ngram_max: int = 1, max_token_chars: int = 80) -> list[str]:
    """Tokens of ``text``: words of two or more word characters, and word n-grams up to ``ngram_max``."""
    if lowercase:
        text = text.lower()
    tokens = [t for t in TOKEN_PATTERN.findall(text) if len(t) <= max_token_chars]
    if ngram_max <= 1:
        return tokens
    grams = list(tokens)
    for n in range(2, ngram_max + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams


class TfidfFeatures:
    """TF-IDF vectorizer. ``__init__`` stores settings, ``fit`` learns ``vocabulary_`` and ``idf_``."""

    def __init__(
        self,
        max_features: int | None = 50_000,
        ngram_max: int = 1,
        min_df: int = 2,
        max_df: float = 1.0,
        sublinear_tf: bool = True,
        lowercase: bool = True,
    ) -> None:
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase

    @classmethod
    def from_config(cls, config: dict) -> "TfidfFeatures":
        return cls(**config["features"])

    def settings(self) -> dict:
        return {k: getattr(self, k) for k in ("max_features", "ngram_max", "min_df", "max_df", "sublinear_tf", "lowercase")}

    def _analyzer(self):
        return partial(analyze, lowercase=self.lowercase, ngram_max=self.ngram_max)

    def _sklearn(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            analyzer=self._analyzer(),
            max_features=self.max_features,
            min_df=self.min_df,
            max_df=self.max_df,
            sublinear_tf=self.sublinear_tf,
            dtype=np.float32,
        )

    def fit(self, texts: Sequence[str]) -> "TfidfFeatures":
        """Learn the vocabulary and IDF weights from ``texts`` (the training messages only)."""
        vectorizer = self._sklearn()
        try:
            vectorizer.fit(texts)
        except ValueError:
            # scikit-learn's message for "no term survived min_df/max_df"; ours names the cause.
            from .errors import DataError

            raise DataError(
                "no vocabulary: the training messages have no words that pass features.min_df "
                f"({self.min_df}) and features.max_df ({self.max_df})"
            ) from None
        vocab = vectorizer.vocabulary_
        self.vocabulary_ = sorted(vocab, key=vocab.__getitem__)
        self.idf_ = np.asarray(vectorizer.idf_, dtype=np.float32)
        self._index = {term: i for i, term in enumerate(self.vocabulary_)}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocabulary_"):
            raise RuntimeError("TfidfFeatures is not fitted: call fit() or load() first")

    @property
    def n_features(self) -> int:
        self._check_fitted()
        return len(self.vocabulary_)

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        """Sparse L2-normalised TF-IDF rows for ``texts``; terms outside the vocabulary are ignored."""
        self._check_fitted()
        index, analyzer = self._index, self._analyzer()
        indptr, indices, counts = [0], [], []
        for text in texts:
            row = Counter(j for j in map(index.get, analyzer(text)) if j is not None)
            cols = sorted(row)
            indices.extend(cols)
            counts.extend(row[c] for c in cols)
            indptr.append(len(indices))
        data = np.asarray(counts, dtype=np.float32)
        cols = np.asarray(indices, dtype=np.int32)
        if self.sublinear_tf:
            data = np.log(data) + 1.0
        data *= self.idf_[cols]
        ptr = np.asarray(indptr, dtype=np.int64)
        norms = np.sqrt(np.add.reduceat(data * data, ptr[:-1])) if data.size else np.zeros(0, np.float32)
        lengths = np.diff(ptr)
        if data.size:
            # reduceat repeats a value for empty rows; those rows have no entries to scale
            data /= np.repeat(np.where(lengths > 0, norms, 1.0), lengths).astype(np.float32)
        return sp.csr_matrix((data, cols, ptr), shape=(len(ptr) - 1, len(self.vocabulary_)), dtype=np.float32)

    # --- persistence: JSON and NPZ, never pickle -------------------------------------------------

    def save(self, vocab_path: Path, idf_path: Path) -> None:
        self._check_fitted()
        Path(vocab_path).write_text(
            json.dumps({"settings": self.settings(), "vocabulary": self.vocabulary_}, ensure_ascii=False),
            encoding="utf-8",
        )
        with open(idf_path, "wb") as fh:
            np.savez(fh, idf=self.idf_)

    @classmethod
    def load(cls, vocab_path: Path, idf_path: Path) -> "TfidfFeatures":
        doc = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
        features = cls(**doc["settings"])
        features.vocabulary_ = list(doc["vocabulary"])
        with np.load(idf_path, allow_pickle=False) as npz:
            features.idf_ = np.asarray(npz["idf"], dtype=np.float32)
        if len(features.idf_) != len(features.vocabulary_):
            raise ValueError(f"vocabulary has {len(features.vocabulary_)} terms but IDF has {len(features.idf_)}")
        features._index = {term: i for i, term in enumerate(features.vocabulary_)}
        return features

"""TF-IDF features in NumPy/SciPy: scikit-learn's ``TfidfVectorizer``, without importing it.

``fit`` learns what ``TfidfVectorizer(analyzer=analyze, min_df, max_df, max_features,
sublinear_tf)`` learns -- the same vocabulary, the same IDF weights; a test keeps the two
equal -- from one tokenising pass, and ``fit_transform`` reuses that pass for the training
rows. Importing scikit-learn's text module alone costs about 1.3 s, a large part of a
whole training run, and classifying must not need it either. What ``fit`` learns is saved
as JSON and NPZ. The matrix stays sparse (CSR, float32) from end to end.
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


# Chinese, Japanese and Korean text has no spaces between words: a whole sentence would be one
# "word". Runs of those scripts become overlapping character pairs instead.
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def _cjk_bigrams(token: str) -> list[str]:
    out = []
    for part in re.split(f"({CJK.pattern})", token):
        if CJK.fullmatch(part):
            out += [part[i : i + 2] for i in range(max(len(part) - 1, 1))]
        elif len(part) >= 2:
            out.append(part)
    return out


def analyze(text: str, *, lowercase: bool = True, ngram_max: int = 1, max_token_chars: int = 80) -> list[str]:
    """Tokens of ``text``: words of two or more word characters (CJK runs as character pairs), and word n-grams up to ``ngram_max``."""
    if lowercase:
        text = text.lower()
    tokens = TOKEN_PATTERN.findall(text)
    if CJK.search(text):
        tokens = [piece for t in tokens for piece in (_cjk_bigrams(t) if CJK.search(t) else (t,))]
    tokens = [t for t in tokens if len(t) <= max_token_chars]
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

    def sklearn_vectorizer(self):
        """The scikit-learn ``TfidfVectorizer`` these settings mirror (for tests and benchmarks)."""
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
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """``fit`` then ``transform`` of the same texts, tokenising each text once."""
        terms: dict[str, int] = {}
        counts = self._counts(texts, terms, grow=True)
        n_docs = counts.shape[0]
        # scikit-learn's order of operations: sort the terms, drop them by document frequency,
        # keep the max_features most frequent (its own argsort, so ties fall the same way).
        names = sorted(terms)
        order = np.fromiter((terms[t] for t in names), dtype=np.int64, count=len(names))
        counts = counts[:, order] if len(order) else counts
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        high = self.max_df * n_docs if isinstance(self.max_df, float) else self.max_df
        mask = (df >= self.min_df) & (df <= high)
        if self.max_features is not None and mask.sum() > self.max_features:
            tfs = np.asarray(counts.sum(axis=0)).ravel()
            keep = np.flatnonzero(mask)[(-tfs[mask]).argsort()[: self.max_features]]
            mask = np.zeros_like(mask)
            mask[keep] = True
        kept = np.flatnonzero(mask)
        if not len(kept):
            from .errors import DataError

            raise DataError(
                "no vocabulary: the training messages have no words that pass features.min_df "
                f"({self.min_df}) and features.max_df ({self.max_df})"
            )
        self.vocabulary_ = [names[i] for i in kept]
        self._index = {term: i for i, term in enumerate(self.vocabulary_)}
        df32 = df[kept].astype(np.float32) + 1.0  # smooth_idf, in the vectorizer's float32
        self.idf_ = (np.log(np.float32(n_docs + 1) / df32) + 1.0).astype(np.float32)
        counts = counts[:, kept].tocsr()
        counts.sort_indices()  # the order transform() sums in: the training rows equal the scoring rows bit for bit
        return self._weigh(counts)

    def _counts(self, texts: Iterable[str], index: dict[str, int], grow: bool = False) -> sp.csr_matrix:
        """Term counts per text (CSR, columns sorted per row); unknown terms are added to ``index`` when ``grow``."""
        analyzer = self._analyzer()
        indptr, indices, counts = [0], [], []
        for text in texts:
            row = Counter(analyzer(text))
            if grow:
                for term in row:
                    if term not in index:
                        index[term] = len(index)
                pairs = sorted((index[t], c) for t, c in row.items())
            else:
                pairs = sorted((j, c) for j, c in ((index.get(t), c) for t, c in row.items()) if j is not None)
            indices.extend(j for j, _ in pairs)
            counts.extend(c for _, c in pairs)
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(counts, dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int64)),
            shape=(len(indptr) - 1, len(index)),
        )

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Counts to L2-normalised TF-IDF rows, in place of ``counts``' data."""
        data = counts.data.astype(np.float32, copy=False)
        if self.sublinear_tf:
            data = np.log(data) + 1.0
        data *= self.idf_[counts.indices]
        lengths = np.diff(counts.indptr)
        norms = np.sqrt(np.add.reduceat(data * data, counts.indptr[:-1])) if data.size else np.zeros(0, np.float32)
        if data.size:
            # reduceat repeats a value for empty rows; those rows have no entries to scale
            data /= np.repeat(np.where(lengths > 0, norms, 1.0), lengths).astype(np.float32)
        out = sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape, dtype=np.float32)
        out.has_sorted_indices = True
        return out

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
        counts = self._counts(texts, self._index)
        return self._weigh(sp.csr_matrix((counts.data, counts.indices, counts.indptr), shape=(counts.shape[0], len(self.vocabulary_))))

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

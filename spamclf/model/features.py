"""TF-IDF features in NumPy/SciPy: scikit-learn's ``TfidfVectorizer``, without importing it.

``fit`` learns what ``TfidfVectorizer(analyzer=analyze, min_df, max_df, max_features,
sublinear_tf)`` learns -- the same vocabulary, the same IDF weights; a test keeps the two
equal -- from one tokenising pass, and ``fit_transform`` reuses that pass for the training
rows. Importing scikit-learn's text module alone is a large part of a whole training run,
and classifying must not need it either. What ``fit`` learns is saved
as JSON and NPZ. The matrix stays sparse (CSR, float32) from end to end.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import chain, count, islice, repeat
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from ..config import defaults

_DEFAULTS = defaults()["features"]  # the config schema is the one home of every default

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
# The structure tokens ``extract`` writes (``hfrom_example_com``, ``htmllinks_5``, ``attachext_exe``...):
# with ``header_weight`` set they form a block of their own in every row (see ``_weigh``).
STRUCTURE_PREFIXES = (
    "hsubj hfrom hfromname hto hreplyto hreturn hrcvd hmailer hmsgid hctype hprio"
    " attach attachname attachext charset urldom linkdom htmllinks htmlimages"
).split()
STRUCTURE_TOKEN = re.compile(r"^(?:%s)_|^(?:imageonly|extracterror|htmlimageonly)$" % "|".join(STRUCTURE_PREFIXES))


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


@lru_cache(maxsize=8)
def _bounded_pattern(max_chars: int) -> re.Pattern:
    # the same words as TOKEN_PATTERN without those longer than max_chars: a longer run of word
    # characters has no word boundary inside it, so no part of it matches (and no filter pass).
    return re.compile(r"(?u)\b\w{2,%d}\b" % max_chars)


# ASCII word characters (``\w`` of an ASCII pattern) kept, every other byte a blank; the second also lower-cases.
_WORD_BYTES = bytes(b if chr(b).isalnum() or b == 95 else 32 for b in range(128)) + b" " * 128
_WORD_BYTES_LOWER = _WORD_BYTES.lower()


def _ascii_runs(text: str, table: bytes = _WORD_BYTES) -> list[str]:
    """The runs of word characters of ASCII ``text``, of any length: one byte translation and ``split``,
    half the time of the word pattern."""
    return text.encode("ascii").translate(table).decode("ascii").split()


def _ascii_words(text: str, max_token_chars: int, table: bytes = _WORD_BYTES) -> list[str]:
    """``analyze``'s tokens of ASCII text: its runs of 2 to ``max_token_chars`` word characters (a third
    faster than the pattern that finds them)."""
    return [w for w in _ascii_runs(text, table) if 1 < len(w) <= max_token_chars]


def _unicode_words(text: str, max_token_chars: int) -> list[str]:
    """``analyze``'s tokens of lower-cased text that is not all ASCII."""
    if CJK.search(text):
        tokens = TOKEN_PATTERN.findall(text)
        tokens = [piece for t in tokens for piece in (_cjk_bigrams(t) if CJK.search(t) else (t,))]
        return [t for t in tokens if len(t) <= max_token_chars]
    return _bounded_pattern(max_token_chars).findall(text)


_PIECE_CHARS = 256


def _words_by_piece(text: str, ascii_words, max_token_chars: int) -> list[str]:
    """The tokens of lower-cased, not all ASCII ``text``, in order: ``ascii_words(piece)`` for its
    ASCII pieces and ``_unicode_words`` for the others.

    The pieces are about ``_PIECE_CHARS`` long, cut before a space, which no word holds, so no word
    is cut. Most mail that is not all ASCII has a few such characters (a curly quote, a bullet, an
    accented name) in otherwise ASCII text; the Unicode pattern over the whole text was three
    quarters of tokenising's time although these texts held a quarter of the characters (10,000
    corpus messages, 1,283 of them not all ASCII).
    """
    tokens: list[str] = []
    start, end = 0, len(text)
    while start < end:
        cut = text.find(" ", start + _PIECE_CHARS)
        cut = end if cut < 0 else cut
        piece = text[start:cut]
        tokens += ascii_words(piece) if piece.isascii() else _unicode_words(piece, max_token_chars)
        start = cut
    return tokens


MAX_TOKEN_CHARS = 80  # longer runs of word characters (base64, hashes) are no words


def analyze(text: str, *, lowercase: bool = True, ngram_max: int = 1, max_token_chars: int = MAX_TOKEN_CHARS) -> list[str]:
    """Tokens of ``text``: words of two or more word characters (CJK runs as character pairs), and word n-grams up to ``ngram_max``."""
    if text.isascii():  # most mail: no CJK to look for
        tokens = _ascii_words(text, max_token_chars, _WORD_BYTES_LOWER if lowercase else _WORD_BYTES)
    else:
        text = text.lower() if lowercase else text
        tokens = _words_by_piece(text, partial(_ascii_words, max_token_chars=max_token_chars), max_token_chars)
    if ngram_max <= 1:
        return tokens
    grams = list(tokens)
    for n in range(2, ngram_max + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def lookup_terms(text: str, *, lowercase: bool = True) -> list[str]:
    """What ``analyze`` returns (with ``ngram_max`` 1) plus ASCII words of one or of more than
    ``MAX_TOKEN_CHARS`` characters (all of them in ASCII text, those of its ASCII pieces in other text), which no fitted
    vocabulary holds: scoring looks tokens up and drops unknown ones, so it may use this, and skip
    the length filter.
    """
    if not text.isascii():
        return _words_by_piece(text.lower() if lowercase else text, _ascii_runs, MAX_TOKEN_CHARS)
    return _ascii_runs(text, _WORD_BYTES_LOWER if lowercase else _WORD_BYTES)


@dataclass(frozen=True)
class CountedTerms:
    """Term counts of a batch of texts over the terms the batch uses (CSR arrays; ``terms[j]`` is column j)."""

    settings: dict
    terms: list[str]
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray


def _numbering() -> defaultdict:
    """An empty term index for ``_count_rows(..., grow=True)``: a term looked up for the first time
    gets the next column, in order of first appearance."""
    return defaultdict(count().__next__)


def _count_rows(texts: Iterable[str], analyzer, index: dict[str, int], grow: bool = False, chunk: int = 2000) -> sp.csr_matrix:
    """Term counts per text (CSR, columns sorted per row); with ``grow`` (``index`` from ``_numbering``)
    unknown terms are added to ``index``, else left out.

    Tokens become column numbers in one C-level ``map`` per text, and the counting is one
    ``np.unique`` per chunk of texts over (row, column) keys -- which also leaves every row's
    columns sorted. Profiling ``predict`` showed the per-text ``Counter`` and sorting it as
    the largest cost after extraction; in training, a set of each text's terms to find the new
    ones cost twice what numbering them on first lookup does.
    """
    parts: list[sp.csr_matrix] = []
    texts = iter(texts)
    while True:
        batch = list(islice(texts, chunk))
        if not batch and parts:
            break
        lengths, ids = [], []
        for text in batch:
            tokens = analyzer(text)
            lengths.append(len(tokens))
            ids.extend(map(index.__getitem__, tokens) if grow else map(index.get, tokens, repeat(-1)))
        width = max(len(index), 1)
        cols = np.asarray(ids, dtype=np.int64)
        rows = np.repeat(np.arange(len(batch), dtype=np.int64), lengths)
        known = cols >= 0
        keys, counts = np.unique(rows[known] * width + cols[known], return_counts=True)
        indptr = np.zeros(len(batch) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // width, minlength=len(batch)), out=indptr[1:])
        parts.append(sp.csr_matrix((counts.astype(np.float32), (keys % width).astype(np.int32), indptr), shape=(len(batch), width)))
        if not batch:
            break
    width = max(len(index), 1)
    parts = [sp.csr_matrix((p.data, p.indices, p.indptr), shape=(p.shape[0], width)) for p in parts]
    out = sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
    out = sp.csr_matrix((out.data, out.indices.astype(np.int32), out.indptr.astype(np.int64)), shape=(out.shape[0], len(index)))
    out.has_sorted_indices = True
    return out


def merge_counted(parts: Sequence[CountedTerms], settings: dict | None = None) -> tuple[dict[str, int], sp.csr_matrix]:
    """The counts of ``parts`` (batches in order) as one CSR matrix over every term, numbered in order of
    first appearance. ``settings``: the feature settings the parts must have been counted with (ValueError)."""
    if settings is not None and any(part.settings != settings for part in parts):
        raise ValueError("the term counts were made with other feature settings")
    # every term's column in order of first appearance, looked up without a Python loop per term
    terms = dict(zip(dict.fromkeys(chain.from_iterable(part.terms for part in parts)), count()))
    matrices = []
    for part in parts:
        cols = np.fromiter(map(terms.__getitem__, part.terms), dtype=np.int32, count=len(part.terms))
        matrices.append((part.data, cols[part.indices], part.indptr))
    width = max(len(terms), 1)
    matrices = [sp.csr_matrix(m, shape=(len(m[2]) - 1, width)) for m in matrices]
    counts = sp.vstack(matrices, format="csr") if len(matrices) != 1 else matrices[0]
    return terms, sp.csr_matrix(counts, shape=(counts.shape[0], len(terms)))


def df_bounds(settings: dict, n_docs: int) -> tuple[float, float]:
    """The fewest and most documents a kept term may be in: ``min_df`` and ``max_df``, a float being a share of ``n_docs``."""
    min_df, max_df = settings["min_df"], settings["max_df"]
    high = max_df if isinstance(max_df, int) and not isinstance(max_df, bool) else max_df * n_docs
    return (min_df if isinstance(min_df, int) else min_df * n_docs), high


def select_vocabulary(df: np.ndarray, totals: np.ndarray, n_docs: int, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """The terms ``TfidfVectorizer.fit`` keeps, as indices into the sorted terms that ``df`` (documents
    with the term) and ``totals`` (its count in all of them) describe, and their IDF weights.

    scikit-learn's rules: kept if ``min_df <= df <= max_df`` (a float is a share of ``n_docs``); if more
    than ``max_features`` remain, the most frequent by total count (its own argsort on the same float32
    totals, so ties fall the same way); IDF ``ln((1+n)/(1+df)) + 1`` in float32. Local and Ray
    training both fit through this.
    """
    low, high = df_bounds(settings, n_docs)
    mask = (df >= low) & (df <= high)
    limit = settings["max_features"]
    if limit is not None and mask.sum() > limit:
        tfs = np.asarray(totals, dtype=np.float32)  # scikit-learn sums a float32 count matrix
        keep = np.flatnonzero(mask)[(-tfs[mask]).argsort()[:limit]]
        mask = np.zeros_like(mask)
        mask[keep] = True
    kept = np.flatnonzero(mask)
    if not len(kept):
        from ..errors import DataError

        raise DataError(
            "no vocabulary: the training messages have no words that pass features.min_df "
            f"({settings['min_df']}) and features.max_df ({settings['max_df']})"
        )
    df32 = df[kept].astype(np.float32) + 1.0  # smooth_idf, in the vectorizer's float32
    return kept, (np.log(np.float32(n_docs + 1) / df32) + 1.0).astype(np.float32)


class TfidfFeatures:
    """TF-IDF vectorizer. ``__init__`` stores settings, ``fit`` learns ``vocabulary_`` and ``idf_``."""

    def __init__(
        self,
        max_features: int | None = _DEFAULTS["max_features"],
        ngram_max: int = _DEFAULTS["ngram_max"],
        min_df: int = _DEFAULTS["min_df"],
        max_df: float = _DEFAULTS["max_df"],
        sublinear_tf: bool = _DEFAULTS["sublinear_tf"],
        lowercase: bool = _DEFAULTS["lowercase"],
        header_weight: float | None = _DEFAULTS["header_weight"],
    ) -> None:
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.header_weight = header_weight

    @classmethod
    def from_config(cls, config: dict) -> "TfidfFeatures":
        return cls(**config["features"])

    def settings(self) -> dict:
        keys = ("max_features", "ngram_max", "min_df", "max_df", "sublinear_tf", "lowercase", "header_weight")
        return {k: getattr(self, k) for k in keys}

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
        terms = _numbering()
        return self.fit_counts(terms, _count_rows(texts, self._analyzer(), terms, grow=True))

    def count_terms(self, texts: Sequence[str]) -> CountedTerms:
        """Term counts of ``texts`` over the terms they use: one part of :meth:`fit_counted`'s input.

        Training counts in the worker processes that extract the mail, batch by batch, so
        tokenising (most of fitting) runs in parallel and only merging the parts is left.
        """
        terms = _numbering()
        counts = _count_rows(texts, self._analyzer(), terms, grow=True)
        return CountedTerms(self.settings(), list(terms), counts.data, counts.indices, counts.indptr)

    def fit_counted(self, parts: Sequence[CountedTerms]) -> sp.csr_matrix:
        """``fit_transform`` of the texts whose counts ``parts`` hold, in order: the same vocabulary,
        IDF and rows as ``fit_transform`` on those texts."""
        return self.fit_counts(*merge_counted(parts, self.settings()))

    def fit_counts(self, terms: dict[str, int], counts: sp.csr_matrix) -> sp.csr_matrix:
        """Fit on term counts (a row per text; ``terms`` maps a term to its column); return the TF-IDF rows."""
        n_docs = counts.shape[0]
        # scikit-learn's order of operations: sort the terms, drop them by document frequency,
        # keep the max_features most frequent (its own argsort, so ties fall the same way).
        names = sorted(terms)
        order = np.fromiter(map(terms.__getitem__, names), dtype=np.int64, count=len(names))
        counts = counts[:, order] if len(order) else counts
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        kept, self.idf_ = select_vocabulary(df, np.asarray(counts.sum(axis=0)).ravel(), n_docs, self.settings())
        self._set_vocabulary([names[i] for i in kept])
        counts = counts[:, kept].tocsr()
        counts.sort_indices()  # the order transform() sums in: the training rows equal the scoring rows bit for bit
        return self._weigh(counts)

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Counts to L2-normalised TF-IDF rows, in place of ``counts``' data.

        With ``header_weight`` set, a row's structure tokens and its words are normalised as two
        blocks, holding ``header_weight`` and the rest of the row's squared norm (a row with one
        block gives it all). With one norm over the whole row, a long body drowns the header
        tokens; measured on the SpamAssassin corpus, two blocks cut the 5-fold error rate by a
        sixth (benchmarks/README.md, "Accuracy results").
        """
        data = counts.data.astype(np.float32, copy=False)
        if self.sublinear_tf:
            data = np.log(data) + 1.0
        data *= self.idf_[counts.indices]
        if self.header_weight is not None:
            return self._weigh_blocks(counts, data)
        lengths = np.diff(counts.indptr)
        # reduceat needs every start inside the array: a trailing zero serves the empty rows at the end
        # (without it an empty last text raised IndexError) and adds nothing to the last row's sum.
        norms = np.sqrt(np.add.reduceat(np.append(data * data, np.float32(0)), counts.indptr[:-1])) if data.size else None
        if data.size:
            # reduceat repeats a value for empty rows; those rows have no entries to scale
            data /= np.repeat(np.where(lengths > 0, norms, 1.0), lengths).astype(np.float32)
        out = sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape, dtype=np.float32)
        out.has_sorted_indices = True
        return out

    def _weigh_blocks(self, counts: sp.csr_matrix, data: np.ndarray) -> sp.csr_matrix:
        """``_weigh`` with ``header_weight``: structure tokens and words normalised apart."""
        structure = self._structure[counts.indices]
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        squares = data.astype(np.float64) ** 2
        head = np.bincount(rows[structure], weights=squares[structure], minlength=counts.shape[0])
        body = np.bincount(rows[~structure], weights=squares[~structure], minlength=counts.shape[0])
        both = (head > 0) & (body > 0)
        share = np.where(structure, np.where(both[rows], self.header_weight, 1.0), np.where(both[rows], 1.0 - self.header_weight, 1.0))
        norm = np.sqrt(np.where(structure, head[rows], body[rows]))
        data = (data * (np.sqrt(share) / np.where(norm > 0, norm, 1.0))).astype(np.float32)
        out = sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape, dtype=np.float32)
        out.has_sorted_indices = True
        return out

    def _set_vocabulary(self, vocabulary: list[str]) -> None:
        """The fitted or loaded vocabulary, its term index, and which of its columns are structure tokens."""
        self.vocabulary_ = vocabulary
        self._index = dict(zip(vocabulary, count()))
        self._structure = np.fromiter((bool(STRUCTURE_TOKEN.match(t)) for t in vocabulary), dtype=bool, count=len(vocabulary))

    def grow(self, terms: Sequence[str], idf: np.ndarray) -> None:
        """Append ``terms`` (not in the vocabulary yet) as new columns with their IDF weights: online
        learning's new features (:mod:`spamclf.model.online`)."""
        self._check_fitted()
        if not len(terms):
            return
        start = len(self.vocabulary_)
        self.vocabulary_ = [*self.vocabulary_, *terms]
        self._index.update(zip(terms, count(start)))
        self.idf_ = np.concatenate([self.idf_, np.asarray(idf, dtype=np.float32)])
        new = np.fromiter((bool(STRUCTURE_TOKEN.match(t)) for t in terms), dtype=bool, count=len(terms))
        self._structure = np.concatenate([self._structure, new])

    def replace(self, columns: np.ndarray, terms: Sequence[str], idf: np.ndarray) -> None:
        """Put ``terms`` (not in the vocabulary) in place of the terms of ``columns``, with their IDF weights."""
        for col, term in zip(columns, terms):
            del self._index[self.vocabulary_[col]]
            self.vocabulary_[col] = term
            self._index[term] = int(col)
        self.idf_ = self.idf_.copy()  # a loaded bundle's IDF is a read-only view of its bytes
        self.idf_[columns] = idf
        self._structure[columns] = [bool(STRUCTURE_TOKEN.match(t)) for t in terms]

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
        # unknown terms are dropped, so the scoring tokeniser may find more of them than analyze does
        analyzer = partial(lookup_terms, lowercase=self.lowercase) if self.ngram_max <= 1 else self._analyzer()
        counts = _count_rows(texts, analyzer, self._index)
        return self._weigh(sp.csr_matrix((counts.data, counts.indices, counts.indptr), shape=(counts.shape[0], len(self.vocabulary_))))

    # --- persistence: JSON and NPZ, never pickle -------------------------------------------------

    @classmethod
    def fitted(cls, settings: dict, vocabulary: Sequence[str], idf: np.ndarray) -> "TfidfFeatures":
        """A fitted instance from its parts, as a bundle holds them: the settings, the terms in column order, their IDF weights."""
        features = cls(**settings)
        features._set_vocabulary(list(vocabulary))
        features.idf_ = np.asarray(idf, dtype=np.float32)
        if features.idf_.shape != (len(features.vocabulary_),):
            raise ValueError(f"vocabulary has {len(features.vocabulary_)} terms but IDF has shape {features.idf_.shape}")
        return features


# Tasks for the extraction workers (spamclf.workers): a batch of messages in, TF-IDF rows out.


def featurize(messages: list[str | bytes], options, features) -> sp.csr_matrix:
    """TF-IDF rows for raw messages (bytes, extracted here) and already extracted texts (str)."""
    from ..mail.extract import extract_texts

    return features.transform(extract_texts(messages, options, tidy=False))  # the texts are only tokenised


def featurize_parts(messages: list[str | bytes], options, features) -> tuple:
    # A worker sends back the arrays of the sparse rows, not the matrix object.
    x = featurize(messages, options, features)
    return x.data, x.indices, x.indptr, x.shape


def rows_from_parts(parts: tuple) -> sp.csr_matrix:
    """The CSR rows that ``featurize_parts`` sent back as arrays."""
    data, indices, indptr, shape = parts
    return sp.csr_matrix((data, indices, indptr), shape=shape)

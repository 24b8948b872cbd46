"""TF-IDF features: our NumPy fit and transform learn and produce what scikit-learn's vectorizer does."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import scipy.sparse as sp

from spamclf.mail.labelled import load_labelled
from spamclf.mail.extract import ExtractOptions
from spamclf.model.features import TfidfFeatures, analyze, lookup_terms


@pytest.fixture(scope="module")
def texts(sample) -> list[str]:
    return load_labelled([str(sample)], ExtractOptions(), progress=False).texts


# scikit-learn normalises each row as one block: header_weight None (the default is 0.5, two blocks).
SETTINGS = [
    {"max_features": 2000, "header_weight": None},  # the vocabulary cut by max_features, with ties in frequency
    {"max_features": None, "min_df": 1, "sublinear_tf": False, "header_weight": None},  # the article's plain TF-IDF
    {"max_features": 3000, "ngram_max": 2, "min_df": 2, "max_df": 0.5, "header_weight": None},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_fit_learns_what_sklearn_learns(texts, settings):
    ours = TfidfFeatures(**settings)
    x = ours.fit_transform(texts)
    ref = ours.sklearn_vectorizer()
    x_ref = ref.fit_transform(texts)
    assert ours.vocabulary_ == sorted(ref.vocabulary_, key=ref.vocabulary_.get)
    np.testing.assert_allclose(ours.idf_, ref.idf_, rtol=1e-6)
    assert sp.isspmatrix_csr(x) and x.dtype == np.float32
    assert abs(x - x_ref).max() < 1e-6
    # transform of new texts agrees too, and fit_transform equals transform of the same texts
    assert abs(ours.transform(texts[:50]) - ref.transform(texts[:50])).max() < 1e-6
    assert abs(ours.transform(texts) - x).max() == 0


def test_rows_are_l2_normalised_and_unknown_terms_ignored(texts):
    f = TfidfFeatures(max_features=500)
    x = f.fit_transform(texts)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
    empty = f.transform(["", "zzqqxx wwvvyy qqzzkk"])
    assert empty.shape == (2, 500) and empty.nnz == 0


def test_max_features_keeps_the_most_frequent_terms(texts):
    small = TfidfFeatures(max_features=100).fit(texts)
    full = TfidfFeatures(max_features=None).fit(texts)
    totals = dict.fromkeys(full.vocabulary_, 0)
    for text in texts:
        for token in analyze(text):
            if token in totals:
                totals[token] += 1
    cut = sorted(totals.values(), reverse=True)[99]
    assert len(small.vocabulary_) == 100
    assert all(totals[t] >= cut for t in small.vocabulary_)


def test_no_surviving_term_is_a_data_error():
    from spamclf.errors import DataError

    with pytest.raises(DataError, match="min_df"):
        TfidfFeatures(min_df=2).fit(["alpha beta", "gamma delta"])


def test_rebuilt_from_its_parts_it_transforms_the_same(texts):
    f = TfidfFeatures(max_features=1000, ngram_max=2).fit(texts)
    g = TfidfFeatures.fitted(f.settings(), f.vocabulary_, f.idf_)
    assert g.settings() == f.settings() and g.vocabulary_ == f.vocabulary_
    assert abs(g.transform(texts[:20]) - f.transform(texts[:20])).max() == 0


def test_cjk_runs_become_character_pairs():
    assert analyze("打造MBA 四大素质 hello") == ["打造", "mba", "四大", "大素", "素质", "hello"]
    assert analyze("Plain ASCII words only, a b") == ["plain", "ascii", "words", "only"]


def test_chinese_spam_gets_real_features(sample):
    # a Chinese message of the sample: without pairs its body would be a handful of sentence-long "words"
    texts = [p.read_bytes().decode("utf-8", "replace") for p in sorted((sample / "spam").iterdir())]
    chinese = [t for t in texts if len(re.findall(r"[\u4e00-\u9fff]", t)) > 50]
    tokens = analyze(chinese[0]) if chinese else analyze("四大素质培养" * 20)
    assert sum(len(t) == 2 and "\u4e00" <= t[0] <= "\u9fff" for t in tokens) > 20


@pytest.mark.parametrize("settings", SETTINGS[::2], ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_fitting_on_batch_counts_equals_fitting_on_the_texts(texts, settings):
    # Training counts terms batch by batch in the extraction workers; merging must change nothing.
    whole = TfidfFeatures(**settings)
    x = whole.fit_transform(texts)
    merged = TfidfFeatures(**settings)
    parts = [merged.count_terms(texts[i : i + 37]) for i in range(0, len(texts), 37)]
    assert len({tuple(p.terms) for p in parts}) == len(parts)  # each batch has its own term order
    x_merged = merged.fit_counted(parts)
    assert merged.vocabulary_ == whole.vocabulary_
    assert np.array_equal(merged.idf_, whole.idf_)
    assert (x_merged != x).nnz == 0 and np.array_equal(x_merged.indices, x.indices)
    with pytest.raises(ValueError, match="other feature settings"):
        TfidfFeatures(max_features=10).fit_counted(parts)


def test_structure_tokens_are_exactly_the_first_line_extract_writes(texts):
    # header_weight splits each row by this pattern: it must know every structure token and no word
    from spamclf.model.features import STRUCTURE_TOKEN

    heads = [t.partition("\n")[0] for t in texts if "\n" in t]
    bodies = [t.partition("\n")[2] for t in texts if "\n" in t]
    assert len(heads) == len(texts)
    head_tokens = {tok for h in heads for tok in analyze(h)}
    body_tokens = {tok for b in bodies for tok in analyze(b)}
    assert all(STRUCTURE_TOKEN.match(t) for t in head_tokens)
    assert not [t for t in body_tokens if STRUCTURE_TOKEN.match(t)]


def test_header_weight_normalises_structure_and_words_as_two_blocks(texts):
    features = TfidfFeatures(max_features=3000, header_weight=0.3)
    x = features.fit_transform(texts)
    structure = features._structure
    assert 0 < structure.sum() < len(structure)
    head = np.asarray(x[:, structure].multiply(x[:, structure]).sum(axis=1)).ravel()
    body = np.asarray(x[:, ~structure].multiply(x[:, ~structure]).sum(axis=1)).ravel()
    both = (head > 0) & (body > 0)
    assert both.sum() > 0.9 * len(texts)
    np.testing.assert_allclose(head[both], 0.3, rtol=1e-5)
    np.testing.assert_allclose(body[both], 0.7, rtol=1e-5)
    np.testing.assert_allclose((head + body)[~both & ((head + body) > 0)], 1.0, rtol=1e-5)
    # the same words in one block each, whatever the message length: the weight moves between blocks only
    plain = TfidfFeatures(max_features=3000).fit_transform(texts)
    assert (x != 0).sum() == (plain != 0).sum()
    assert abs(features.transform(texts[:40]) - x[:40]).max() == 0
    # fitted again on other texts, to a vocabulary of the same size: the blocks follow the new vocabulary
    from spamclf.model.features import STRUCTURE_TOKEN

    features.fit([t.partition("\n")[2] + " hfrom_" + t[:5].lower() for t in texts])
    assert len(features.vocabulary_) == 3000
    assert list(features._structure) == [bool(STRUCTURE_TOKEN.match(t)) for t in features.vocabulary_]


def test_header_weight_survives_a_bundle(texts, tmp_path):
    features = TfidfFeatures(max_features=500, header_weight=0.5)
    features.fit(texts)
    loaded = TfidfFeatures.fitted(features.settings(), features.vocabulary_, features.idf_)
    assert loaded.header_weight == 0.5
    assert abs(loaded.transform(texts[:20]) - features.transform(texts[:20])).max() == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_ascii_fast_path_finds_the_words_of_the_unicode_pattern(text):
    from spamclf.model.features import TOKEN_PATTERN

    assert analyze(text) == [t for t in TOKEN_PATTERN.findall(text.lower()) if len(t) <= 80]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ_9 .\t\x00-é\u00a0K\u212a"), max_size=200), st.booleans())
def test_scoring_tokens_are_the_analyzer_tokens_plus_ones_no_vocabulary_holds(text, lowercase):
    found = lookup_terms(text, lowercase=lowercase)
    assert [t for t in found if 2 <= len(t) <= 80] == analyze(text, lowercase=lowercase)


def _whole_text_tokens(text: str) -> list[str]:
    """``analyze``'s tokens as one pattern over the whole lower-cased text finds them (its former code)."""
    from spamclf.model.features import CJK, TOKEN_PATTERN, _cjk_bigrams

    text = text.lower()
    tokens = TOKEN_PATTERN.findall(text)
    if CJK.search(text):
        tokens = [piece for t in tokens for piece in (_cjk_bigrams(t) if CJK.search(t) else (t,))]
    return [t for t in tokens if len(t) <= 80]


# Mostly ASCII words and spaces, as mail is, with a few characters that are not ASCII: word characters
# (é, the Kelvin sign that lower-cases to ASCII k, CJK), non-word ones (a no-break space, a curly quote).
_MIXED = st.lists(
    st.one_of(st.sampled_from(["word", "Ab", "x", "  ", " ", "\n", "-", "k" * 85]), st.sampled_from(["é", "\u00a0", "\u2019", "\u212a", "日本語", "ё"])),
    max_size=400,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(_MIXED, st.sampled_from([1, 2]))
def test_text_not_all_ascii_is_tokenised_piece_by_piece_as_a_whole(text, ngram_max):
    # long enough for many of the pieces _words_by_piece cuts the text into, each ASCII or not
    tokens = _whole_text_tokens(text)
    if ngram_max == 2:
        tokens = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]
    assert analyze(text, ngram_max=ngram_max) == tokens
    assert [t for t in lookup_terms(text) if (len(t) >= 2 or not t.isascii()) and len(t) <= 80] == _whole_text_tokens(text)


def test_transform_scores_with_the_lookup_tokens_exactly_as_with_the_analyzer(texts):
    from spamclf.model.features import _count_rows

    features = TfidfFeatures(max_features=3000).fit(texts)
    odd = ["a " * 5 + "b" * 81 + " Free FREE", "x\x00yy\tzz", ""]
    by_analyzer = features._weigh(_count_rows(texts + odd, features._analyzer(), features._index))
    assert abs(features.transform(texts + odd) - by_analyzer).max() == 0


@pytest.mark.parametrize("header_weight", [None, 0.5])
def test_texts_without_known_words_get_empty_rows_anywhere_in_a_batch(texts, header_weight):
    # an empty text last in a batch used to raise IndexError when header_weight was None (the seed config)
    features = TfidfFeatures(max_features=500, header_weight=header_weight).fit(texts)
    x = features.transform(["", texts[0], "zzqx", ""])
    assert x.shape == (4, 500) and list(np.diff(x.indptr) > 0) == [False, True, False, False]
    assert abs(x[1] - features.transform(texts[:1])).max() == 0

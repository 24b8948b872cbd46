"""Why a message scored as it did: the tokens that pushed it most towards spam and towards ham.

Each token present in a message is taken out in turn (its TF-IDF entry set to zero) and the
change in the network's output logit is its contribution: positive pushes towards spam,
negative towards ham. Logits, not probabilities, because a probability near 0 or 1 barely
moves when one token goes, while its logit still shows how much that token mattered.
All k variants of a message are scored in one sparse batch.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .scorer import logits, one_blas_thread


def explain_row(row: sp.csr_matrix, layers, vocabulary: list[str], n: int) -> dict[str, list[list]]:
    """The ``n`` strongest spam and ham tokens of one TF-IDF row, as ``[token, contribution]`` pairs."""
    cols = row.indices
    k = len(cols)
    if k == 0 or n <= 0:
        return {"spam": [], "ham": []}
    base = logits(row, layers)[0]
    # k copies of the row, copy i without its i-th entry
    data = np.tile(row.data, k)
    data[np.arange(k) * k + np.arange(k)] = 0.0
    variants = sp.csr_matrix((data, np.tile(cols, k), np.arange(k + 1) * k), shape=(k, row.shape[1]))
    contribution = base - logits(variants, layers)
    order = np.argsort(-contribution, kind="mergesort")
    spam = [[vocabulary[cols[i]], round(float(contribution[i]), 4)] for i in order[:n] if contribution[i] > 0]
    ham = [[vocabulary[cols[i]], round(float(contribution[i]), 4)] for i in order[::-1][:n] if contribution[i] < 0]
    return {"spam": spam, "ham": ham}


def explain_rows(x: sp.csr_matrix, layers, vocabulary: list[str], n: int) -> list[dict[str, list[list]]]:
    with one_blas_thread():  # as in scoring: see scorer.one_blas_thread
        return [explain_row(x[i], layers, vocabulary, n) for i in range(x.shape[0])]

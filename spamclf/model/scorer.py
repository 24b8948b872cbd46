"""The network's forward pass in NumPy/SciPy: classify without importing TensorFlow.

The saved weights are those of the Keras model (Dense layers, ReLU hidden,
sigmoid output); a test keeps this pass within 1e-5 of ``keras.Model.predict``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


_blas = None  # the BLAS libraries loaded in this process (threadpoolctl), found on first use


def one_blas_thread():
    """A context in which NumPy's and SciPy's BLAS run one thread, as the ``spamclf`` program sets them
    for the whole process (``OPENBLAS_NUM_THREADS``): for the Python API, whose caller loaded NumPy
    before spamclf could say so.

    Scoring multiplies batches of 256 rows by small dense layers, where BLAS threads do not pay: after
    each product they spin, on the cores the extraction workers need. Outside the block the caller's
    setting stands.
    """
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    return _blas.limit(limits=1)


def logits(x: sp.csr_matrix, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The output layer's pre-sigmoid values (float64) for the rows of ``x``: ReLU on every hidden layer."""
    # Only the first layer sees sparse input. By columns (CSC) each kernel row a batch uses is read once,
    # not once per message using it: a quarter faster on 256-message batches, and the same sums in the
    # same order (each output adds its terms by ascending column either way, for rows with sorted
    # columns, as transform makes them; all 6,046 corpus scores came out identical).
    h = x.tocsc() if sp.issparse(x) else x
    for i, (kernel, bias) in enumerate(layers):
        h = h @ kernel
        h = np.asarray(h, dtype=np.float32) + bias
        if i < len(layers) - 1:
            np.maximum(h, 0.0, out=h)
    return h[:, 0].astype(np.float64)


def forward(x: sp.csr_matrix, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Spam probabilities for the rows of ``x``; NaN for a row whose logit is not finite.

    A logit that is NaN or infinite comes from a broken network (NaN weights, or weights so large that
    the sums overflow), not from a message: it is no probability, and every caller refuses NaN
    (``prediction._label``, ``metrics``). The overflow is reported that way, not as NumPy warnings.
    """
    with one_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
        z = logits(x, layers)
        p = np.exp(-np.logaddexp(0.0, -z))  # a sigmoid that never overflows
    p[~np.isfinite(z)] = np.nan
    return p.astype(np.float32)

"""The NumPy forward pass: what classifying uses instead of TensorFlow."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from spamclf.model.bundle import load_bundle
from spamclf.model.scorer import forward


def test_forward_is_relu_relu_sigmoid_on_sparse_rows():
    rng = np.random.default_rng(0)
    layers = [
        (rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)),
        (rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)),
        (rng.normal(size=(3, 1)).astype(np.float32), rng.normal(size=1).astype(np.float32)),
    ]
    x = sp.random(5, 6, density=0.4, format="csr", dtype=np.float32, random_state=1)
    h = x.toarray()  # a 5x6 toy: densifying here is the reference, not the code under test
    for i, (k, b) in enumerate(layers):
        h = h @ k + b
        if i < 2:
            h = np.maximum(h, 0)
    expected = 1 / (1 + np.exp(-h[:, 0]))
    np.testing.assert_allclose(forward(x, layers), expected, rtol=1e-5)


def test_sigmoid_never_overflows_and_empty_rows_score_the_bias():
    layers = [(np.zeros((3, 1), np.float32), np.array([-1000.0], np.float32))]
    assert forward(sp.csr_matrix((2, 3), dtype=np.float32), layers).tolist() == [0.0, 0.0]
    layers = [(np.zeros((3, 1), np.float32), np.array([1000.0], np.float32))]
    assert forward(sp.csr_matrix((1, 3), dtype=np.float32), layers).tolist() == [1.0]


def test_bundle_weights_score_real_messages(smoke_models, sample):
    bundle = load_bundle(smoke_models)
    from spamclf.mail.labelled import load_labelled
    from spamclf.mail.extract import ExtractOptions

    data = load_labelled([str(sample)], ExtractOptions.from_config(bundle.config), progress=False)
    scores = forward(bundle.features.transform(data.texts), bundle.layers)
    assert scores.dtype == np.float32 and scores.shape == (300,)
    assert np.mean((scores >= bundle.threshold) == (data.y == 1)) > 0.9

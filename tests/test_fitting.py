"""Training through Keras' own Model.fit: the fused Adam, the callbacks, the stop on a diverged loss."""

from __future__ import annotations

import numpy as np
import pytest

from spamclf.network import import_keras

keras, _ = import_keras()


def test_fused_adam_updates_as_keras_adam():
    from spamclf.fitting import FusedAdam

    rng = np.random.default_rng(0)
    start = [rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32)]
    grads = [[rng.normal(size=w.shape).astype(np.float32) for w in start] for _ in range(6)]
    results = []
    for optimizer in (keras.optimizers.Adam(learning_rate=0.01), FusedAdam(learning_rate=0.01)):
        variables = [keras.Variable(w) for w in start]
        for step in grads:
            optimizer.apply(step, variables)
        results.append(([v.numpy() for v in variables], [v.numpy() for v in optimizer.variables], int(optimizer.iterations.numpy())))
    (keras_weights, keras_slots, keras_steps), (fused_weights, fused_slots, fused_steps) = results
    assert keras_steps == fused_steps == 6
    assert not np.allclose(fused_weights[0], start[0], atol=0.05)  # the steps moved the weights
    for theirs, ours in zip(keras_weights + keras_slots, fused_weights + fused_slots):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    again = FusedAdam.from_config(FusedAdam(learning_rate=0.01).get_config())
    assert isinstance(again, FusedAdam) and float(again.learning_rate.numpy()) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="AMSGrad"):
        FusedAdam(amsgrad=True)

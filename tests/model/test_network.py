"""The network and its training loop: plain Keras Dense layers, reproducible, and the NumPy scorer agrees with Keras."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import sample_split
from spamclf.config import MAX_WEIGHTS, load_config
from spamclf.mail.labelled import load_labelled
from spamclf.mail.extract import ExtractOptions
from spamclf.errors import ConfigError, TrainingError
from spamclf.model.network import build_model, dense_weights, fit, keras_predict, load_model
from spamclf.model.scorer import forward


@pytest.fixture(scope="module")
def split():
    return sample_split(epochs=4)


@pytest.fixture(scope="module")
def trained(split):
    cfg, x_fit, y_fit, x_val, y_val = split
    return fit(x_fit, y_fit, x_val, y_val, cfg, progress=False)


def test_model_is_the_articles_dense_stack(trained, split):
    keras = pytest.importorskip("keras")
    model, history = trained
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [*split[0]["model"]["units"], 1]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "sigmoid"]
    assert all(type(layer) in (keras.layers.Dense, keras.layers.Dropout) for layer in model.layers)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == 4
    # it learned: the training loss fell and the held-out messages are mostly right
    assert history["loss"][-1] < history["loss"][0] and history["val_accuracy"][-1] > 0.9


def test_numpy_scorer_agrees_with_keras_predict(trained, split):
    model, _ = trained
    x_val = split[3]
    ours = forward(x_val, dense_weights(model))
    theirs = keras_predict(model, x_val)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ours.min() < 0.1 and ours.max() > 0.9  # real scores, not a constant


def test_saved_model_loads_safely_and_scores_the_same(trained, split, tmp_path):
    model, _ = trained
    model.save(tmp_path / "model.keras")
    again = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(forward(split[3], dense_weights(again)), forward(split[3], dense_weights(model)), atol=0)


def test_same_seed_same_model_other_seed_other_model(trained, split):
    cfg, x_fit, y_fit, x_val, y_val = split
    model, history = trained
    again, history_again = fit(x_fit, y_fit, x_val, y_val, cfg, progress=False)
    assert history_again == history
    for (k1, b1), (k2, b2) in zip(dense_weights(model), dense_weights(again)):
        assert np.array_equal(k1, k2) and np.array_equal(b1, b2)
    other = {**cfg, "train": {**cfg["train"], "seed": 7}}
    _, history_other = fit(x_fit, y_fit, x_val, y_val, other, progress=False)
    assert history_other["loss"] != history["loss"]


def test_early_stopping_keeps_the_best_epoch(split):
    cfg, x_fit, y_fit, x_val, y_val = split
    # a high learning rate overfits this small sample within a few epochs
    cfg = {**cfg, "train": {**cfg["train"], "epochs": 12, "early_stopping": True, "patience": 2, "learning_rate": 0.05}}
    model, history = fit(x_fit, y_fit, x_val, y_val, cfg, progress=False)
    best = int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) == best + 1 + 2  # stopped after `patience` epochs without improvement
    assert history["val_loss"][-1] > history["val_loss"][best] * 1.01  # so the restore below is seen
    z = np.clip(forward(x_val, dense_weights(model)).astype(np.float64), 1e-7, 1 - 1e-7)
    restored_loss = -np.mean(y_val * np.log(z) + (1 - y_val) * np.log(1 - z))
    assert restored_loss == pytest.approx(history["val_loss"][best], rel=1e-3, abs=1e-4)


def test_dropout_l2_and_class_weights_change_training(split, trained):
    cfg, x_fit, y_fit, x_val, y_val = split
    base = trained[1]["loss"]
    for key, value in (("dropout", 0.3), ("l2", 1e-4)):
        changed = {**cfg, "model": {**cfg["model"], key: value}}
        assert fit(x_fit, y_fit, x_val, y_val, changed, progress=False)[1]["loss"] != base
    balanced = {**cfg, "train": {**cfg["train"], "class_weight": "balanced"}}
    assert fit(x_fit, y_fit, x_val, y_val, balanced, progress=False)[1]["loss"] != base


def test_small_data_gets_smaller_batches_but_large_data_keeps_the_configured_size():
    from spamclf.config import defaults
    from spamclf.model.network import batch_size_for

    tr = defaults()["train"]
    assert batch_size_for(240, tr) == 24  # 10 steps per epoch on a few hundred messages
    assert batch_size_for(3870, tr) == tr["batch_size"]  # the full corpus trains as measured
    assert batch_size_for(3, tr) == 1
    assert batch_size_for(10_000, {**tr, "batch_size": 32, "min_steps_per_epoch": 1}) == 32


def test_training_step_reads_rows_whose_columns_are_not_sorted(split):
    # A CSR matrix may hold a row's columns in any order; the CSR kernels in training need them sorted.
    from spamclf.model.network import _rows

    x = split[1][:5].tocsr()
    shuffled = x.copy()
    for r in range(shuffled.shape[0]):
        a, b = shuffled.indptr[r], shuffled.indptr[r + 1]
        shuffled.indices[a:b], shuffled.data[a:b] = shuffled.indices[a:b][::-1].copy(), shuffled.data[a:b][::-1].copy()
    shuffled.has_sorted_indices = False
    assert (shuffled != x).nnz == 0 and not np.array_equal(shuffled.indices, x.indices)
    (i1, v1), (i2, v2) = _rows(x, np.arange(5)), _rows(shuffled, np.arange(5))
    assert np.array_equal(i1, i2) and np.array_equal(v1, v2)


def _diverging(cfg: dict) -> dict:
    # Past what the config allows (train.learning_rate is at most 1): the first Adam step makes the weights ~1e30
    return {**cfg, "train": {**cfg["train"], "learning_rate": 1e30, "early_stopping": True}}


def test_a_diverging_run_stops_at_the_first_epoch_whose_loss_is_not_finite(split):
    cfg, x_fit, y_fit, x_val, y_val = split
    with pytest.raises(TrainingError) as caught:
        fit(x_fit, y_fit, x_val, y_val, _diverging(cfg), progress=False)
    assert str(caught.value).startswith("training diverged: the loss became nan at batch ")


def test_a_diverging_run_writes_no_bundle_and_leaves_the_old_one_untouched(sample, smoke_models, smoke_config, tmp_path):
    import shutil

    from spamclf.commands.train import train_dataset

    models = tmp_path / "models"
    shutil.copytree(smoke_models, models)
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    cfg = load_config(smoke_config)
    data = load_labelled([str(sample)], ExtractOptions.from_config(cfg), progress=False)
    with pytest.raises(TrainingError, match="training diverged: the loss became nan at batch .* of epoch 1"):
        train_dataset(data, models, _diverging(cfg), force=True, progress=False)
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no half-written bundle beside it


def test_a_network_over_the_weight_cap_is_refused_before_anything_is_allocated():
    # with features.max_features null the vocabulary's size is known only when the model is built
    with pytest.raises(ConfigError, match=rf"the vocabulary's size \(5000000\) and model.units \(\[512, 256\]\) make a network of \d+ weights; at most {MAX_WEIGHTS}"):
        build_model(5_000_000, [512, 256])


def test_weights_that_are_not_finite_stop_training_even_when_the_loss_looks_finite(split):
    from spamclf.model.fitting import StopOnNonFiniteLoss
    from spamclf.model.network import import_keras

    _, tf = import_keras()
    model = build_model(50, [8])
    stop = StopOnNonFiniteLoss()
    stop.set_model(model)
    stop.on_train_begin()
    stop.on_epoch_begin(0)
    stop.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.4})
    stop.on_train_end()  # finite weights and losses: training goes on
    model.layers[0].bias.assign(tf.fill(model.layers[0].bias.shape, float("inf")))
    stop.on_epoch_begin(1)
    stop.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.4})
    assert model.stop_training
    with pytest.raises(TrainingError, match=r"^training diverged: the weights stopped being finite numbers in epoch 2"):
        stop.on_train_end()

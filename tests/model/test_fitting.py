"""Training through Keras' own Model.fit: the fused Adam, the callbacks, the stop on a diverged loss."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from spamclf.cli import main
from conftest import sample_split
from spamclf.model.network import fit, import_keras

keras, _ = import_keras()


@pytest.fixture(scope="module")
def split():
    return sample_split(epochs=3)


def _train(cfg: dict, **keys) -> dict:
    return {**cfg, "train": {**cfg["train"], **keys}}


def test_fused_adam_updates_as_keras_adam():
    from spamclf.model.fitting import FusedAdam

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


def test_fit_is_keras_fit_with_the_callbacks_a_config_and_a_caller_add(split, tmp_path):
    pytest.importorskip("tensorboard")
    cfg, x_fit, y_fit, x_val, y_val = split
    log, board = tmp_path / "log.csv", tmp_path / "tensorboard"
    cfg = _train(cfg, csv_log=str(log), tensorboard_dir=str(board))
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, self.params["epochs"], self.params["steps"], dict(logs)))

    model, history = fit(x_fit, y_fit, x_val, y_val, cfg, progress=False, callbacks=[Watch()])
    assert [epoch for epoch, *_ in seen] == [0, 1, 2] and {(e, s) for _, e, s, _ in seen} == {(3, 10)}  # 240 rows, 10 steps
    for key, values in history.items():
        assert values == [logs[key] for *_, logs in seen]
    with log.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key, values in history.items():
        assert [float(r[key]) for r in rows] == pytest.approx(values, rel=1e-6)
    assert list((board / "train").glob("events.out.tfevents.*")) and list((board / "validation").glob("events.out.tfevents.*"))
    assert all(type(layer) in (keras.layers.Dense, keras.layers.Dropout) for layer in model.layers)  # what is saved


def test_endless_batches_are_what_a_single_pass_gives_again_and_again():
    from spamclf.model import fitting

    x = sp.random(11, 30, density=0.3, format="csr", dtype=np.float32, random_state=1)
    y = (np.arange(11) % 2).astype(np.float32)
    once = fitting.batches(x, y, 4, np.random.default_rng(3))
    again = [batch for _ in range(3) for batch in once]  # Keras' way without steps_per_epoch: a new iterator an epoch
    endless = fitting.batches(x, y, 4, np.random.default_rng(3), endless=True)
    assert endless.cardinality() == fitting.tf.data.INFINITE_CARDINALITY
    passes = list(endless.take(3 * fitting.steps_per_pass(11, 4)))
    assert len(passes) == len(again) == 3 * fitting.steps_per_pass(11, 4)
    for (got, labels), (want, want_labels) in zip(passes, again):
        for a, b in zip([*got, labels], [*want, want_labels]):
            assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(passes[0][1].numpy(), passes[3][1].numpy())  # a new order each pass


def test_training_reads_one_iterator_for_every_epoch(split, monkeypatch):
    # Keras made a new iterator of the training batches each epoch, restarting their generator:
    # the cost of a few steps, every epoch.
    from spamclf.model import fitting

    cfg, x_fit, y_fit, x_val, y_val = split
    made, started, original, iterate = [], [], fitting.batches, fitting.tf.data.Dataset.__iter__
    monkeypatch.setattr(fitting, "batches", lambda *a, **k: made.append(original(*a, **k)) or made[-1])
    monkeypatch.setattr(fitting.tf.data.Dataset, "__iter__", lambda self: started.append(self) or iterate(self))
    fit(x_fit, y_fit, x_val, y_val, cfg, progress=False)
    training = made[0]
    assert sum(dataset is training for dataset in started) == 1 and cfg["train"]["epochs"] == 3


def test_tensorboard_logs_without_tensorboard_installed_are_a_one_line_error(split, tmp_path, sample, smoke_config):
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("TensorBoard is installed")
    result = CliRunner().invoke(main, ["train", "--data", str(sample), "--models", str(tmp_path / "m"), "--config", str(smoke_config), "-q", "--set", f"train.tensorboard_dir={tmp_path / 'tb'}"])
    assert result.exit_code == 1 and result.stderr == "Error: train.tensorboard_dir needs TensorBoard: pip install tensorboard (or spamclf[tensorboard])\n"
    assert not (tmp_path / "m").exists()


def test_training_switches_no_tensorflow_setting_for_the_whole_process_or_after_it(split):
    import tensorflow as tf
    from tensorflow.python.framework.config import disable_op_determinism, is_op_determinism_enabled

    cfg, x_fit, y_fit, x_val, y_val = split
    short = _train(cfg, epochs=1)
    options = tf.config.optimizer.get_experimental_options()
    during = []

    class Look(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            during.append((tf.config.optimizer.get_experimental_options(), is_op_determinism_enabled()))

    assert not is_op_determinism_enabled()
    fit(x_fit, y_fit, x_val, y_val, short, progress=False, callbacks=[Look()])
    assert during and all(seen == (options, True) for seen in during)  # deterministic ops while training
    assert tf.config.optimizer.get_experimental_options() == options and not is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        fit(x_fit, y_fit, x_val, y_val, short, progress=False)
        assert is_op_determinism_enabled()  # the caller's choice stands
    finally:
        disable_op_determinism()


def test_a_loss_that_becomes_nan_stops_training_with_a_typed_error(split, tmp_path):
    from spamclf.errors import TrainingError

    cfg, x_fit, y_fit, x_val, y_val = split
    log = tmp_path / "log.csv"
    wild = _train(cfg, learning_rate=1e30, csv_log=str(log), early_stopping=True)
    with pytest.raises(TrainingError, match=r"^training diverged: the loss became nan at batch \d+ of epoch 1; try a lower train.learning_rate$"):
        fit(x_fit, y_fit, x_val, y_val, wild, progress=False)
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 1 and rows[0]["loss"] == "nan"  # the epoch it stopped in, logged before the error


def test_cli_train_that_diverges_is_one_line_and_writes_no_models(tmp_path, sample, smoke_config):
    # The learning rate of 1e30 is out of train.learning_rate's range: refused before training.
    # A run that diverges within the range stops in fit (above) with TrainingError: one line, exit 1.
    out = tmp_path / "models"
    result = CliRunner().invoke(main, ["train", "--data", str(sample), "--models", str(out), "--config", str(smoke_config), "-q", "--set", "train.learning_rate=1e30"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: config key 'train.learning_rate'") and result.stderr.count("\n") == 1
    assert not out.exists()


def test_cli_train_shows_each_epoch_on_stderr_and_keeps_stdout_for_the_summary(tmp_path, sample, smoke_config):
    result = CliRunner().invoke(main, ["train", "--data", str(sample), "--models", str(tmp_path / "m"), "--config", str(smoke_config), "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs_run"] == 2
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ") and ": " in line]
    assert len(lines) == 2
    for epoch, line in enumerate(lines):
        shown = ", ".join(f"{key} {history[key][epoch]:.4f}" for key in sorted(history))
        assert line == f"epoch {epoch + 1}/2: {shown}"


def test_batches_of_no_rows_go_through_a_step(root):
    # A Ray replica whose rows ran out steps on empty batches; TensorFlow's CSR kernels killed the
    # process (SIGFPE) on a matrix of no rows, hence a fresh interpreter.
    code = """
import json, numpy as np, scipy.sparse as sp
from spamclf.model import fitting
from spamclf.model import network
from spamclf.config import load_config
x = sp.random(10, 50, density=0.2, format="csr", dtype=np.float32, random_state=0)
y = (np.arange(10) % 2).astype(np.float32)
training = fitting.training_model(network.build_model(50, [8, 4]), load_config("configs/smoke.yaml"), (1.0, 1.0), 0)
rows = fitting.batches(x, y, 4, np.random.default_rng(0), steps=5)  # 3 batches of rows, 2 of none
none = fitting.batches(x[:0], y[:0], 4096, steps=1)
result = training.fit(rows, validation_data=none, epochs=2, verbose=0, shuffle=False)
print(json.dumps(fitting.history_of(result)))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(round(a * 10, 9).is_integer() for a in history["accuracy"])  # the 10 rows, nothing else
    assert history["val_loss"] == history["val_accuracy"] == [0.0, 0.0]

"""The Keras network: the one place its shape is defined, and how it is trained.

``Dense(512, relu) -> Dense(256, relu) -> Dense(1, sigmoid)`` on sparse TF-IDF
input, Adam and binary cross-entropy, as in the founding article. Only training
(and the agreement tests) import TensorFlow; classifying uses ``scorer.forward``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import scipy.sparse as sp


def import_keras():
    """Import Keras on the TensorFlow backend with TensorFlow's start-up logging silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # also silences the oneDNN banner
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402

    tf.get_logger().setLevel("ERROR")
    return keras, tf


def build_model(n_features: int, units: list[int], dropout: float = 0.0, l2: float = 0.0, learning_rate: float = 1e-3):
    """The article's network for ``n_features`` sparse inputs, compiled with Adam and binary cross-entropy."""
    keras, _ = import_keras()
    reg = keras.regularizers.L2(l2) if l2 else None
    layers = [keras.Input(shape=(n_features,), sparse=True, name="tfidf")]
    for i, width in enumerate(units):
        layers.append(keras.layers.Dense(width, activation="relu", kernel_regularizer=reg, name=f"hidden_{i + 1}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i + 1}"))
    layers.append(keras.layers.Dense(1, activation="sigmoid", name="spam_probability"))
    model = keras.Sequential(layers, name="spamclf")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _dataset(tf, x: sp.csr_matrix, y: np.ndarray | None, batch_size: int, shuffle_seed: int | None = None):
    coo = x.tocoo()
    order = np.lexsort((coo.col, coo.row))
    indices = np.stack([coo.row[order], coo.col[order]], axis=1).astype(np.int64)
    tensor = tf.SparseTensor(indices, coo.data[order].astype(np.float32), coo.shape)
    ds = tf.data.Dataset.from_tensor_slices((tensor, y.astype(np.float32)) if y is not None else tensor)
    if shuffle_seed is not None:
        ds = ds.shuffle(x.shape[0], seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


def seed_everything(seed: int) -> None:
    """Python, NumPy and Keras seeded, TensorFlow ops deterministic: same inputs, same model."""
    keras, tf = import_keras()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _progress_callback(keras, total_steps: int, epochs: int):
    import click

    class Progress(keras.callbacks.Callback):
        """One progress bar per epoch on stderr; results stay on stdout."""

        def on_epoch_begin(self, epoch, logs=None):
            self.bar = click.progressbar(length=total_steps, label=f"epoch {epoch + 1}/{epochs}", file=sys.stderr)
            self.bar.__enter__()

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.__exit__(None, None, None)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()))
            click.echo(f"epoch {epoch + 1}/{epochs}: {shown}", err=True)

    return Progress()


def fit(
    x_train: sp.csr_matrix,
    y_train: np.ndarray,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    config: dict,
    progress: bool = True,
):
    """Train the network on sparse rows; early stopping on validation loss restores the best epoch.

    Returns ``(model, history)`` where history maps metric names to per-epoch lists.
    """
    keras, tf = import_keras()
    tr, md = config["train"], config["model"]
    seed_everything(tr["seed"])
    model = build_model(x_train.shape[1], md["units"], md["dropout"], md["l2"], tr["learning_rate"])
    callbacks = []
    if tr["early_stopping"]:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=tr["patience"], restore_best_weights=True)
        )
    if progress:
        callbacks.append(_progress_callback(keras, -(-x_train.shape[0] // tr["batch_size"]), tr["epochs"]))
    class_weight = None
    if tr["class_weight"] == "balanced":
        counts = np.bincount(y_train.astype(int), minlength=2)
        class_weight = {i: float(len(y_train) / (2 * max(c, 1))) for i, c in enumerate(counts)}
    history = model.fit(
        _dataset(tf, x_train, y_train, tr["batch_size"], shuffle_seed=tr["seed"]),
        validation_data=_dataset(tf, x_val, y_val, 1024),
        epochs=tr["epochs"],
        callbacks=callbacks,
        class_weight=class_weight,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=0,
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def dense_weights(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) of each Dense layer, input to output: what ``scorer.forward`` needs."""
    keras, _ = import_keras()
    return [
        (np.asarray(layer.kernel.numpy(), np.float32), np.asarray(layer.bias.numpy(), np.float32))
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def keras_predict(model, x: sp.csr_matrix) -> np.ndarray:
    """Spam probabilities from Keras itself (the reference ``scorer.forward`` is tested against)."""
    _, tf = import_keras()
    return model.predict(_dataset(tf, x, None, 1024), verbose=0).ravel()


def load_model(path):
    """Load a ``.keras`` file with safe mode on, after checking its archive and config from the bytes.

    Keras' safe mode refuses Lambda layers but still builds any class a config names; the
    check first refuses anything that is not one of our own layers (``keras_safety``).
    Raises ``keras_safety.UnsafeFile`` with the reason.
    """
    from .keras_safety import check_keras_file

    check_keras_file(path)
    keras, _ = import_keras()
    return keras.saving.load_model(path, safe_mode=True, compile=False)

"""The Keras network: the one place its shape is defined, and how it is trained.

``Dense(512, relu) -> Dense(256, relu) -> Dense(1, sigmoid)`` on sparse TF-IDF
input, Adam and binary cross-entropy, as in the founding article, trained by
Keras' ``Model.fit`` (the step and optimizer are in ``fitting``). Only training
(and the agreement tests) import TensorFlow; classifying uses ``scorer.forward``.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

from ..config import check_network_size
from .tensorflow_import import BackgroundImport, collector_paused


_TENSORFLOW = BackgroundImport("spamclf-import-tensorflow")


def import_keras():
    """Import Keras on the TensorFlow backend with TensorFlow's start-up logging silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # also silences the oneDNN banner
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow's default CPU allocator returns big buffers to the system and page-faults them
    # back in on every op; the BFC allocator keeps them.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    _TENSORFLOW.wait()
    if "keras" not in sys.modules:
        with _hidden(_NOT_FOR_KERAS), collector_paused():
            import keras  # noqa: E402, F401
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402

    tf.get_logger().setLevel("ERROR")
    return keras, tf


# Keras imports scikit-learn (for its estimator wrappers), Matplotlib (for an image gallery) and pandas
# (to accept DataFrames) when they are installed, a large share of `import tensorflow`. spamclf uses
# none of them through Keras, which leaves them out when they are missing.
_NOT_FOR_KERAS = ("sklearn", "matplotlib", "pandas")


class _Refuse:
    """An import finder (``sys.meta_path``) under which importing ``names`` (and their submodules)
    fails, but only in the thread ``thread``."""

    def __init__(self, names: frozenset[str], thread: int) -> None:
        self.names, self.thread = names, thread

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{fullname} is left out here", name=fullname)
        return None


@contextmanager
def _hidden(names: tuple[str, ...]):
    """Within the block, this thread's imports of ``names`` (not imported yet) fail; afterwards they
    import as usual. Other threads import them meanwhile as usual: training's main thread may be
    reading a table with pyarrow, or anything else, while Keras loads in the background."""
    refuse = _Refuse(frozenset(name for name in names if name not in sys.modules), threading.get_ident())
    sys.meta_path.insert(0, refuse)
    try:
        yield
    finally:
        sys.meta_path.remove(refuse)


def preload_keras() -> None:
    """Start importing Keras and TensorFlow in a background thread; ``import_keras`` then waits for it."""
    _TENSORFLOW.start(import_keras)


def build_model(n_features: int, units: list[int], dropout: float = 0.0, l2: float = 0.0, learning_rate: float = 1e-3):
    """The article's network for ``n_features`` sparse inputs, compiled with Adam and binary cross-entropy.

    Refused (ConfigError) over ``config.MAX_WEIGHTS`` weights, before anything is allocated: with
    ``features.max_features`` null the vocabulary's size is known only now.
    """
    check_network_size(n_features, units, "the vocabulary's size")
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
    """A tf.data pipeline of sparse batches: what ``keras.Model.predict`` reads (the reference path)."""
    coo = x.tocoo()
    order = np.lexsort((coo.col, coo.row))
    indices = np.stack([coo.row[order], coo.col[order]], axis=1).astype(np.int64)
    tensor = tf.SparseTensor(indices, coo.data[order].astype(np.float32), coo.shape)
    ds = tf.data.Dataset.from_tensor_slices((tensor, y.astype(np.float32)) if y is not None else tensor)
    if shuffle_seed is not None:
        ds = ds.shuffle(x.shape[0], seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


def seed_everything(seed: int) -> None:
    """Python, NumPy and Keras seeded: the same seed, the same initial weights and dropout masks."""
    keras, _ = import_keras()
    keras.utils.set_random_seed(seed)


def _rows(x: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch ``rows`` of ``x`` as a SparseTensor's (indices, values), in row-major order."""
    batch = x[rows]
    batch.sort_indices()  # the CSR conversion in training reads the entries in this order
    segments = np.repeat(np.arange(batch.shape[0], dtype=np.int64), np.diff(batch.indptr))
    return np.stack([segments, batch.indices.astype(np.int64)], axis=1), batch.data.astype(np.float32)


def class_weights(y: np.ndarray, mode: str) -> tuple[float, float]:
    """(ham weight, spam weight) of each example's loss: 1 and 1, or inversely to class frequency."""
    if mode != "balanced":
        return 1.0, 1.0
    counts = np.bincount(np.asarray(y).astype(int), minlength=2)
    neg, pos = (float(len(y) / (2 * max(c, 1))) for c in counts)
    return neg, pos


def batch_size_for(n_rows: int, train_cfg: dict) -> int:
    """``train.batch_size``, made smaller when needed for ``train.min_steps_per_epoch`` steps per epoch.

    Batches that suit a corpus of thousands would leave a few hundred messages of one's own mail with
    one or two updates per epoch, and an undertrained filter.
    """
    return max(1, min(train_cfg["batch_size"], -(-n_rows // train_cfg["min_steps_per_epoch"])))


def fit(
    x_train: sp.csr_matrix,
    y_train: np.ndarray,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    config: dict,
    progress: bool = True,
    callbacks=(),
):
    """Train the network on sparse rows with Keras' ``Model.fit``; early stopping on validation loss restores the best epoch.

    ``callbacks``: more Keras callbacks, after those the config asks for (``fitting.callbacks``).
    Returns ``(model, history)``: the plain Dense model (``build_model``), and its ``History``'s
    ``loss``, ``accuracy``, ``val_loss`` and ``val_accuracy`` per epoch. Raises
    ``TrainingError`` when the loss becomes NaN or infinite.
    """
    from . import fitting

    tr, md = config["train"], config["model"]
    x_train, x_val = sp.csr_matrix(x_train, dtype=np.float32), sp.csr_matrix(x_val, dtype=np.float32)
    x_train.sort_indices()
    y_train, y_val = np.asarray(y_train, np.float32), np.asarray(y_val, np.float32)
    with fitting.deterministic_ops(), fitting.graph_rewrites_off():
        seed_everything(tr["seed"])
        model = build_model(x_train.shape[1], md["units"], md["dropout"], md["l2"], tr["learning_rate"])
        training = fitting.training_model(model, config, class_weights(y_train, tr["class_weight"]), tr["seed"])
        batch_size = batch_size_for(x_train.shape[0], tr)
        result = training.fit(
            fitting.batches(x_train, y_train, batch_size, np.random.default_rng(tr["seed"]), endless=True),
            steps_per_epoch=fitting.steps_per_pass(x_train.shape[0], batch_size),
            validation_data=fitting.batches(x_val, y_val, fitting.VALIDATION_BATCH),
            epochs=tr["epochs"],
            verbose=0,
            shuffle=False,  # the batches are shuffled already
            callbacks=fitting.callbacks(tr, progress, extra=callbacks),
        )
    return model, fitting.history_of(result)


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
    from .bundle_checks import check_keras_file

    check_keras_file(path)
    keras, _ = import_keras()
    return keras.saving.load_model(path, safe_mode=True, compile=False)

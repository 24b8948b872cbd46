"""The Keras network: the one place its shape is defined, and how it is trained.

``Dense(512, relu) -> Dense(256, relu) -> Dense(1, sigmoid)`` on sparse TF-IDF
input, Adam and binary cross-entropy, as in the founding article. Only training
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
from ..errors import TrainingError
from .tensorflow_import import BackgroundImport, collector_paused


_TENSORFLOW = BackgroundImport("spamclf-import-tensorflow")


def import_keras():
    """Import Keras on the TensorFlow backend with TensorFlow's start-up logging silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # also silences the oneDNN banner
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow's default CPU allocator returns big buffers to the system and page-faults them
    # back in on every op: a 14 MB gather took 21 ms with it and 3 ms with the BFC allocator.
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
# (to accept DataFrames) when they are installed: 1.1 s, 0.85 s and 0.3 s of the 5.5 s `import
# tensorflow` took here (python -X importtime). spamclf uses none of them through Keras, which leaves
# them out when they are missing.
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
    """Python, NumPy and Keras seeded, TensorFlow ops deterministic: same inputs, same model."""
    keras, tf = import_keras()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _rows(x: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch ``rows`` of ``x`` as a SparseTensor's (indices, values), in row-major order."""
    batch = x[rows]
    batch.sort_indices()  # the CSR conversion in training reads the entries in this order
    segments = np.repeat(np.arange(batch.shape[0], dtype=np.int64), np.diff(batch.indptr))
    return np.stack([segments, batch.indices.astype(np.int64)], axis=1), batch.data.astype(np.float32)


def _csr_matmul(tf, indices, values, dense_shape, kernel):
    """``sparse @ kernel`` for a batch of rows in row-major order, as a CSR matrix product.

    The same product as Keras' Dense layer on sparse input, with the same gradient, but
    TensorFlow's ``sparse_dense_matmul`` took 52 ms forward and 75 ms for the kernel's
    gradient on a batch of 256 messages by 20,000 terms (2 cores); the CSR kernels take 4
    and 8 ms. The kernel's gradient is ``transpose(sparse) @ upstream``.
    """
    csr = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=values, dense_shape=dense_shape)

    @tf.custom_gradient
    def product(weights):
        def grad(upstream):
            transposed = tf.raw_ops.SparseMatrixTranspose(input=csr, type=tf.float32)
            return tf.raw_ops.SparseMatrixMatMul(a=transposed, b=upstream)

        return tf.raw_ops.SparseMatrixMatMul(a=csr, b=weights), grad

    return product(tf.convert_to_tensor(kernel))


class _Trainer:
    """A compiled training step for the Dense stack: Adam as one fused kernel per variable.

    Profiled on the full corpus (2 cores), Keras' ``fit`` spent most of a step in Adam's
    update of the first kernel (vocabulary x 512 floats, updated by about ten separate
    element-wise ops, each allocating a kernel-sized temporary) and in page faults of
    TensorFlow's default CPU allocator. Here the forward pass is the same
    ``sparse @ kernel`` as Keras' Dense layer, the loss is binary cross-entropy, and each
    variable gets TensorFlow's fused ``ApplyAdam`` kernel -- Keras' Adam update rule
    (beta_1 0.9, beta_2 0.999, epsilon 1e-7) in one pass. The variables are the Dense
    layers' own, so the saved model is the plain Keras model.
    """

    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7

    def __init__(self, model, tf, config: dict, pos_weight: float, neg_weight: float):
        tr, md = config["train"], config["model"]
        self.tf = tf
        dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
        self.n_features = int(dense[0].kernel.shape[0])
        self.kernels = [layer.kernel.value for layer in dense]
        self.biases = [layer.bias.value for layer in dense]
        self.variables = [v for pair in zip(self.kernels, self.biases) for v in pair]
        self.slots = [(tf.Variable(tf.zeros_like(v), trainable=False), tf.Variable(tf.zeros_like(v), trainable=False)) for v in self.variables]
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.learning_rate = float(tr["learning_rate"])
        self.dropout = float(md["dropout"])
        self.l2 = float(md["l2"])
        self.seed = int(tr["seed"])
        self.weights = (float(neg_weight), float(pos_weight))
        batch = [tf.TensorSpec([None, 2], tf.int64), tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64)]
        # No AutoGraph: the steps branch and loop on Python values only, so converting their source
        # to graph code buys nothing, and it was most of tracing's cost (first step and first
        # validation pass about 0.45 s faster on the full corpus; the same weights to the bit).
        self.train_step = tf.function(self._train_step, input_signature=[*batch, tf.TensorSpec([None], tf.float32)], autograph=False)
        self.logits = tf.function(lambda i, v, n: self._logits(i, v, n, False), input_signature=batch, autograph=False)

    def _logits(self, indices, values, n_rows, training):
        tf = self.tf
        h = _csr_matmul(tf, indices, values, tf.stack([n_rows, self.n_features]), self.kernels[0]) + self.biases[0]
        for i in range(len(self.kernels)):
            if i:
                h = tf.matmul(h, self.kernels[i]) + self.biases[i]
            if i < len(self.kernels) - 1:
                h = tf.nn.relu(h)
                if training and self.dropout:
                    seed = tf.stack([tf.cast(self.seed, tf.int64), self.iterations * 16 + i])
                    h = tf.nn.experimental.stateless_dropout(h, self.dropout, seed=seed)
        return h[:, 0]

    def _train_step(self, indices, values, n_rows, y):
        tf = self.tf
        with tf.GradientTape() as tape:
            logits = self._logits(indices, values, n_rows, True)
            per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
            loss = tf.reduce_mean(per_example * tf.where(y > 0.5, self.weights[1], self.weights[0]))
            if self.l2:  # Keras' L2 regulariser on the hidden kernels
                loss += self.l2 * tf.add_n([tf.reduce_sum(tf.square(w)) for w in self.kernels[:-1]])
        self.apply_adam(tape.gradient(loss, self.variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(logits >= 0.0, y > 0.5), tf.float32))
        return tf.reduce_sum(per_example), correct

    def apply_adam(self, grads) -> None:
        """One Adam step on every variable (traced inside a step function; Ray training calls it too)."""
        tf = self.tf
        self.iterations.assign_add(1)
        t = tf.cast(self.iterations, tf.float32)
        for variable, (m, v), grad in zip(self.variables, self.slots, grads):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=m.handle, v=v.handle,
                beta1_power=tf.pow(self.beta_1, t), beta2_power=tf.pow(self.beta_2, t),
                lr=self.learning_rate, beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon,
                grad=tf.convert_to_tensor(grad),
            )  # fmt: skip

    def evaluate(self, x: sp.csr_matrix, y: np.ndarray, batch_size: int = 4096) -> tuple[float, float]:
        """Mean binary cross-entropy and accuracy over ``x`` (no dropout, no class weights)."""
        logits = []
        for start in range(0, x.shape[0], batch_size):
            rows = np.arange(start, min(start + batch_size, x.shape[0]))
            logits.append(self.logits(*_rows(x, rows), np.int64(len(rows))).numpy())
        z = np.concatenate(logits).astype(np.float64) if logits else np.zeros(0)
        loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        return float(loss), float(np.mean((z >= 0) == (y > 0.5)))

    def stop_if_diverged(self, epoch: int, history: dict) -> None:
        """TrainingError once the epoch's loss or any weight is no longer a finite number: from then on
        every step only spreads NaN, and a bundle saved from it would score NaN. Ray training calls it too."""
        losses = {key: history[key][-1] for key in ("loss", "val_loss")}
        bad = next((f"{key} {value}" for key, value in losses.items() if not np.isfinite(value)), None)
        if bad is None and not all(bool(self.tf.reduce_all(self.tf.math.is_finite(v))) for v in self.variables):
            bad = "weights not finite"
        if bad is not None:
            raise TrainingError(f"training diverged at epoch {epoch} ({bad}); lower train.learning_rate")

    def snapshot(self) -> list:
        """The variables' values now, for ``restore``: TensorFlow tensors, which never change.

        A read costs nothing until the next Adam step, which copies a variable's buffer before
        updating it while a read still holds it. Two NumPy copies per snapshot (``.numpy()``
        copies, ``np.array`` copied again) took three times as long: about 0.15 s over five
        epochs of the full corpus's 20,000 x 512 first kernel, against 0.05 s.
        """
        return [v.read_value() for v in self.variables]

    def restore(self, values: list) -> None:
        for variable, value in zip(self.variables, values):
            variable.assign(value)


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


@contextmanager
def _without_graph_rewrites(tf):
    """TensorFlow's graph optimiser (Grappler) off while the block runs: a setting of the whole
    process, as TensorFlow keeps it, restored after.

    The training step is a few dozen ops that are already what the CPU should run; Grappler's
    passes over it made the first call (tracing) slower and every step about a seventh slower on
    the full corpus (median step 26 ms with them, 22.5 ms without; fit 2.7 s against 2.3 s), and
    its rewrites change nothing but the last bits of the floats.
    """
    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before.get("disable_meta_optimizer", False)})


def fit(
    x_train: sp.csr_matrix,
    y_train: np.ndarray,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    config: dict,
    progress: bool = True,
):
    """Train the network on sparse rows; early stopping on validation loss restores the best epoch.

    Returns ``(model, history)`` where history maps ``loss``, ``accuracy``, ``val_loss`` and
    ``val_accuracy`` to per-epoch lists, as Keras' ``fit`` names them.
    """
    _, tf = import_keras()
    with _without_graph_rewrites(tf):
        return _fit(tf, x_train, y_train, x_val, y_val, config, progress)


def _fit(tf, x_train, y_train, x_val, y_val, config: dict, progress: bool):
    import click

    tr, md = config["train"], config["model"]
    seed_everything(tr["seed"])
    x_train, x_val = sp.csr_matrix(x_train, dtype=np.float32), sp.csr_matrix(x_val, dtype=np.float32)
    x_train.sort_indices()
    y_train, y_val = np.asarray(y_train, np.float32), np.asarray(y_val, np.float32)
    model = build_model(x_train.shape[1], md["units"], md["dropout"], md["l2"], tr["learning_rate"])
    neg_weight, pos_weight = class_weights(y_train, tr["class_weight"])
    trainer = _Trainer(model, tf, config, pos_weight, neg_weight)
    rng = np.random.default_rng(tr["seed"])
    n = x_train.shape[0]
    batch_size = batch_size_for(n, tr)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    best_loss, best_weights, waited = np.inf, None, 0
    for epoch in range(tr["epochs"]):
        order = rng.permutation(n)
        total_loss = total_correct = 0.0
        starts = range(0, n, batch_size)
        bar = click.progressbar(length=len(starts), label=f"epoch {epoch + 1}/{tr['epochs']}", file=sys.stderr) if progress else None
        for start in starts:
            rows = np.sort(order[start : start + batch_size])
            loss_sum, correct = trainer.train_step(*_rows(x_train, rows), np.int64(len(rows)), y_train[rows])
            total_loss += float(loss_sum)
            total_correct += float(correct)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.render_finish()
        val_loss, val_acc = trainer.evaluate(x_val, y_val)
        for key, value in zip(history, (total_loss / n, total_correct / n, val_loss, val_acc)):
            history[key].append(float(value))
        if progress:
            shown = ", ".join(f"{k} {history[k][-1]:.4f}" for k in sorted(history))
            click.echo(f"epoch {epoch + 1}/{tr['epochs']}: {shown}", err=True)
        trainer.stop_if_diverged(epoch + 1, history)
        if not tr["early_stopping"]:
            continue
        if val_loss < best_loss:
            best_loss, waited = val_loss, 0
            best_weights = trainer.snapshot()
        else:
            waited += 1
            if waited >= tr["patience"]:  # as keras.callbacks.EarlyStopping counts it
                break
    if best_weights is not None:
        trainer.restore(best_weights)
    return model, history


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

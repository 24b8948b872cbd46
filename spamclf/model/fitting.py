"""Fitting the network with Keras' own ``Model.fit``: a sparse training step, a fused Adam, callbacks.

Local training (``network.fit``) and Ray training's replicas both fit through this module. It
imports TensorFlow, so only training imports it. The model that is saved stays
``network.build_model``'s plain ``Sequential`` of Dense layers: ``SparseTraining`` wraps it
while ``fit`` runs and trains the weights of its very layers.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import sys
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, TrainingError
from .network import _rows, import_keras

keras, tf = import_keras()

VALIDATION_BATCH = 4096  # rows scored at a time to validate: no gradients, so big batches are cheap
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")

_BATCH = (
    (tf.TensorSpec([None, 2], tf.int64), tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64)),
    tf.TensorSpec([None], tf.float32),
)


def batches(x: sp.csr_matrix, y: np.ndarray, batch_size: int, rng: np.random.Generator | None = None, steps: int | None = None, endless: bool = False):
    """``x``'s rows as sparse batches ``((indices, values, n_rows), labels)``: one pass over them, or with ``endless`` pass after pass.

    With ``rng``, every pass draws a new permutation of the rows and each batch holds its rows in
    order; without, the rows in order. ``steps`` batches a pass (default: ``steps_per_pass``);
    those past the last row are empty, which lets Ray's replicas run the same number of steps.
    Training reads them endless, a pass an epoch (``fit``'s ``steps_per_epoch=steps``): Keras then
    keeps one iterator for every epoch, where a new one each epoch cost more than a step.
    A generator rather than a ``keras.utils.PyDataset``: Keras takes a PyDataset's shapes from its
    first batches, and would fix the batch size that the last, shorter batch then breaks.
    """
    n = x.shape[0]
    steps = steps_per_pass(n, batch_size) if steps is None else steps

    def every_pass():
        for _ in itertools.count() if endless else range(1):
            order = rng.permutation(n) if rng is not None else np.arange(n)
            for step in range(steps):
                rows = np.sort(order[step * batch_size : (step + 1) * batch_size])
                indices, values = _rows(x, rows)
                yield (indices, values, np.int64(len(rows))), y[rows]

    options = tf.data.Options()
    # Nothing to tune in one generator; the tuning thread held up each epoch's end, its iterator's
    # deletion waiting for the thread to stop.
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_generator(every_pass, output_signature=_BATCH).with_options(options)
    return dataset.apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY if endless else steps))


def steps_per_pass(n_rows: int, batch_size: int) -> int:
    """Batches of ``batch_size`` rows that hold ``n_rows`` rows: the last one may be shorter."""
    return -(-n_rows // batch_size)


def csr_matmul(indices, values, dense_shape, kernel):
    """``sparse @ kernel`` for a batch of rows in row-major order, as a CSR matrix product.

    The same product as Keras' Dense layer on sparse input, with the same gradient, an order of
    magnitude faster than TensorFlow's ``sparse_dense_matmul`` and its gradient. The kernel's
    gradient is ``transpose(sparse) @ upstream``.
    """
    csr = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=values, dense_shape=dense_shape)

    @tf.custom_gradient
    def product(weights):
        def grad(upstream):
            transposed = tf.raw_ops.SparseMatrixTranspose(input=csr, type=tf.float32)
            return tf.raw_ops.SparseMatrixMatMul(a=transposed, b=upstream)

        return tf.raw_ops.SparseMatrixMatMul(a=csr, b=weights), grad

    return product(tf.convert_to_tensor(kernel))


@keras.saving.register_keras_serializable(package="spamclf")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam, with each variable updated by TensorFlow's fused ``ResourceApplyAdam`` kernel.

    Profiled on the full corpus (2 cores), Keras' ``fit`` with ``Adam`` spent most of a step in
    the update of the first kernel (vocabulary x 512 floats): about ten element-wise ops, each
    allocating a kernel-sized temporary. The fused kernel applies the same rule (beta_1 0.9,
    beta_2 0.999, epsilon 1e-7 added to the root of the velocity) in one pass, on this
    optimizer's own momentum and velocity slots, so Keras' iteration count, learning rate and
    configuration work as for ``Adam``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no AMSGrad variant; use keras.optimizers.Adam")

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_tf_variable(variable).handle,
            m=_tf_variable(self._momentums[index]).handle,
            v=_tf_variable(self._velocities[index]).handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def _tf_variable(variable):
    """The TensorFlow variable behind a Keras one (Keras' TensorFlow optimizer hands over either)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class _Ratio(keras.metrics.Mean):
    """A sum over the epoch's rows divided by their number, added up in float64 as NumPy would.

    ``update_state(total, rows)`` takes a batch's sum, not its values: the loss and accuracy are
    summed in the step where they are computed. Keras resets it every epoch; under a
    distribution strategy, reading it adds up every replica's sums.
    """

    def __init__(self, name: str):
        super().__init__(name=name, dtype="float64")

    def update_state(self, total, rows):
        self.total.assign_add(tf.cast(total, self.dtype))
        self.count.assign_add(tf.cast(rows, self.dtype))


class SparseTraining(keras.Model):
    """The Dense stack's training and validation steps on sparse batches, as ``Model.fit`` runs them.

    ``fit`` reads batches ``((indices, values, n_rows), labels)`` (see ``batches``). The first
    layer's product is ``csr_matmul``, the rest is the Dense layers' own arithmetic; the loss is
    binary cross-entropy weighted by class, plus the L2 penalty on the hidden kernels, averaged
    over the global batch: under Ray's strategy the replicas' rows add up, and the optimizer
    adds up their gradients. The metrics are those of the rows as given: loss and accuracy,
    unweighted (validation's in float64). Used only while training: the model saved is
    ``network``, whose layers this one holds.
    """

    def __init__(self, network, dropout: float = 0.0, l2: float = 0.0, seed: int = 0, class_weights=(1.0, 1.0)):
        super().__init__(name="sparse_training")
        self.network = network
        self.dense = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]
        self.n_features = int(self.dense[0].kernel.shape[0])
        self.dropout, self.l2, self.seed = float(dropout), float(l2), int(seed)
        self.ham_weight, self.spam_weight = (float(w) for w in class_weights)
        self.loss_tracker, self.accuracy_tracker = _Ratio("loss"), _Ratio("accuracy")
        self.built = True  # the Dense layers are

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def get_weights(self):
        """The weights' values now, as tensors, which never change (what EarlyStopping keeps).

        A read costs nothing until the next Adam step, which copies a variable's buffer before
        updating it while a read still holds it; Keras' NumPy copies of the 20,000 x 512 first
        kernel cost a copy and fresh pages each. ``numpy.asarray`` makes arrays of them.
        """
        return [v.value.read_value() for v in self.weights]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a distribution strategy, Keras' fit and evaluate build the model on a batch they
        # read first and average over the replicas, which sparse batches of different sizes
        # cannot be. There is nothing to build: the layers, metrics and optimizer are built.
        pass

    def call(self, inputs, training=False):
        """Logits (before the sigmoid) of a batch ``(indices, values, n_rows)``."""
        indices, values, n_rows = inputs
        # TensorFlow's CSR kernels kill the process (SIGFPE) on a matrix of no rows, which a Ray
        # replica whose rows ran out passes: an empty row stands in for none.
        shape = tf.stack([tf.maximum(n_rows, 1), self.n_features])
        return self.from_first_product(csr_matmul(indices, values, shape, self.dense[0].kernel.value)[:n_rows], training)

    def from_first_product(self, h, training: bool):
        """Logits from the first layer's product ``sparse @ kernel``: its bias, then the Dense stack's arithmetic."""
        h = h + self.dense[0].bias.value
        for i, layer in enumerate(self.dense):
            if i:
                h = tf.matmul(h, layer.kernel.value) + layer.bias.value
            if i < len(self.dense) - 1:
                h = tf.nn.relu(h)
                if training and self.dropout:
                    seed = tf.stack([tf.cast(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64) * 16 + i])
                    h = tf.nn.experimental.stateless_dropout(h, self.dropout, seed=seed)
        return h[:, 0]

    def train_step(self, data):
        (indices, values, n_rows), y = data
        replica = tf.distribute.get_replica_context()
        rows = replica.all_reduce("sum", tf.cast(n_rows, tf.float32))
        with tf.GradientTape() as tape:
            logits = self.call((indices, values, n_rows), training=True)
            per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
            weights = tf.where(y > 0.5, self.spam_weight, self.ham_weight)
            loss = tf.reduce_sum(per_example * weights) / tf.maximum(rows, 1.0)
            if self.l2:  # Keras' L2 regulariser; each replica adds its share
                penalty = tf.add_n([tf.reduce_sum(tf.square(layer.kernel.value)) for layer in self.dense[:-1]])
                loss += self.l2 * penalty / replica.num_replicas_in_sync
        self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
        return self._track(tf.reduce_sum(per_example), logits, y, n_rows)

    def test_step(self, data):
        (indices, values, n_rows), y = data
        # In float64: the loss of a well-trained model is small, and early stopping compares it.
        z, y = tf.cast(self.call((indices, values, n_rows)), tf.float64), tf.cast(y, tf.float64)
        return self._track(tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)), z, y, n_rows)

    def _track(self, loss_sum, logits, y, n_rows):
        correct = tf.reduce_sum(tf.cast(tf.equal(logits >= 0, y > 0.5), tf.float64))
        self.loss_tracker.update_state(loss_sum, n_rows)
        self.accuracy_tracker.update_state(correct, n_rows)
        logs = {metric.name: metric.result() for metric in self.metrics}
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            # Keras 3 averages a step's logs over several workers along their first axis, which
            # a scalar lacks (tensorflow/tensorflow#72388); the epoch's come from the metrics.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Keras' ``TerminateOnNaN``, raising: training stops after the first batch (or validation)
    whose loss is NaN or infinite, or the first epoch after which a weight is, and ``fit`` raises
    ``TrainingError`` instead of returning a model (a bundle saved from it would score NaN). It
    raises once training has ended, so that the other callbacks close their logs first: list it last."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_begin(self, logs=None):
        self.failure = None

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, "loss", f"batch {batch + 1} of epoch {self.epoch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "val_loss", f"validating epoch {epoch + 1}")
        if self.failure is None and not all(np.all(np.isfinite(w)) for w in self.model.get_weights()):
            self.failure = f"training diverged: the weights stopped being finite numbers in epoch {epoch + 1}; try a lower train.learning_rate"
            self.model.stop_training = True

    def _check(self, logs, key, where):
        value = (logs or {}).get(key)
        if self.failure is None and value is not None and not np.isfinite(value):
            self.failure = f"training diverged: the {key.replace('_', ' ')} became {value} at {where}; try a lower train.learning_rate"
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.failure:
            raise TrainingError(self.failure)


class EpochProgress(keras.callbacks.Callback):
    """Progress on stderr (stdout carries ``spamclf train``'s JSON; Keras' own bar prints to stdout):
    a bar over each epoch's batches, then a line with the epoch's metrics."""

    def on_epoch_begin(self, epoch, logs=None):
        import click

        self.bar = click.progressbar(length=self.params["steps"], label=self._epoch(epoch), file=sys.stderr)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        import click

        self.bar.render_finish()
        shown = ", ".join(f"{key} {logs[key]:.4f}" for key in sorted(logs or {}))
        click.echo(f"{self._epoch(epoch)}: {shown}", err=True)

    def _epoch(self, epoch: int) -> str:
        return f"epoch {epoch + 1}/{self.params['epochs']}"


def callbacks(train_cfg: dict, progress: bool = False, logs: bool = True, extra=()) -> list:
    """The callbacks ``train_cfg`` asks for: early stopping on the validation loss (the best
    epoch's weights restored), progress, TensorBoard and a CSV log (when ``logs``), then
    ``extra``, and last the stop on a non-finite loss."""
    out = []
    if train_cfg["early_stopping"]:
        out.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=train_cfg["patience"], restore_best_weights=True))
    if progress:
        out.append(EpochProgress())
    if logs and train_cfg["tensorboard_dir"]:
        if importlib.util.find_spec("tensorboard") is None:  # Keras' callback needs it to write anything
            raise ConfigError("train.tensorboard_dir needs TensorBoard: pip install tensorboard (or spamclf[tensorboard])")
        out.append(keras.callbacks.TensorBoard(log_dir=str(train_cfg["tensorboard_dir"]), write_graph=False))
    if logs and train_cfg["csv_log"]:
        out.append(keras.callbacks.CSVLogger(str(train_cfg["csv_log"])))
    return [*out, *extra, StopOnNonFiniteLoss()]


def training_model(network, config: dict, class_weights, seed: int) -> SparseTraining:
    """``network`` wrapped for ``fit``, compiled with ``FusedAdam`` at ``train.learning_rate``."""
    model = SparseTraining(network, config["model"]["dropout"], config["model"]["l2"], seed, class_weights)
    model.compile(optimizer=FusedAdam(learning_rate=config["train"]["learning_rate"]), jit_compile=False)
    # Built now, not in the first step: a step that creates variables is traced twice.
    model.optimizer.build(model.trainable_variables)
    return model


def history_of(result) -> dict[str, list[float]]:
    """The four per-epoch lists of a ``fit``'s ``History``, as plain floats."""
    return {key: [float(v) for v in result.history[key]] for key in HISTORY_KEYS}


@contextmanager
def graph_rewrites_off():
    """TensorFlow's graph optimiser (Grappler) off for the functions this thread calls in the block.

    Keras' train function is a few dozen ops that are already what the CPU should run; Grappler's
    passes over it made the first step (tracing) slower and every step slower, and its
    rewrites change nothing but the last bits of the floats. ``tf.config.optimizer`` switches it
    for the whole process; each thread's options for calling functions are TensorFlow's own
    (``tf.experimental.function_executor_type`` sets another of them the same way).
    """
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    eager = context.context()
    before = copy.copy(eager.function_call_options)
    config = config_pb2.ConfigProto.FromString(before.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    eager.function_call_options.config_proto_serialized = config
    try:
        yield
    finally:
        eager.function_call_options = before


@contextmanager
def deterministic_ops():
    """TensorFlow's op determinism on while the block runs, the caller's setting restored after.

    A setting of the whole process (TensorFlow keeps no other); Keras reads it too. The
    function to turn it off again is not in TensorFlow's public API.
    """
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if not before:
            tf_config.disable_op_determinism()

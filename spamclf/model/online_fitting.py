"""Online learning's Keras parts: a training step whose first-kernel gradient is sparse, and a lazy Adam.

An online step trains on a small batch (a few new messages and some replayed ones) that uses a few
thousand of the first kernel's rows. Keras' own step and Adam would compute and apply a gradient
for all of its ``max_features`` x 512 weights; here the batch's columns are renumbered over the
rows it touches (``OnlineTrainer.steps``), the step gathers those rows, so the kernel's gradient
is ``IndexedSlices`` of them, and ``LazyAdam.update_step`` applies Adam to those rows alone (their
momentum and velocity too: rows a step does not touch keep theirs, as in TensorFlow Addons'
LazyAdam). Imports TensorFlow: only learning imports this module.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .fitting import FusedAdam, SparseTraining, _tf_variable, csr_matmul, graph_rewrites_off, keras, tf


@keras.saving.register_keras_serializable(package="spamclf")
class LazyAdam(FusedAdam):
    """``FusedAdam`` for dense gradients; Adam on the given rows only for a sparse one (``IndexedSlices``)."""

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        var, m, v = _tf_variable(variable), _tf_variable(self._momentums[index]), _tf_variable(self._velocities[index])
        dtype = var.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        rows, grad = gradient.indices, tf.cast(gradient.values, dtype)
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        rate = tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        var.scatter_sub(tf.IndexedSlices(rate * m_rows / (tf.sqrt(v_rows) + tf.cast(self.epsilon, dtype)), rows))


class OnlineTraining(SparseTraining):
    """``SparseTraining`` whose batches are ``(indices, values, n_rows, touched)``: the columns renumbered
    over ``touched``, the first kernel's rows the batch uses (ascending). No L2 penalty (it would touch
    every row); dropout as configured."""

    def call(self, inputs, training=False):
        indices, values, n_rows, touched = inputs
        rows = tf.gather(self.dense[0].kernel.value, touched)  # its gradient: IndexedSlices of ``touched``
        shape = tf.stack([tf.maximum(n_rows, 1), tf.cast(tf.shape(touched)[0], tf.int64)])
        return self.from_first_product(csr_matmul(indices, values, shape, rows)[:n_rows], training)

    def train_step(self, data):
        x, y = data[0], data[1]  # train_on_batch adds a sample weight of None
        with tf.GradientTape() as tape:
            logits = self.call(x, training=True)
            per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
            weights = tf.where(y > 0.5, self.spam_weight, self.ham_weight)
            loss = tf.reduce_sum(per_example * weights) / tf.maximum(tf.cast(x[2], tf.float32), 1.0)
        self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
        return self._track(tf.reduce_sum(per_example), logits, y, x[2])


class OnlineTrainer:
    """A Keras network (``network.build_model``) and its online training model with a ``LazyAdam``."""

    def __init__(self, model, config: dict) -> None:
        self.model = model
        self.training = OnlineTraining(model, config["model"]["dropout"], 0.0, config["train"]["seed"])
        self.training.compile(optimizer=LazyAdam(learning_rate=config["learn"]["learning_rate"]), jit_compile=False)
        self.training.optimizer.build(self.training.trainable_variables)
        self.kernel = self.training.dense[0].kernel

    def steps(self, x: sp.csr_matrix, y: np.ndarray, steps: int) -> np.ndarray:
        """``steps`` gradient steps on the rows ``x`` (columns: the first kernel's rows); the rows it touched."""
        x = sp.csr_matrix(x, dtype=np.float32)
        x.sort_indices()
        touched, local = np.unique(x.indices, return_inverse=True)
        if not len(touched):  # no known term at all: a row with no entries (TensorFlow's CSR needs a column)
            touched = np.zeros(1, np.int64)
        segments = np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(x.indptr))
        batch = (
            np.stack([segments, local.astype(np.int64)], axis=1).reshape(-1, 2),
            x.data.astype(np.float32),
            np.int64(x.shape[0]),
            touched.astype(np.int64),
        )
        with graph_rewrites_off():
            for _ in range(steps):
                self.training.train_on_batch(batch, np.asarray(y, np.float32))
        return touched

    def reset_rows(self, rows: np.ndarray) -> None:
        """Zero the first kernel's ``rows`` and their Adam momentum and velocity: rows given to new terms."""
        rows = tf.constant(np.asarray(rows, np.int64))
        zeros = tf.zeros([tf.shape(rows)[0], self.kernel.shape[1]], self.kernel.dtype)
        optimizer = self.training.optimizer
        index = optimizer._get_variable_index(self.kernel)
        for variable in (self.kernel, optimizer._momentums[index], optimizer._velocities[index]):
            _tf_variable(variable).scatter_update(tf.IndexedSlices(zeros, rows))

    def weights(self, touched: np.ndarray):
        """(the first kernel's ``touched`` rows, its bias, the other layers' (kernel, bias)) as NumPy arrays."""
        dense = self.training.dense
        rows = tf.gather(_tf_variable(self.kernel), touched).numpy()
        rest = [(np.asarray(layer.kernel.numpy(), np.float32), np.asarray(layer.bias.numpy(), np.float32)) for layer in dense[1:]]
        return rows, np.asarray(dense[0].bias.numpy(), np.float32), rest

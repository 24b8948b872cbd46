"""Classifying messages with a saved bundle, without TensorFlow: the Python API and ``predict`` share this."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .bundle import Bundle, load_bundle
from .extract import ExtractOptions, extract
from .scorer import forward
from .sources import Item, SkipLog, iter_inputs


@dataclass
class Prediction:
    """One output row: every input gets exactly one."""

    path: str
    score: float | None
    label: str | None
    error: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "score": self.score, "label": self.label, "error": self.error}


class Classifier:
    """A loaded models directory. ``spamclf.load(dir)`` returns one."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.features = bundle.features
        self.options = ExtractOptions.from_config(bundle.config)

    @classmethod
    def load(cls, models_dir: str | Path) -> "Classifier":
        return cls(load_bundle(models_dir))

    @property
    def threshold(self) -> float:
        return self.bundle.threshold

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Spam probabilities for already extracted texts."""
        if not len(texts):
            return np.zeros(0, dtype=np.float32)
        return forward(self.features.transform(texts), self.bundle.layers)

    def score_messages(self, raws: Sequence[bytes]) -> np.ndarray:
        """Spam probabilities for raw messages (bytes as read from disk or a socket)."""
        return self.score_texts([extract(raw, self.options) for raw in raws])

    def label(self, score: float, threshold: float | None = None) -> str:
        return "spam" if score >= (self.threshold if threshold is None else threshold) else "ham"

    def predict_items(self, items: Iterable[Item], threshold: float | None = None, batch_size: int = 256) -> Iterator[Prediction]:
        """One Prediction per item, in input order, scored in batches so memory stays bounded."""
        items = iter(items)
        while True:
            batch = list(islice(items, batch_size))
            if not batch:
                return
            readable = [i for i, item in enumerate(batch) if item.error is None]
            scores = self.score_texts(
                [batch[i].text if batch[i].text is not None else extract(batch[i].raw, self.options) for i in readable]
            )
            by_index = dict(zip(readable, scores))
            for i, item in enumerate(batch):
                if item.error is not None:
                    yield Prediction(item.path, None, None, item.error)
                else:
                    score = float(by_index[i])
                    yield Prediction(item.path, score, self.label(score, threshold))

    def predict(self, inputs: Iterable[str | Path], threshold: float | None = None, skips: SkipLog | None = None) -> Iterator[Prediction]:
        """Predictions for message files and folders (recursive), one per file, in a stable order."""
        return self.predict_items(iter_inputs(inputs, self.options.max_bytes, skips), threshold)


def load(models_dir: str | Path) -> Classifier:
    """Load a models directory for classification (verifies its manifest first)."""
    return Classifier.load(models_dir)

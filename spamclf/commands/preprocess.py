"""``spamclf preprocess``: read and extract mail once, write a stratified, seeded train/test split."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..config import defaults
from ..mail.labelled import LabelledData, load_labelled, require_trainable, stratified_split
from ..mail.extract import ExtractOptions
from ..mail.sources import LABELS, PREPROCESSED_MAGIC

TRAIN_FILE = "train.jsonl"
TEST_FILE = "test.jsonl"
STATS_FILE = "stats.json"


def write_split(path: Path, data: LabelledData, options: ExtractOptions) -> None:
    header = {"format": PREPROCESSED_MAGIC, "version": 1, "spamclf_version": __version__, "extract": options.__dict__}
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n")
        for p, text, label, digest in zip(data.paths, data.texts, data.labels, data.digests):
            fh.write(json.dumps({"path": p, "label": LABELS[label], "sha256": digest, "text": text}, ensure_ascii=False) + "\n")


def preprocess(
    data: list[str] | tuple[str, ...],
    out: str | Path,
    test_size: float = 0.2,
    seed: int = 42,
    options: ExtractOptions | None = None,
    progress: bool = True,
    jobs: int | None = 0,
) -> dict:
    """Write ``train.jsonl``, ``test.jsonl`` and ``stats.json`` to ``out``; return the stats.

    Exact duplicates are dropped before splitting, so no message is in both splits.
    """
    from ..errors import DataError

    if not 0.0 < test_size < 1.0:
        raise DataError(f"--test-size must be between 0 and 1, got {test_size}")
    options = options or ExtractOptions(**defaults()["extract"])
    dataset = load_labelled(data, options, progress=progress, jobs=jobs)
    require_trainable(dataset, "preprocessing")
    train_idx, test_idx = stratified_split(dataset.y, test_size, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = dataset.subset(train_idx), dataset.subset(test_idx)
    write_split(out / TRAIN_FILE, train, options)
    write_split(out / TEST_FILE, test, options)
    stats = {
        "out": str(out),
        "seed": seed,
        "test_size": test_size,
        **dataset.stats(),
        "train": train.counts(),
        "test": test.counts(),
        "files": {"train": str(out / TRAIN_FILE), "test": str(out / TEST_FILE)},
    }
    (out / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats

"""``spamclf preprocess``: read and extract mail once, write a stratified, seeded train/test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from .. import __version__
from ..config import defaults
from ..mail.labelled import LabelledData, load_labelled, require_trainable, stratified_split
from ..errors import DataError
from ..mail.extract import ExtractOptions
from ..records import json_record
from ..mail.sources import LABELS, PREPROCESSED_MAGIC, LabelledSource
from ..writing import OutputFiles

TRAIN_FILE = "train.jsonl"
TEST_FILE = "test.jsonl"
STATS_FILE = "stats.json"


def write_split(fh: IO[str], data: LabelledData, options: ExtractOptions) -> None:
    """One split as JSON Lines: a header, then one record per message (``path_bytes`` as in ``output``)."""
    header = {"format": PREPROCESSED_MAGIC, "version": 1, "spamclf_version": __version__, "extract": options.__dict__}
    fh.write(json.dumps(header) + "\n")
    for p, text, label, digest in zip(data.paths, data.texts, data.labels, data.digests):
        fh.write(json_record({"path": p, "label": LABELS[label], "sha256": digest, "text": text}) + "\n")


def check_out_folder(data, out: Path) -> None:
    """Refuse an ``out`` that is an input or inside one, or whose files would replace an input: the
    next run over that input would read the split as mail (``--out D/spam`` labels it all spam)."""
    target = out.resolve()
    outputs = {target / name for name in (TRAIN_FILE, TEST_FILE, STATS_FILE)}
    for src in data:
        name = src.path if isinstance(src, LabelledSource) else str(src)
        if name == "-":
            continue
        source = Path(name).resolve()
        if source == target or source in target.parents:
            where = "the input" if source == target else "inside the input"
            raise DataError(f"--out {out} is {where} {name}; its files would be read as data next time: choose a folder outside the inputs")
        if source in outputs:
            raise DataError(f"--out {out} would replace the input {name}: choose another folder")


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
    if not 0.0 < test_size < 1.0:
        raise DataError(f"--test-size must be between 0 and 1, got {test_size}")
    out = Path(out)
    check_out_folder(data, out)
    options = options or ExtractOptions(**defaults()["extract"])
    dataset = load_labelled(data, options, progress=progress, jobs=jobs)
    require_trainable(dataset, "preprocessing")
    train_idx, test_idx = stratified_split(dataset.y, test_size, seed)
    train, test = dataset.subset(train_idx), dataset.subset(test_idx)
    stats = {
        "out": str(out),
        "seed": seed,
        "test_size": test_size,
        **dataset.stats(),
        "train": train.counts(),
        "test": test.counts(),
        "files": {"train": str(out / TRAIN_FILE), "test": str(out / TEST_FILE)},
    }
    with OutputFiles(out) as files:  # all three files, or none: a split never meets another's half
        for name, split in ((TRAIN_FILE, train), (TEST_FILE, test)):
            with files.open(name) as fh:
                write_split(fh, split, options)
        files.write_text(STATS_FILE, json.dumps(stats, indent=2) + "\n")
    return stats

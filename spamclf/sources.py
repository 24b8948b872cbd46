"""Where messages come from: the one place that knows every supported input.

Supported inputs:

- a labelled folder holding ``spam/`` and ``ham/`` subfolders (searched recursively,
  one message per file, any file name) -- for ``preprocess``, ``train``, ``evaluate``;
- a file written by ``spamclf preprocess`` (JSON Lines with a header line), already
  extracted and labelled;
- for ``predict``: a message file, or a folder of them (recursive).

Everything is a generator of :class:`Item`: large inputs stream, one message at a time.
Hidden files and editor backups are skipped and counted, never silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DataError

LABELS = ("ham", "spam")  # index = numeric label: 0 ham, 1 spam
PREPROCESSED_MAGIC = "spamclf-preprocessed"


@dataclass
class Item:
    """One message as read: raw bytes (or already extracted text), its label if known, or why it failed."""

    path: str
    raw: bytes | None = None
    label: int | None = None
    text: str | None = None
    error: str | None = None
    sha256: str | None = None


@dataclass
class SkipLog:
    """Every input passed over, with the reason: nothing is skipped silently."""

    skipped: list[dict] = field(default_factory=list)

    def add(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.skipped:
            out[entry["reason"]] = out.get(entry["reason"], 0) + 1
        return out


def _ignored(name: str) -> str | None:
    if name.startswith("."):
        return "hidden file"
    if name.endswith("~") or name.endswith((".swp", ".bak", ".orig", ".tmp")) or name.startswith("#"):
        return "editor backup file"
    return None


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of a file; OSError passes to the caller, who records it."""
    with open(path, "rb") as fh:
        return fh.read(max_bytes)


def walk_files(folder: Path, skips: SkipLog | None = None) -> Iterator[Path]:
    """Files below ``folder`` in a stable (sorted) order; hidden and backup files skipped and logged.

    Symbolic links to files are followed; links to folders are not, so a link loop cannot trap us.
    """
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            if skips is not None:
                skips.add(str(current), f"unreadable folder: {exc.strerror or exc}")
            continue
        subdirs = []
        for entry in entries:
            reason = _ignored(entry.name)
            if reason:
                if skips is not None:
                    skips.add(entry.path, reason)
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(Path(entry.path))
            else:
                yield Path(entry.path)
        stack.extend(reversed(subdirs))


def _read_item(path: Path, label: int | None, max_bytes: int) -> Item:
    try:
        return Item(path=str(path), raw=read_bytes(path, max_bytes), label=label)
    except OSError as exc:
        return Item(path=str(path), label=label, error=exc.strerror or str(exc))


def is_preprocessed(path: Path) -> bool:
    """Whether ``path`` is a file written by ``spamclf preprocess``."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(4096)
        return json.loads(first).get("format") == PREPROCESSED_MAGIC
    except (OSError, ValueError, AttributeError):
        return False


def _iter_preprocessed(path: Path, expect_extract: dict | None) -> Iterator[Item]:
    with open(path, encoding="utf-8") as fh:
        header = json.loads(next(fh))
        if expect_extract is not None and header.get("extract") != expect_extract:
            raise DataError(
                f"{path} was preprocessed with extract settings {header.get('extract')}, but this run uses "
                f"{expect_extract}; run 'spamclf preprocess' again with the same --config"
            )
        for lineno, line in enumerate(fh, start=2):
            try:
                row = json.loads(line)
                label = LABELS.index(row["label"])
                yield Item(path=row["path"], text=row["text"], label=label, sha256=row.get("sha256"))
            except (ValueError, KeyError, TypeError):
                raise DataError(f"{path}:{lineno}: not a valid preprocessed row") from None


def _label_dirs(folder: Path) -> dict[int, Path]:
    found = {}
    for child in folder.iterdir():
        name = child.name.lower()
        if child.is_dir() and name in LABELS:
            found[LABELS.index(name)] = child
    return found


def iter_labelled(
    sources: Iterable[str | Path], max_bytes: int, skips: SkipLog | None = None, expect_extract: dict | None = None
) -> Iterator[Item]:
    """Labelled messages from every source, in order. Raises DataError for a source that is not labelled data.

    ``expect_extract``: the extract settings in use; a preprocessed file made with others is refused.
    """
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise DataError(f"data source {src} does not exist")
        if path.is_file():
            if not is_preprocessed(path):
                raise DataError(
                    f"data source {src} is a file but not one written by 'spamclf preprocess'; "
                    "give a folder with spam/ and ham/ subfolders"
                )
            yield from _iter_preprocessed(path, expect_extract)
            continue
        dirs = _label_dirs(path)
        if set(dirs) != {0, 1}:
            missing = " and ".join(f"{LABELS[i]}/" for i in (1, 0) if i not in dirs)
            raise DataError(f"data folder {src} has no {missing} subfolder; a labelled folder holds spam/ and ham/")
        for label in (1, 0):
            for file in walk_files(dirs[label], skips):
                yield _read_item(file, label, max_bytes)


def iter_inputs(inputs: Iterable[str | Path], max_bytes: int, skips: SkipLog | None = None) -> Iterator[Item]:
    """Unlabelled messages for ``predict``: each file given, and every file below each folder given.

    An input that cannot be read still yields its Item, with ``error`` set.
    """
    for src in inputs:
        path = Path(src)
        if path.is_dir():
            for file in walk_files(path, skips):
                yield _read_item(file, None, max_bytes)
        elif path.exists() or path.is_symlink():
            yield _read_item(path, None, max_bytes)
        else:
            yield Item(path=str(src), error="no such file or folder")

"""Messages kept in tables: CSV, TSV, JSON Lines and Parquet, one message per row.

The text column is found by name (``text``, ``message``, ``raw``, ``email``, ``body``,
``content``, ``mail``; or the only column there is) and the label column likewise
(``label``, ``class``, ``category``, ``spam``, ``is_spam``, ``target``). Rows stream:
CSV and JSONL a row at a time, Parquet a record batch at a time.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..errors import DataError

TEXT_COLUMNS = ("text", "message", "raw", "email", "body", "content", "mail")
LABEL_COLUMNS = ("label", "class", "category", "spam", "is_spam", "target")
SPAM_VALUES = frozenset(("spam", "1", "1.0", "true", "yes", "junk"))
HAM_VALUES = frozenset(("ham", "0", "0.0", "false", "no", "not spam", "legit", "legitimate"))
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_PARQUET_BATCH = 1024


@dataclass
class Row:
    """One table row: its 1-based number, the message as bytes, and the label cell as read (or None)."""

    number: int
    raw: bytes
    label: object = None


def pick_column(names: list[str], wanted: tuple[str, ...], fallback_single: bool = False) -> str | None:
    """The first of ``names`` that is one of ``wanted`` (case-insensitive), in ``wanted``'s order of preference."""
    lowered = {str(n).strip().lower(): n for n in names}
    for candidate in wanted:
        if candidate in lowered:
            return lowered[candidate]
    if fallback_single and len(names) == 1:
        return names[0]
    return None


def parse_label(value: object, where: str) -> int:
    """0 (ham) or 1 (spam) from a label cell; anything else is a clear DataError naming the row."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    text = str(value).strip().lower() if value is not None else ""
    if text in SPAM_VALUES:
        return 1
    if text in HAM_VALUES:
        return 0
    raise DataError(
        f"{where}: label {value!r} is neither spam nor ham; use one of {', '.join(sorted(SPAM_VALUES))} "
        f"for spam and {', '.join(sorted(HAM_VALUES))} for ham"
    )


def _as_bytes(value: object, max_bytes: int) -> bytes:
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value[:max_bytes])
    # surrogateescape gives back the file's own bytes for cells that were not valid UTF-8
    return str(value)[:max_bytes].encode("utf-8", "surrogateescape")[:max_bytes]


class NoTextColumn(Exception):
    """The table has no column we can read messages from (the caller decides what that means)."""


def iter_delimited(fh: BinaryIO, delimiter: str, max_bytes: int) -> Iterator[Row]:
    """Rows of a CSV/TSV stream with a header line. Raises NoTextColumn before yielding, if there is none."""
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
    csv.field_size_limit(min(sys.maxsize, max(max_bytes * 4, 1 << 20)))
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise NoTextColumn("no header line") from None
    text_col = pick_column(header, TEXT_COLUMNS, fallback_single=True)
    if text_col is None:
        raise NoTextColumn(f"no text column among {header[:10]}")
    ti = header.index(text_col)
    label_col = pick_column(header, LABEL_COLUMNS)
    li = header.index(label_col) if label_col is not None else None
    for number, cells in enumerate(reader, start=1):
        if not cells:
            continue
        yield Row(
            number,
            _as_bytes(cells[ti] if ti < len(cells) else "", max_bytes),
            (cells[li] if li < len(cells) else None) if li is not None else None,
        )


def iter_jsonl(fh: BinaryIO, max_bytes: int, strict: bool, where: str) -> Iterator[Row]:
    """Rows of a JSON Lines stream. A line that is not a JSON object is an error when ``strict`` (labelled
    data), else that line is the message (prediction scores whatever text there is)."""
    for number, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
        except ValueError:
            if strict:
                raise DataError(f"{where}#row={number}: not a JSON object") from None
            yield Row(number, line[:max_bytes])
            continue
        text_key = pick_column(list(obj), TEXT_COLUMNS, fallback_single=True)
        label_key = pick_column(list(obj), LABEL_COLUMNS)
        if text_key is None and strict:
            raise DataError(f"{where}#row={number}: no text field (one of {', '.join(TEXT_COLUMNS)})")
        yield Row(number, _as_bytes(obj.get(text_key) if text_key else None, max_bytes), obj.get(label_key) if label_key else None)


def iter_parquet(path: str, max_bytes: int) -> Iterator[Row]:
    """Rows of a Parquet file, a record batch at a time. Raises NoTextColumn if there is no text column."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DataError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # not Parquet after all
        raise NoTextColumn(f"not a Parquet file ({exc.__class__.__name__})") from None
    names = pf.schema_arrow.names
    text_col = pick_column(names, TEXT_COLUMNS, fallback_single=True)
    if text_col is None:
        raise NoTextColumn(f"no text column among {names[:10]}")
    label_col = pick_column(names, LABEL_COLUMNS)
    columns = [text_col] + ([label_col] if label_col else [])
    number = 0
    for batch in pf.iter_batches(batch_size=_PARQUET_BATCH, columns=columns):
        texts = batch.column(0).to_pylist()
        labels = batch.column(1).to_pylist() if label_col else [None] * len(texts)
        for value, label in zip(texts, labels):
            number += 1
            yield Row(number, _as_bytes(value, max_bytes), label)

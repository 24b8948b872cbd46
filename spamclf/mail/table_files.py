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
import re
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


def iter_delimited(fh: BinaryIO, delimiter: str, max_bytes: int, record_chars: int | None = None) -> Iterator[Row]:
    """Rows of a CSV/TSV stream with a header line. Raises NoTextColumn before yielding, if there is none.

    :func:`csv.reader` holds a whole record in memory and fails on a field over its size limit, which
    ended the file there. So it is given records of at most ``record_chars`` characters (by default four
    times ``max_bytes``, at least a million); a longer one is read by :func:`_long_record`, which keeps
    ``max_bytes`` characters of each cell, and csv.reader goes on after it.
    """
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
    cap = max(max_bytes * 4, 1 << 20) if record_chars is None else record_chars
    csv.field_size_limit(min(sys.maxsize, max(csv.field_size_limit(), cap + 1)))  # only ever raised: it is global
    lines = _RecordLines(text, cap)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error, _LongRecord):
        raise NoTextColumn("no header line") from None
    text_col = pick_column(header, TEXT_COLUMNS, fallback_single=True)
    if text_col is None:
        raise NoTextColumn(f"no text column among {header[:10]}")
    ti = header.index(text_col)
    label_col = pick_column(header, LABEL_COLUMNS)
    li = header.index(label_col) if label_col is not None else None
    number = 0
    while True:
        number += 1
        lines.new_record()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _LongRecord:
            cells = _long_record(lines, delimiter, max_bytes, keep=max(ti, li or 0))
            reader = csv.reader(lines, delimiter=delimiter)  # it stopped inside the record it was reading
        if not cells:
            continue
        yield Row(
            number,
            _as_bytes(cells[ti] if ti < len(cells) else "", max_bytes),
            (cells[li] if li < len(cells) else None) if li is not None else None,
        )


class _LongRecord(Exception):
    """The record being read is longer than :class:`_RecordLines` gives to csv.reader."""


_LINE_END = re.compile("\r\n|\r|\n")
_TEXT_CHUNK = 1 << 16


class _RecordLines:
    """The lines of a text stream (``newline=""``) for :func:`csv.reader`, keeping those of the current record.

    A record (or one line) longer than ``cap`` characters raises _LongRecord; its lines so far and
    :meth:`read` let :func:`_long_record` read it from its start. What that read past the record's
    end (``pending``) comes first, here and in :meth:`read`.
    """

    def __init__(self, text: io.TextIOBase, cap: int) -> None:
        self.text = text
        self.cap = cap
        self.pending = ""
        self.record: list[str] = []
        self.size = 0

    def __iter__(self) -> "_RecordLines":
        return self

    def __next__(self) -> str:
        line = self._readline()
        if not line:
            raise StopIteration
        self.record.append(line)
        self.size += len(line)
        if self.size > self.cap:
            raise _LongRecord
        return line

    def new_record(self) -> None:
        self.record, self.size = [], 0

    def read(self, n: int) -> str:
        if self.pending:
            data, self.pending = self.pending, ""
            return data
        return self.text.read(n)

    def _readline(self) -> str:
        if not self.pending:
            return self.text.readline(self.cap + 1)
        end = _LINE_END.search(self.pending)
        if end is None:  # (pending never ends inside a CR LF pair: see _long_record)
            line, self.pending = self.pending, ""
            return line + self.text.readline(max(self.cap + 1 - len(line), 1))
        line, self.pending = self.pending[: end.end()], self.pending[end.end() :]
        return line


_START_RECORD, _START_FIELD, _IN_FIELD, _IN_QUOTED, _QUOTE_IN_QUOTED = range(5)


def _long_record(lines: _RecordLines, delimiter: str, max_chars: int, keep: int) -> list[str]:
    """The record that stopped csv.reader, read as csv.reader reads it (the excel dialect, not strict) from
    its lines so far and the rest of the stream, in chunks: each field cut at ``max_chars`` characters,
    fields after index ``keep`` dropped. What was read past its end goes back to ``lines.pending``.
    """
    chunks = iter(lines.record)  # then the stream, a chunk at a time
    lines.new_record()
    stop_unquoted = re.compile("[" + re.escape(delimiter) + "\r\n]")
    fields: list[str] = []
    parts: list[str] = []  # of the field being read
    size = count = 0  # the field's length so far; fields read, kept or not
    buf, pos = "", 0
    state = _START_RECORD

    def add(piece: str) -> None:
        nonlocal size
        if count <= keep and size < max_chars:
            parts.append(piece[: max_chars - size])
        size += len(piece)

    def save() -> None:
        nonlocal parts, size, count
        if count <= keep:
            fields.append("".join(parts))
        parts, size, count = [], 0, count + 1

    while True:
        if pos >= len(buf):
            buf, pos = next(chunks, None) or lines.read(_TEXT_CHUNK), 0
            if not buf:  # the end of the stream ends the record, even inside quotes
                if state != _START_RECORD:
                    save()
                return fields
            continue
        c = buf[pos]
        if state == _START_RECORD:
            state = _START_FIELD
            if c in "\r\n":
                break  # an empty line
        elif state == _START_FIELD:
            if c == '"':
                state, pos = _IN_QUOTED, pos + 1
            elif c == delimiter:
                save()
                pos += 1
            elif c in "\r\n":
                save()
                break
            else:
                state = _IN_FIELD
        elif state == _IN_FIELD:
            found = stop_unquoted.search(buf, pos)
            end = found.start() if found else len(buf)
            add(buf[pos:end])
            pos = end
            if found:
                save()
                if buf[end] == delimiter:
                    state, pos = _START_FIELD, pos + 1
                else:
                    break
        elif state == _IN_QUOTED:
            end = buf.find('"', pos)
            add(buf[pos : len(buf) if end < 0 else end])
            pos = len(buf) if end < 0 else end + 1
            state = _IN_QUOTED if end < 0 else _QUOTE_IN_QUOTED
        else:  # _QUOTE_IN_QUOTED: a doubled quote, the field's end, or (not strict) more of the field
            if c == delimiter:
                save()
                state, pos = _START_FIELD, pos + 1
            elif c in "\r\n":
                save()
                break
            else:
                add(c)
                state, pos = (_IN_QUOTED if c == '"' else _IN_FIELD), pos + 1
    # At a line end: CR, LF or CR LF ends the record. What follows goes back, never ending in a CR
    # whose LF is still in the stream, so that _RecordLines splits its lines as the stream would.
    cr = buf[pos] == "\r"
    rest = buf[pos + 1 :] + "".join(chunks)
    while (cr and not rest) or rest.endswith("\r"):
        more = lines.read(_TEXT_CHUNK)
        if not more:
            break
        rest += more
    if cr and rest.startswith("\n"):
        rest = rest[1:]
    lines.pending = rest + lines.pending
    return fields


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


PARQUET_NEEDS = "reading Parquet needs pyarrow, which is not installed: pip install 'spamclf[parquet]'"


def parquet_readable() -> bool:
    """Whether pyarrow, the 'parquet' extra, is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):
        return False


def iter_parquet(path: str, max_bytes: int) -> Iterator[Row]:
    """Rows of a Parquet file, a record batch at a time. Raises NoTextColumn if there is no text column."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # the 'parquet' extra
        raise DataError(PARQUET_NEEDS) from None
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

"""Where messages come from: the one place that knows every supported input format.

Every input is a file or a folder; each file is recognised by its content first and its
name second, so a renamed or compressed mailbox is still read as one:

==============  ==========================================================  ===============================  =====================
format          recognised by                                               one row / item per               item path
==============  ==========================================================  ===============================  =====================
folder          a directory: walked recursively, files in sorted order      every message in every file      the file's path
                (numbers numerically); hidden and editor backup files
                skipped and counted; links to folders not followed
Maildir         a folder with ``cur/`` and ``new/``: ``tmp/`` is skipped    file in ``cur/`` and ``new/``     the file's path
                and counted; Maildir++ ``.Folder`` subfolders are read
MH              a folder of numbered files: read in numeric order;          numbered file                    the file's path
                ``.mh_sequences`` and deleted ``,N`` files skipped/counted
message         any other file (``.eml``, no name, not even e-mail)         file                             the file's path
mbox            first line is an envelope ``From sender date``;             message                          ``box#3`` (1-based);
                ``Content-Length`` honoured when it is honest                                                just ``box`` if it
                                                                                                             holds one message
gzip/bzip2/xz   magic bytes; the inner file is detected again               whatever the inner file holds    the compressed file's
                (``box.mbox.gz``, ``mail.csv.xz``, ``msg.eml.bz2``)                                          path, ``#N`` as above
CSV / TSV       ``.csv`` / ``.tsv`` or ``.tab``, with a header line         row                              ``t.csv#row=5``
JSON Lines      ``.jsonl`` / ``.ndjson``, one object per line               line                             ``t.jsonl#row=5``
Parquet         ``PAR1`` magic or ``.parquet``                              row                              ``t.parquet#row=5``
preprocessed    first line is the header ``spamclf preprocess`` writes      row (text already extracted)     the original path
stdin           ``-`` (``--spam -``, ``--ham -``; :func:`read_stdin_item`)  the message                      ``-``
==============  ==========================================================  ===============================  =====================

Tables find their text column by name (see :mod:`spamclf.mail.table_files`). Labels for
``preprocess``, ``train`` and ``evaluate`` come from ``spam/`` and ``ham/`` subfolders
of a folder, from a table's label column, from a preprocessed file, or from the
``--spam SRC`` / ``--ham SRC`` options (:class:`LabelledSource`), in which case SRC may
be any input above. Anything else given as labelled data is a DataError.

Everything is a generator of :class:`Item`, one message at a time, each capped at
``max_bytes`` (the rest is dropped and the item marked ``truncated``). A readable file
always yields at least one item (a table with a header line and no rows is the one
exception, logged as skipped); only an unreadable one (permission, dangling or looping
link, I/O error) yields an item with ``error`` set. So does a pipe, device or socket named
as an input: it is never read, since a pipe with no writer blocks forever (in a folder it is
skipped and logged; as labelled data it is a DataError).
"""

from __future__ import annotations

import csv
import errno
import json
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from ..errors import DataError, UsageError
from .mailboxes import compression_of, holds_one_message, inner_name, is_from_line, iter_mbox, open_decompressed
from .table_files import (
    LABEL_COLUMNS,
    PARQUET_NEEDS,
    TABLE_SUFFIXES,
    TEXT_COLUMNS,
    NoTextColumn,
    iter_delimited,
    iter_jsonl,
    iter_parquet,
    parquet_readable,
    parse_label,
)

LABELS = ("ham", "spam")  # index = numeric label: 0 ham, 1 spam
NOT_REGULAR = "not a regular file (device, pipe or socket)"
PREPROCESSED_MAGIC = "spamclf-preprocessed"
_HEAD = 4096  # bytes looked at to recognise a file


@dataclass
class Item:
    """One message as read: raw bytes (or already extracted text), its label if known, or why it failed."""

    path: str
    raw: bytes | None = None
    label: int | None = None
    text: str | None = None
    error: str | None = None
    sha256: str | None = None
    truncated: bool = False  # bytes past ``max_bytes`` were dropped

    @property
    def message(self) -> bytes | str | None:
        """What extraction takes: the text when it is already extracted, else the raw bytes."""
        return self.text if self.text is not None else self.raw


@dataclass
class SkipLog:
    """Every input passed over, with the reason: nothing is skipped silently."""

    skipped: list[dict] = field(default_factory=list)

    def add(self, path: str, reason: str, **detail: str) -> None:
        self.skipped.append({"path": path, "reason": reason, **detail})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.skipped:
            out[entry["reason"]] = out.get(entry["reason"], 0) + 1
        return out

    def summary(self) -> str:
        """``3 skipped (2 hidden file, 1 editor backup file)``, or "" when nothing was skipped."""
        if not self.skipped:
            return ""
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.counts().items(), key=lambda kv: -kv[1]))
        return f"{len(self.skipped)} skipped ({reasons})"


@dataclass(frozen=True)
class LabelledSource:
    """An input whose every message has the given label (``--spam SRC`` / ``--ham SRC``)."""

    path: str
    label: int

    def __str__(self) -> str:
        return f"{LABELS[self.label]}:{self.path}"


def labelled_sources(data: Iterable[str] = (), spam: Iterable[str] = (), ham: Iterable[str] = ()) -> list:
    """``--data`` sources as given, then every ``--spam`` and ``--ham`` source with its label."""
    return [*data, *(LabelledSource(str(p), 1) for p in spam), *(LabelledSource(str(p), 0) for p in ham)]


# ---------------------------------------------------------------------------------------------- folders


def _ignored(name: str) -> str | None:
    if name.startswith("."):
        return "hidden file"
    if name.endswith("~") or name.endswith((".swp", ".bak", ".orig", ".tmp")) or name.startswith("#"):
        return "editor backup file"
    if name.startswith(",") and name[1:].isdigit():
        return "deleted MH message"
    return None


def _sort_key(name: str) -> tuple:
    # MH folders number their messages 1, 2, ... 10: numeric names in numeric order, before the rest.
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _is_maildir(names: set[str]) -> bool:
    return "cur" in names and "new" in names


def walk_files(folder: Path, skips: SkipLog | None = None) -> Iterator[Path]:
    """Files below ``folder`` in a stable order; hidden, backup and special files skipped and logged.

    Symbolic links to files are followed; links to folders are not, so a link loop cannot trap us.
    In a Maildir, ``tmp/`` (messages still being delivered) and the files beside ``cur/`` and
    ``new/`` (``maildirfolder``, index files) are skipped, and ``.Folder`` subfolders (Maildir++) are read.
    """

    def skip(path: str, reason: str) -> None:
        if skips is not None:
            skips.add(path, reason)

    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: _sort_key(e.name))
        except OSError as exc:
            skip(str(current), f"unreadable folder: {exc.strerror or exc}")
            continue
        dir_names = set()
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    dir_names.add(entry.name)
            except OSError:
                pass
        maildir = _is_maildir(dir_names)
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                if maildir and entry.name == "tmp":
                    skip(entry.path, "Maildir tmp/ folder (messages still being delivered)")
                elif maildir and entry.name.startswith(".") and entry.name not in (".", ".."):
                    subdirs.append(Path(entry.path))  # a Maildir++ subfolder
                elif _ignored(entry.name):
                    skip(entry.path, "hidden folder" if entry.name.startswith(".") else _ignored(entry.name))
                else:
                    subdirs.append(Path(entry.path))
                continue
            reason = _ignored(entry.name)
            if reason:
                skip(entry.path, reason)
                continue
            if maildir:  # messages live in cur/ and new/; files beside them are the mail server's indexes
                skip(entry.path, "Maildir metadata file")
                continue
            try:
                if entry.is_symlink() and entry.is_dir(follow_symlinks=True):
                    skip(entry.path, "link to a folder (not followed)")
                    continue
                mode = entry.stat(follow_symlinks=True).st_mode
                if not stat.S_ISREG(mode):
                    skip(entry.path, NOT_REGULAR)
                    continue
            except OSError:
                pass  # a dangling or looping link: yielded, so that it gets its error row
            yield Path(entry.path)
        stack.extend(reversed(subdirs))


# ------------------------------------------------------------------------------------------------ files


def read_capped(fh: BinaryIO, limit: int) -> bytes:
    """``fh.read(limit)``: at most ``limit`` bytes, fewer only at the end of the stream.

    CPython's ``read(limit)`` allocates ``limit`` bytes before reading; with the 10 MB default cap
    that took three times as long as reading a message of a few kilobytes. Here the reads start at
    64 KiB and double: a small message costs one read and the empty one that ends it, a large one
    a few more.
    """
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = fh.read(min(limit - size, max(1 << 16, size)))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def open_regular(path: str | Path) -> BinaryIO:
    """``open(path, "rb")`` for a regular file; OSError (``NOT_REGULAR``) for a pipe, device or socket.

    The file is opened without blocking and checked on its descriptor: opening a pipe with no
    writer would wait forever, and a check by path before opening could be raced.
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, NOT_REGULAR)
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of a file; OSError passes to the caller, who records it."""
    with open_regular(path) as fh:
        return read_capped(fh, max_bytes)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or exc.__class__.__name__


def _first_line(head: bytes) -> bytes:
    cut = head.find(b"\n")
    return head if cut < 0 else head[: cut + 1]


def _is_preprocessed_head(head: bytes) -> bool:
    line = _first_line(head)
    if not line.startswith(b"{") or PREPROCESSED_MAGIC.encode() not in line:
        return False
    try:
        return json.loads(line).get("format") == PREPROCESSED_MAGIC
    except (ValueError, AttributeError):
        return False


def format_of(head: bytes, filename: str) -> str:
    """The format of a file from its first bytes and its name (compression aside)."""
    suffix = os.path.splitext(filename)[1].lower()
    if head.startswith(b"PAR1") or suffix == ".parquet":
        return "parquet"
    if _is_preprocessed_head(head):
        return "preprocessed"
    if suffix in TABLE_SUFFIXES:
        return TABLE_SUFFIXES[suffix]
    if is_from_line(_first_line(head)):
        return "mbox"
    return "message"


def detect_format(path: str | Path) -> str:
    """What ``path`` holds: ``folder``, ``maildir``, a file format, or ``gzip+mbox`` and the like."""
    path = Path(path)
    if path.is_dir():
        try:
            names = {p.name for p in path.iterdir() if p.is_dir()}
        except OSError:
            return "folder"
        return "maildir" if _is_maildir(names) else "folder"
    with open_regular(path) as fh:
        head = fh.peek(_HEAD)[:_HEAD]
        kind = compression_of(head)
        if kind is None:
            return format_of(head, path.name)
        reader, _ = open_decompressed(fh, kind)
        return f"{kind}+{format_of(reader.peek(_HEAD)[:_HEAD], inner_name(path.name, kind))}"


def is_preprocessed(path: Path) -> bool:
    """Whether ``path`` is a file written by ``spamclf preprocess``."""
    try:
        with open_regular(path) as fh:
            return _is_preprocessed_head(fh.readline(_HEAD))
    except OSError:
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


@dataclass
class _Read:
    """How to read one file: the settings every format shares."""

    max_bytes: int
    skips: SkipLog | None
    label: int | None  # every message gets this label (a spam/ or ham/ folder, --spam, --ham)
    labelled: bool  # labels are required: take them from the data, or fail
    expect_extract: dict | None = None

    def skip(self, path: str, reason: str) -> None:
        if self.skips is not None:
            self.skips.add(path, reason)


def _one_message(fh: BinaryIO, name: str, how: _Read) -> Item:
    try:
        raw = read_capped(fh, how.max_bytes)
        truncated = bool(fh.peek(1)) if hasattr(fh, "peek") else bool(fh.read(1))
    except OSError as exc:
        return Item(path=name, label=how.label, error=_reason(exc))
    return Item(path=name, raw=raw, label=how.label, truncated=truncated)


def _iter_mbox_items(fh: BinaryIO, name: str, how: _Read) -> Iterator[Item]:
    # Nearly every file that starts with an envelope line holds one message (the SpamAssassin corpus,
    # a saved message): read it in one call, and split only a real mailbox, line by line.
    try:
        head = read_capped(fh, how.max_bytes)
        more = fh.peek(1) if hasattr(fh, "peek") else fh.read(1)
    except OSError as exc:
        yield Item(path=f"{name}#1", label=how.label, error=_reason(exc))
        return
    if not more and holds_one_message(head):
        yield Item(path=name, raw=head, label=how.label)
        return
    if not hasattr(fh, "peek"):
        head += more
    # One message behind, so that a file holding a single message keeps its plain path.
    held, index = None, 0
    try:
        for msg in iter_mbox(fh, how.max_bytes, already_read=head):
            index += 1
            if held is not None:
                yield Item(path=f"{name}#{index - 1}", raw=held.raw, label=how.label, truncated=bool(held.truncated))
            held = msg
    except OSError as exc:
        if held is not None:
            yield Item(path=f"{name}#{index}", raw=held.raw, label=how.label, truncated=bool(held.truncated))
        yield Item(path=f"{name}#{index + 1}", label=how.label, error=_reason(exc))
        return
    if held is not None and index == 1:  # a message file, not a mailbox: its bytes as they are
        yield Item(path=name, raw=held.raw + held.separator, label=how.label, truncated=bool(held.truncated))
    elif held is not None:
        yield Item(path=f"{name}#{index}", raw=held.raw, label=how.label, truncated=bool(held.truncated))


def _row_label(cell: object, where: str, how: _Read) -> int | None:
    if how.label is not None:
        return how.label
    if not how.labelled:
        return None
    if cell is None:
        raise DataError(
            f"{where}: no label; a labelled table needs a column named one of {', '.join(LABEL_COLUMNS)} "
            "(or give the whole file with --spam or --ham)"
        )
    return parse_label(cell, where)


def _iter_table(fmt: str, fh: BinaryIO, real_path: Path | None, name: str, how: _Read) -> Iterator[Item]:
    """Rows of a table; raises NoTextColumn (before any row) when there is nothing to read messages from."""
    if fmt == "parquet":
        if real_path is None:
            raise NoTextColumn("a compressed Parquet file cannot be read as a stream")
        if not parquet_readable():
            if how.labelled:
                raise DataError(f"{name}: {PARQUET_NEEDS}")
            yield Item(path=name, error=PARQUET_NEEDS)  # its row says why; the other inputs are still read
            return
        rows = iter_parquet(str(real_path), how.max_bytes)
    elif fmt == "jsonl":
        rows = iter_jsonl(fh, how.max_bytes, strict=how.labelled, where=name)
    else:
        rows = iter_delimited(fh, "\t" if fmt == "tsv" else ",", how.max_bytes)
    number = 0
    try:
        for row in rows:
            number = row.number
            where = f"{name}#row={row.number}"
            yield Item(path=where, raw=row.raw, label=_row_label(row.label, where, how), truncated=len(row.raw) >= how.max_bytes)
    except csv.Error as exc:
        if how.labelled:
            raise DataError(f"{name}: malformed {fmt.upper()} after row {number}: {exc}") from None
        how.skip(name, f"malformed {fmt.upper()} after row {number}: {exc}; the rest of the file was not read")


def _iter_stream(
    fh: BinaryIO, head: bytes, name: str, filename: str, how: _Read, real_path: Path | None, reopen: Callable[[], BinaryIO]
) -> Iterator[Item]:
    fmt = format_of(head, filename)
    if fmt == "preprocessed" and real_path is not None:
        for item in _iter_preprocessed(real_path, how.expect_extract if how.labelled else None):
            if how.label is not None:
                item.label = how.label
            yield item
        return
    if fmt in ("csv", "tsv", "jsonl", "parquet"):
        count = 0
        try:
            for item in _iter_table(fmt, fh, real_path, name, how):
                count += 1
                yield item
        except NoTextColumn as why:
            if how.labelled:
                raise DataError(f"{name}: {why}; a table needs a text column named one of {', '.join(TEXT_COLUMNS)}") from None
            # Not a table we can read: it is still a readable file, scored on its bytes.
            with reopen() as again:
                yield _one_message(again, name, how)
            return
        if count == 0:
            how.skip(name, f"{fmt} file with no rows")
        return
    if how.labelled and how.label is None:
        raise DataError(f"{name} ({fmt}) has no labels; give it with --spam or --ham, or put it in a spam/ or ham/ folder")
    if fmt == "mbox":
        yield from _iter_mbox_items(fh, name, how)
    else:
        yield _one_message(fh, name, how)


def _iter_file(path: Path, how: _Read) -> Iterator[Item]:
    name = str(path)
    try:
        fh = open_regular(path)
    except OSError as exc:
        yield Item(path=name, label=how.label, error=_reason(exc))
        return
    with fh:
        try:
            head = fh.peek(_HEAD)[:_HEAD]
        except OSError as exc:
            yield Item(path=name, label=how.label, error=_reason(exc))
            return
        kind = compression_of(head)
        if kind is None:
            yield from _iter_stream(fh, head, name, path.name, how, path, lambda: open_regular(path))
            return
        reader, tolerant = open_decompressed(fh, kind)
        inner_head = reader.peek(_HEAD)[:_HEAD]
        if not inner_head and tolerant.error:
            # Magic bytes but no data behind them: a readable file all the same, scored on its bytes.
            with open_regular(path) as again:
                yield _one_message(again, name, how)
            return

        def reopen() -> BinaryIO:
            return open_decompressed(open_regular(path), kind)[0]

        count = 0
        for item in _iter_stream(reader, inner_head, name, inner_name(path.name, kind), how, None, reopen):
            count += 1
            yield item
        if tolerant.error:
            how.skip(name, f"corrupt {kind} data after {count} message(s): {tolerant.error}; the rest was not read")


def _iter_path(path: Path, how: _Read) -> Iterator[Item]:
    if path.is_dir():
        for file in walk_files(path, how.skips):
            yield from _iter_file(file, how)
    else:
        yield from _iter_file(path, how)


def read_stdin_item(stream: BinaryIO | None, max_bytes: int, path: str = "-") -> Item:
    """One message from a binary stream (``sys.stdin.buffer``), capped at ``max_bytes``.

    ``truncated`` says whether the stream held more; a filter that passes the message on
    reads the rest from ``stream`` itself. ``None`` (stdin closed, ``<&-``) is an unreadable input.
    """
    if stream is None:
        return Item(path=path, error="stdin is closed")
    try:
        raw = read_capped(stream, max_bytes)
        truncated = bool(stream.peek(1)) if hasattr(stream, "peek") and len(raw) == max_bytes else False
    except OSError as exc:
        return Item(path=path, error=_reason(exc))
    return Item(path=path, raw=raw or b"", truncated=truncated)


def stdin_buffer() -> BinaryIO | None:
    """``sys.stdin.buffer``, or None when the process has no stdin (started with it closed)."""
    return getattr(sys.stdin, "buffer", None)


def stdin_once(sources: Iterable) -> list:
    """``sources`` as a list. A UsageError when more than one of them is ``-``: stdin holds one
    message, and a second read would find it empty and score an empty message."""
    sources = list(sources)
    if sum(str(src.path if isinstance(src, LabelledSource) else src) == "-" for src in sources) > 1:
        raise UsageError("'-' (stdin) is given more than once: stdin holds one message; give '-' once")
    return sources


# ---------------------------------------------------------------------------------------------- entries


def _label_dirs(folder: Path) -> dict[int, Path]:
    found = {}
    for child in sorted(folder.iterdir()):
        name = child.name.lower()
        if child.is_dir() and name in LABELS:
            found[LABELS.index(name)] = child
    return found


def iter_labelled(
    sources: Iterable[str | Path | LabelledSource],
    max_bytes: int,
    skips: SkipLog | None = None,
    expect_extract: dict | None = None,
) -> Iterator[Item]:
    """Labelled messages from every source, in order. Raises DataError for a source that is not labelled data.

    A source is a folder with ``spam/`` and ``ham/`` subfolders, a table with a label column,
    a preprocessed file, or a :class:`LabelledSource` (any input, one label for all of it).
    ``expect_extract``: the extract settings in use; a preprocessed file made with others is refused.
    ``-`` given twice is a UsageError, raised by this call, before anything is read.
    """
    return _iter_labelled(stdin_once(sources), max_bytes, skips, expect_extract)


def _iter_labelled(sources: list, max_bytes: int, skips: SkipLog | None, expect_extract: dict | None) -> Iterator[Item]:
    for src in sources:
        label = src.label if isinstance(src, LabelledSource) else None
        path = Path(src.path if isinstance(src, LabelledSource) else src)
        if label is not None and src.path == "-":  # --spam - : one message on stdin
            item = read_stdin_item(stdin_buffer(), max_bytes)
            item.label = label
            yield item
            continue
        if not path.exists():
            raise DataError(f"data source {path} does not exist")
        if not path.is_dir() and not path.is_file():
            raise DataError(f"data source {path} is not a regular file or folder (device, pipe or socket)")
        if label is not None:
            yield from _iter_path(path, _Read(max_bytes, skips, label, True, expect_extract))
            continue
        if path.is_file():
            # Refuse unlabelled formats up front, before a long read.
            try:
                fmt = detect_format(path)
            except OSError as exc:
                raise DataError(f"data source {path} cannot be read: {_reason(exc)}") from None
            if fmt.split("+")[-1] not in ("preprocessed", "csv", "tsv", "jsonl", "parquet"):
                raise DataError(
                    f"data source {path} ({fmt}) has no labels: not one written by 'spamclf preprocess', nor a table "
                    "with a label column; give a folder with spam/ and ham/ "
                    "subfolders, or use --spam/--ham"
                )
            yield from _iter_file(path, _Read(max_bytes, skips, None, True, expect_extract))
            continue
        try:
            dirs = _label_dirs(path)
        except OSError as exc:
            raise DataError(f"data folder {path} cannot be read: {_reason(exc)}") from None
        if set(dirs) != {0, 1}:
            missing = " and ".join(f"{LABELS[i]}/" for i in (1, 0) if i not in dirs)
            raise DataError(
                f"data folder {path} has no {missing} subfolder; a labelled folder holds spam/ and ham/ "
                "(or give unlabelled mail with --spam/--ham)"
            )
        for label in (1, 0):
            yield from _iter_path(dirs[label], _Read(max_bytes, skips, label, True, expect_extract))


def iter_labelled_file(
    path: str | Path, label: int, max_bytes: int, skips: SkipLog | None = None, expect_extract: dict | None = None
) -> Iterator[Item]:
    """The messages of one file that a walk of a labelled folder found, as :func:`iter_labelled` reads
    them there: every message gets ``label``, and a file that is gone or unreadable by now (a dangling
    link, a file deleted since) yields its error Item instead of failing the whole read."""
    yield from _iter_file(Path(path), _Read(max_bytes, skips, label, True, expect_extract))


def iter_inputs(inputs: Iterable[str | Path], max_bytes: int, skips: SkipLog | None = None) -> Iterator[Item]:
    """Unlabelled messages for ``predict``: every message in each input, in a stable order.

    An input that cannot be read still yields its Item, with ``error`` set; ``-`` is one message on stdin
    (given twice: a UsageError, raised by this call, before anything is read).
    """
    return _iter_inputs(stdin_once(inputs), max_bytes, skips)


def _iter_inputs(inputs: list, max_bytes: int, skips: SkipLog | None) -> Iterator[Item]:
    how = _Read(max_bytes, skips, None, False)
    for src in inputs:
        if str(src) == "-":
            yield read_stdin_item(stdin_buffer(), max_bytes)
            continue
        path = Path(src)
        if path.exists() or path.is_symlink():
            yield from _iter_path(path, how)
        else:
            yield Item(path=str(src), error="no such file or folder")

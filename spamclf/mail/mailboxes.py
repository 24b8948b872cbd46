"""Mail containers read as streams: mbox (``From `` separated, with Content-Length) and compressed files.

Everything here works on binary file objects a block at a time, so a mailbox of any
size passes through holding at most one message, itself capped, at close to I/O speed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

# An mbox envelope line: "From <sender> <asctime date>". The date is required, so that a body line
# that merely starts with "From " (unquoted prose) does not split a message in two.
_FROM_LINE = re.compile(
    rb"From \S.{0,200}?\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +"
    rb"\d{1,2} +\d{1,2}:\d\d"
)
_ANY_CONTENT_LENGTH = re.compile(rb"(?i)\ncontent-length:")
_CHUNK = 1 << 16  # longest piece of a line read at once: a megabyte "line" is read in pieces
_FIRST_BLOCK, _BLOCK = 1 << 11, 1 << 20  # a message is read in blocks that double from 2 KiB to 1 MiB
# The only lines that matter in a message (see _scan): a line start that may be an envelope and, in the
# headers, a blank line; and a Content-Length line that fits in one piece of _CHUNK bytes.
_BODY_STOP = re.compile(rb"\n" + _FROM_LINE.pattern)  # a literal prefix: searched at C speed
_HEADER_STOP = re.compile(rb"\n(?:\r?\n|" + _FROM_LINE.pattern + rb")")
_CONTENT_LENGTH_LINE = re.compile(
    rb"\n(?i:content-length:)(?=[^\n]{0,%d}\n)[ \t]*(\d{1,12})[ \t]*\r?(?=\n)" % (_CHUNK - len(b"content-length:\n"))
)

COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
COMPRESSION_SUFFIXES = {"gzip": (".gz", ".tgz"), "bzip2": (".bz2",), "xz": (".xz",)}
_OPENERS = {
    "gzip": lambda fh: gzip.GzipFile(fileobj=fh, mode="rb"),
    "bzip2": lambda fh: bz2.BZ2File(fh, mode="rb"),
    "xz": lambda fh: lzma.LZMAFile(fh, mode="rb"),
}


def is_from_line(line: bytes) -> bool:
    """Whether ``line`` is an mbox envelope (``From sender Thu Aug 22 13:17:22 2002``)."""
    return line.startswith(b"From ") and _FROM_LINE.match(line, 0, 400) is not None


def compression_of(head: bytes) -> str | None:
    """``gzip``, ``bzip2`` or ``xz`` from a file's first bytes, else None."""
    for magic, kind in COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def inner_name(name: str, kind: str) -> str:
    """The name a compressed file had before compression (``box.mbox.gz`` -> ``box.mbox``)."""
    for suffix in COMPRESSION_SUFFIXES[kind]:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] + (".tar" if suffix == ".tgz" else "")
    return name


class _Tolerant(io.RawIOBase):
    """A decompressing stream that ends cleanly at corrupt or truncated data, and remembers why."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.error: str | None = None
        self.bytes_out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.error is not None:
            return 0
        try:
            # read1: what one step decompresses. read(n) gathers n bytes over several steps and, when
            # a later step fails, raises and drops the ones it had: all of a truncated small archive.
            data = self.inner.read1(len(buffer))
        except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
            self.error = str(exc) or exc.__class__.__name__
            return 0
        buffer[: len(data)] = data
        self.bytes_out += len(data)
        return len(data)


def open_decompressed(fh: BinaryIO, kind: str) -> tuple[io.BufferedReader, _Tolerant]:
    """A peekable reader of the decompressed bytes of ``fh``, and the stream that records corruption."""
    tolerant = _Tolerant(_OPENERS[kind](fh))
    return io.BufferedReader(tolerant, buffer_size=_CHUNK), tolerant


@dataclass
class RawMessage:
    """One message cut from a container: its bytes (capped) and how many bytes past the cap were dropped."""

    raw: bytes
    truncated: int = 0
    separator: bytes = b""  # the blank line after the message, which belongs to the mailbox


class _Capped:
    """Collects at most ``limit`` bytes and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if room >= len(data):
            self.parts.append(data)
            self.size += len(data)
        else:
            if room > 0:
                self.parts.append(data[:room])
                self.size += room
            self.dropped += len(data) - max(room, 0)

    def add_slice(self, data: bytes, start: int, end: int) -> None:
        """``add(data[start:end])``, without copying what is past the cap only to count it."""
        if self.size >= self.limit:
            self.dropped += end - start
        else:
            self.add(data[start:end])

    def message(self, strip_separator: bool = False) -> RawMessage:
        """The bytes kept; with ``strip_separator``, a blank last line of a whole message is the mailbox's."""
        raw = b"".join(self.parts)
        if strip_separator and not self.dropped:
            for separator in (b"\r\n", b"\n"):
                if raw.endswith(b"\n" + separator):
                    return RawMessage(raw[: -len(separator)], 0, separator)
        return RawMessage(raw, self.dropped)


class _Lines:
    """Line reader over a binary stream with push-back, so a Content-Length guess can be undone."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.back: io.BytesIO | None = None

    def readline(self) -> bytes:
        if self.back is None:
            return self.fh.readline(_CHUNK)
        line = self.back.readline(_CHUNK)
        if line.endswith(b"\n") or len(line) >= _CHUNK:
            return line
        self.back = None  # pushed-back data used up; the line may continue in the stream
        return line + self.fh.readline(_CHUNK - len(line))

    def read(self, n: int) -> bytes:
        data = b""
        if self.back is not None:
            data = self.back.read(n)
            if len(data) < n:
                self.back = None
        if len(data) < n:
            data += self.fh.read(n - len(data))
        return data

    def unread(self, data: bytes) -> None:
        if not data:
            return
        if self.back is not None and self.back.tell() >= len(data):
            # Most often ``data`` was just read from the push-back: step back over it instead of copying
            # the rest, which may be megabytes (iter_mbox's ``already_read``), once per message.
            at = self.back.tell()
            with self.back.getbuffer() as view:
                same = view[at - len(data) : at] == data
            if same:
                self.back.seek(at - len(data))
                return
        rest = self.back.read() if self.back is not None else b""
        self.back = io.BytesIO(data + rest)


def _content_length_body(lines: _Lines, length: int, max_bytes: int) -> tuple[bytes, bytes | None] | None:
    """The body if ``Content-Length`` is honest (it ends at EOF or at the next envelope), else None (input restored)."""
    if length > max_bytes:  # too big to hold for checking; let the separator scan decide
        return None
    body = lines.read(length)
    following = lines.readline()
    if following == b"" and len(body) == length:
        return body, None
    if is_from_line(following):
        return body, following
    if following in (b"\n", b"\r\n"):
        after = lines.readline()
        if after == b"" or is_from_line(after):
            return body, after or None
        lines.unread(after)
    lines.unread(following)
    lines.unread(body)
    return None


def _scan(lines: _Lines, msg: _Capped, at_line_start: bool, headers: bool) -> int | None:
    """Add a message's bytes to ``msg`` (which keeps its cap) up to the next line that ends this part of it:
    an envelope, or in the headers a blank line, left unread; or the end of the stream.

    The stream is read in blocks and searched at C speed; read a line at a time, a message of megabytes
    of empty lines took half a second per megabyte. Returns the value of the last Content-Length line
    (headers only), else None.
    """
    stop_at = _HEADER_STOP if headers else _BODY_STOP
    length = None
    data = b"\n" if at_line_start else b""  # a newline before the data marks its start as a line start
    virtual = len(data)
    size = _FIRST_BLOCK
    while True:
        block = lines.read(size)
        size = min(2 * size, _BLOCK)
        data += block
        last_newline = data.rfind(b"\n")
        # A line start can be judged once its line is whole, or has _CHUNK bytes (more than the 400 an
        # envelope needs, too long for a Content-Length line): the last line waits for the next block.
        decided = not block or len(data) - last_newline > _CHUNK
        end = len(data) if decided else max(last_newline, 0)  # newlines before ``end`` start lines judged now
        pos = 0
        while (found := stop_at.search(data, pos, end + 1)) is not None and found.start() < end:
            start = found.start() + 1
            if data[start : start + 1] != b"F" or is_from_line(data[start : start + 400]):
                if headers:
                    length = _last_content_length(data, start, length)
                msg.add_slice(data, virtual, start)
                lines.unread(data[start:])
                return length
            pos = start
        if headers:
            length = _last_content_length(data, end + 1, length)
        if end > virtual:
            msg.add_slice(data, virtual, end)
        if not block:
            return length
        data, virtual = data[end:], max(virtual - end, 0)


def _last_content_length(data: bytes, endpos: int, length: int | None) -> int | None:
    values = _CONTENT_LENGTH_LINE.findall(data, 0, endpos)
    return int(values[-1]) if values else length


def holds_one_message(data: bytes) -> bool:
    """Whether mbox bytes (envelope line first, the whole file) are one message that :func:`iter_mbox` would
    return as all of ``data``: no later envelope line, and no ``Content-Length`` header for it to weigh.

    Cheap (a few scans at C speed), and conservative: ``False`` only sends ``data`` through the splitter.
    """
    if _ANY_CONTENT_LENGTH.search(data):
        return False
    start = data.find(b"\nFrom ")
    while start >= 0:
        # Every line after a newline is at a line start for iter_mbox; is_from_line looks at 400 bytes.
        if is_from_line(data[start + 1 : start + 401]):
            return False
        start = data.find(b"\nFrom ", start + 1)
    return True


def iter_mbox(fh: BinaryIO, max_bytes: int, already_read: bytes = b"") -> Iterator[RawMessage]:
    """Messages of an mbox stream, envelope line included, each capped at ``max_bytes``.

    Messages are separated by envelope lines (``From sender date``); the blank line before
    an envelope (or the end of the file) belongs to the mailbox, not to the message, as
    Python's ``mailbox`` module writes and reads it. A ``Content-Length`` header
    is used when it is honest (mboxcl2 files do not quote ``From `` in bodies). ``>From ``
    lines are kept as stored: the bytes of a message are the bytes in the file.
    ``already_read``: bytes taken from the front of ``fh`` before the call, read first.
    """
    lines = _Lines(fh)
    lines.unread(already_read)
    envelope = lines.readline()
    while envelope:
        msg = _Capped(max_bytes)
        msg.add(envelope)
        length = _scan(lines, msg, envelope.endswith(b"\n"), headers=True)
        line = lines.readline()  # a blank line, an envelope, or the end
        if not line:
            yield msg.message()
            return
        if is_from_line(line):  # a message with no body
            yield msg.message(strip_separator=True)
            envelope = line
            continue
        msg.add(line)
        if length is not None:
            found = _content_length_body(lines, length, max_bytes)
            if found is not None:
                body, envelope = found
                msg.add(body)
                yield msg.message()
                continue
        _scan(lines, msg, True, headers=False)
        yield msg.message(strip_separator=True)
        envelope = lines.readline()

"""Mail containers read as streams: mbox (``From `` separated, with Content-Length) and compressed files.

Everything here works on binary file objects one line (or chunk) at a time, so a
mailbox of any size passes through holding at most one message, itself capped.
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
_CONTENT_LENGTH = re.compile(rb"(?i)content-length:[ \t]*(\d{1,12})[ \t]*\r?$")
_ANY_CONTENT_LENGTH = re.compile(rb"(?i)\ncontent-length:")
_CHUNK = 1 << 16  # longest piece of a line read at once: a megabyte "line" is read in pieces
_BLOCK = 1 << 20  # bytes read at once while skipping the part of a message past its cap
# Past the cap only these lines matter (see _skip_past_cap): a line start that may be an envelope and,
# in the headers, a blank line; and a Content-Length line that fits in one piece of _CHUNK bytes.
_BODY_STOP = re.compile(rb"\n(?=" + _FROM_LINE.pattern + rb")")
_HEADER_STOP = re.compile(rb"\n(?=\r?\n|" + _FROM_LINE.pattern + rb")")
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

    def full(self) -> bool:
        return self.size >= self.limit

    def drop(self, n: int) -> None:
        """Count ``n`` bytes past the cap without looking at them (only once :meth:`full`)."""
        self.dropped += n

    def last_line_blank(self) -> bool:
        return bool(self.parts) and self.parts[-1] in (b"\n", b"\r\n") and not self.dropped

    def message(self, strip_separator: bool = False) -> RawMessage:
        if strip_separator and self.last_line_blank() and len(self.parts) > 1:
            separator = self.parts.pop()
            self.size -= len(separator)
            return RawMessage(b"".join(self.parts), self.dropped, separator)
        return RawMessage(b"".join(self.parts), self.dropped)


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
        if data:
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


def _skip_past_cap(lines: _Lines, msg: _Capped, at_line_start: bool, headers: bool) -> tuple[bool, int | None]:
    """Drop what follows a full message, a block at a time, up to the next line the line loop must see.

    That line is an envelope, or in the headers a blank line; it is left unread. Per line, a message of
    megabytes of newlines took seconds per megabyte; these scans run at C speed. Returns ``at_line_start``
    for the line loop, and the value of the last Content-Length line dropped (headers only), else None.
    """
    stop_at = _HEADER_STOP if headers else _BODY_STOP
    length = None
    data = b"\n" if at_line_start else b""  # a newline before the data marks its start as a line start
    virtual = len(data)
    while True:
        block = lines.read(_BLOCK)
        data += block
        last_newline = data.rfind(b"\n")
        # A line start can be judged once its line is whole, or has _CHUNK bytes (more than the 400 an
        # envelope needs, too long for a Content-Length line): the last line waits for the next block.
        decided = not block or len(data) - last_newline > _CHUNK
        end = len(data) if decided else max(last_newline, 0)  # newlines before ``end`` start lines judged now
        pos = 0
        while (found := stop_at.search(data, pos, end + 1)) is not None and found.start() < end:
            start = found.start() + 1
            if data[start:start + 1] != b"F" or is_from_line(data[start : start + 400]):
                if headers:
                    length = _last_content_length(data, start, length)
                msg.drop(start - virtual)
                lines.unread(data[start:])
                return True, length
            pos = start
        if headers:
            length = _last_content_length(data, end + 1, length)
        msg.drop(end - virtual)
        if not block:
            return True, length
        data, virtual = data[end:], 0


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
        next_envelope = None
        length = None
        at_line_start = envelope.endswith(b"\n")
        # Headers: up to the first blank line, noting Content-Length.
        in_headers = True
        while in_headers:
            line = lines.readline()
            if not line:
                yield msg.message()
                return
            if at_line_start and is_from_line(line):  # a message with no body
                next_envelope = line
                break
            msg.add(line)
            if at_line_start:
                if line in (b"\n", b"\r\n"):
                    in_headers = False
                elif line.endswith(b"\n"):  # a whole line: one longer than a piece is no Content-Length
                    match = _CONTENT_LENGTH.match(line.rstrip(b"\n"))
                    if match:
                        length = int(match.group(1))
            at_line_start = line.endswith(b"\n")
            if in_headers and msg.full():
                at_line_start, seen = _skip_past_cap(lines, msg, at_line_start, headers=True)
                length = length if seen is None else seen
        if next_envelope is None and length is not None:
            found = _content_length_body(lines, length, max_bytes)
            if found is not None:
                body, next_envelope = found
                msg.add(body)
                yield msg.message()
                envelope = next_envelope
                continue
        while next_envelope is None:
            line = lines.readline()
            if not line:
                break
            if at_line_start and is_from_line(line):
                next_envelope = line
                break
            msg.add(line)
            at_line_start = line.endswith(b"\n")
            if msg.full():
                at_line_start, _ = _skip_past_cap(lines, msg, at_line_start, headers=False)
        yield msg.message(strip_separator=True)
        envelope = next_envelope

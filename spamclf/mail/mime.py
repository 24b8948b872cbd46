"""A fast MIME splitter: raw message bytes in, a tree of parts out.

It reads a message the way the standard library's feedparser does with the compat32 policy (the
parser extraction used before), so text extraction sees the same parts, headers and bodies; it is
several times faster because it finds header blocks and boundary lines with bytes searches instead
of handing every line through a chain of Python generators. Header parameters and transfer
encodings are still read by the standard library, so their many quirks stay exactly as they were.

Parts nested deeper than the caller reads are not parsed, so work stays bounded whatever the nesting.
"""

from __future__ import annotations

import email.message
import re

_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")  # feedparser's headerRE
_LINE_BREAK = re.compile(rb"[\r\n]")
# A line break not followed by a continuation line; the line-feed-only one is many times faster.
_FIELD_BREAK = re.compile(rb"(\r\n|\r(?!\n)|\n)(?![ \t])")
_FIELD_BREAK_LF = re.compile(rb"(\n)(?![ \t])")
_BOUNDARY_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\r|\n|\Z)")  # feedparser's boundaryendRE
_ENCODED = frozenset(("quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue"))
_MIME_HEADERS = ("content-type", "content-disposition", "content-transfer-encoding")


class Part:
    """One message or MIME part: its headers, and either its sub-parts (``children``) or its body.

    ``mime`` is a compat32 ``email.message.Message`` holding only the MIME headers, so that content
    type, parameters (RFC 2231 included) and transfer decoding follow the standard library's exact rules.
    """

    __slots__ = ("headers", "mime", "content_type", "maintype", "children", "buf", "start", "end", "last")

    def __init__(self, headers: dict[str, list[bytes]], default_type: str):
        self.headers = headers
        self.mime = email.message.Message()
        self.mime.set_default_type(default_type)
        for name in _MIME_HEADERS:
            for value in headers.get(name, ()):
                self.mime[name] = _header_text(value)
        self.content_type = self.mime.get_content_type()
        self.maintype = self.content_type.split("/")[0]
        self.children: list[Part] | None = None
        self.buf, self.start, self.end = b"", 0, 0
        self.last = self  # the part whose body a following boundary line ends (see _strip_line_break)

    def get(self, name: str) -> str | None:
        """The first ``name`` header, as compat32's ``Message.get`` gives it (8-bit bytes as U+FFFD)."""
        values = self.headers.get(name.lower())
        return _header_text(values[0]) if values else None

    def get_all(self, name: str) -> list[str]:
        """Every ``name`` header, in order."""
        return [_header_text(value) for value in self.headers.get(name.lower(), ())]

    def get_filename(self) -> str | None:
        """compat32's ``get_filename()``. A parameter's name is in its header literally (RFC 2231 pieces
        too), so with no ``name`` in either header there is none to parse."""
        if not self._mentions(b"name", "content-disposition", "content-type"):
            return None
        return self.mime.get_filename()

    def get_content_charset(self) -> str | None:
        """compat32's ``get_content_charset()``, skipping the parameter parsing when there is no ``charset``."""
        if not self._mentions(b"charset", "content-type"):
            return None
        return self.mime.get_content_charset()

    def _mentions(self, word: bytes, *names: str) -> bool:
        return any(word in value.lower() for name in names for value in self.headers.get(name, ()))

    def body(self) -> bytes:
        """The raw body of a leaf part."""
        return self.buf[self.start : self.end]

    def payload(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone, as compat32's ``get_payload(decode=True)``."""
        data = self.body()
        if (self.get("content-transfer-encoding") or "").lower() not in _ENCODED:
            return data
        self.mime.set_payload(data.decode("ascii", "surrogateescape"))
        return self.mime.get_payload(decode=True)


def _header_text(value: bytes) -> str:
    """A raw field value (after the colon, continuation lines included) as compat32 gives it: blanks
    before it and line breaks after it dropped, 8-bit bytes as U+FFFD."""
    return value.lstrip(b" \t").rstrip(b"\r\n").decode("ascii", "replace")


def parse(raw: bytes, max_depth: int) -> Part:
    """The part tree of ``raw``. Parts below ``max_depth`` levels of nesting are left out (their
    container has an empty ``children`` list): nothing reads them."""
    return _parse_part(raw, 0, len(raw), "text/plain", 0, max_depth)


def _parse_part(buf: bytes, start: int, end: int, default_type: str, depth: int, max_depth: int) -> Part:
    """The part in ``buf[start:end]``: its headers, then a message, a multipart, or a leaf body."""
    headers, buf, start, end = _read_headers(buf, start, end)
    part = Part(headers, default_type)
    if part.content_type == "message/delivery-status":
        _parse_header_blocks(part, buf, start, end, depth, max_depth)
    elif part.maintype == "message":
        part.children = []
        if depth < max_depth:
            child = _parse_part(buf, start, end, "text/plain", depth + 1, max_depth)
            part.children.append(child)
            part.last = child.last
    elif part.maintype == "multipart" and (boundary := part.mime.get_boundary()) is not None:
        _parse_multipart(part, boundary, buf, start, end, depth, max_depth)
    else:
        part.buf, part.start, part.end = buf, start, end
    return part


def _read_headers(buf: bytes, start: int, end: int) -> tuple[dict[str, list[bytes]], bytes, int, int]:
    """The header fields at ``buf[start:end]`` (lower-case name -> raw values) and where the body is.

    As in feedparser: the headers end at a blank line (dropped) or at the first line that is not a header
    or continuation line (kept as body); a leading ``From `` envelope line is skipped; a ``From `` line last
    in the block is the first body line (so the body may be a new buffer); continuation lines with no
    field before them are dropped, and so is a line starting with a colon. A regex split cuts the block
    into fields, so Python code runs once per field, not once per line.
    """
    block_end = _blank_line(buf, start, end)
    block = buf[start:block_end]
    parts = (_FIELD_BREAK if b"\r" in block else _FIELD_BREAK_LF).split(block)  # field, line break, field...
    headers: dict[str, list[bytes]] = {}
    envelope = None  # index in parts of a "From " line after the first, while it is the last header line
    for index in range(0, len(parts) if parts[-1] else len(parts) - 1, 2):
        field = parts[index]
        if field[:1] in (b" ", b"\t", b":"):  # a continuation of nothing, or a field with no name
            envelope = None
        elif not _HEADER_LINE.match(field):
            body_start = start + sum(map(len, parts[:index]))
            break
        elif field.startswith(b"From "):
            envelope = index if index and not _LINE_BREAK.search(field) else None
        else:
            name, _, value = field.partition(b":")
            headers.setdefault(name.decode("ascii").lower(), []).append(value)
            envelope = None
    else:
        body_start = block_end + _break_after(buf, block_end, end)  # the blank line is dropped
    if envelope is not None:
        line_start = start + sum(map(len, parts[:envelope]))
        line = b"".join(parts[envelope : envelope + 2])
        if body_start == line_start + len(line):
            body_start = line_start
        else:  # the blank line after it stays dropped
            buf = line + buf[body_start:end]
            body_start, end = 0, len(buf)
    return headers, buf, body_start, end


def _blank_line(buf: bytes, start: int, end: int) -> int:
    """Where the first empty line in ``buf[start:end]`` starts (``end`` if none); ``start`` is a line start.
    A few ``bytes.find`` calls: many times faster than a regex search."""
    if buf[start : start + 1] in (b"\r", b"\n"):
        return start
    at = buf.find(b"\n\n", start, end)
    found = at + 1 if at >= 0 else end
    if buf.find(b"\r", start, found) >= 0:  # carriage returns: the empty line may start or end with one
        for pair in (b"\n\r", b"\r\r"):
            at = buf.find(pair, start, found + 1)
            if at >= 0:
                found = at + 1
    return found


def _break_before(buf: bytes, start: int, end: int) -> int:
    """The length of the line break that ends ``buf[start:end]``: 0, 1 or 2 (CRLF)."""
    if end - start >= 2 and buf.startswith(b"\r\n", end - 2):
        return 2
    return 1 if end > start and buf[end - 1] in b"\r\n" else 0


def _break_after(buf: bytes, start: int, end: int) -> int:
    """The length of the line break that starts ``buf[start:end]``: 0, 1 or 2 (CRLF)."""
    if buf.startswith(b"\r\n", start) and end - start >= 2:
        return 2
    return 1 if start < end and buf[start] in b"\r\n" else 0


def _parse_multipart(part: Part, boundary: str, buf: bytes, start: int, end: int, depth: int, max_depth: int) -> None:
    """The sub-parts of a multipart body, split at its boundary lines as feedparser splits them.

    With no boundary line before the closing one (or none at all), the part is a leaf whose body is
    the text before it. Boundary lines in a row enclose no part. A boundary line ends the body of the
    part before it and takes the line break before it (see :func:`_strip_line_break`).
    """
    lines = _boundary_lines(buf, boundary, start, end)
    line = next(lines, None)
    if line is None or line[2]:
        part.buf, part.start, part.end = buf, start, line[0] if line else end
        return
    part.children = []
    default_type = "message/rfc822" if part.content_type == "multipart/digest" else "text/plain"
    while depth < max_depth and line is not None and not line[2]:
        after = line[1]
        line = next(lines, None)
        while line is not None and line[0] == after:
            after = line[1]
            line = next(lines, None)
        child = _parse_part(buf, after, line[0] if line else end, default_type, depth + 1, max_depth)
        _strip_line_break(child.last)
        part.children.append(child)


def _boundary_lines(buf: bytes, boundary: str, start: int, end: int):
    """``(line start, next line start, closing?)`` of each boundary line in ``buf[start:end]``: ``--boundary``
    at the start of a line, then ``--`` on the closing one, then only blanks. ``start`` is a line start.

    Two searches, for the boundary after a line feed and after a lone carriage return, each only moving
    forward: linear time whatever the input.
    """
    if not boundary.isascii() or "\n" in boundary or "\r" in boundary:
        return  # 8-bit bytes in the header (read as U+FFFD), or a folded one: no body line can match
    sep = b"--" + boundary.encode("ascii")
    needles = (b"\n" + sep, b"\r" + sep)
    found = [buf.find(needle, max(start - 1, 0), end) for needle in needles]
    while max(found) >= 0:
        which = 0 if found[1] < 0 or 0 <= found[0] < found[1] else 1
        line = found[which] + 1
        found[which] = buf.find(needles[which], line, end)
        tail = _BOUNDARY_TAIL.match(buf, line + len(sep), end)
        if tail:
            yield line, tail.end(), tail.group(1) is not None


def _strip_line_break(part: Part) -> None:
    """Drop one line break at the end of the body of ``part``: it belongs to the boundary line after it.

    Feedparser does this to the last part it created before the boundary (the innermost last part of a
    message/rfc822 part, say); not to multipart parts, whose trailing line breaks stay in their epilogue.
    """
    if part.children is None and part.maintype != "multipart":
        part.end -= _break_before(part.buf, part.start, part.end)


def _parse_header_blocks(part: Part, buf: bytes, start: int, end: int, depth: int, max_depth: int) -> None:
    """The blocks of a message/delivery-status body: header blocks separated by blank lines, each
    read as a message of its own, as feedparser reads them."""
    part.children = []
    while depth < max_depth:
        block_end = _blank_line(buf, start, end)
        child = _parse_part(buf, start, block_end, "text/plain", depth + 1, max_depth)
        part.children.append(child)
        part.last = child.last
        start = block_end + _break_after(buf, block_end, end)
        if start >= end:
            return

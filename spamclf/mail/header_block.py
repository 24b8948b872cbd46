"""The header block of a raw message, as bytes: where it ends, its line ending, and our own fields in it.

The header block is what procmail and maildrop match header rules against: every line up to
the first empty one (or the whole message when there is none), whatever those lines hold -- a
line that is not a header, a malformed field name, a leading space, an mbox ``From `` line. So
a forged field after such a line is renamed too, and ours are read where we put them. An empty
line is ``LF`` or ``CRLF`` alone (procmail alone reads on past a ``CRLF`` one; MTAs hand it mail
with ``LF`` endings). A field name is also renamed where it follows a bare CR inside the block:
a reader that takes CR for a line break (Python's ``email``) must not see a forgery either.
"""

from __future__ import annotations

import functools
import re

DEFAULT_PREFIX = "X-Spam"
FORGED_PREFIX = "X-Forged-"


def line_ending(raw: bytes) -> bytes:
    """The message's line ending, from its first line: CRLF or LF; CR for a message with no LF at all
    but a CR (LF when there is no line at all)."""
    end = raw.find(b"\n")
    if end < 0:
        return b"\r" if b"\r" in raw else b"\n"
    return b"\r\n" if end > 0 and raw[end - 1 : end] == b"\r" else b"\n"


# An empty line, at the start or after a line end. A lone CR that ends the message counts: the line
# end we add after it would make it one, with our headers past the block. With LF line ends it is
# looked for as the line end before it and then itself: a pattern that starts with a byte is found
# by a fast scan, where a look-behind would be tried at every offset of the message.
_EMPTY_FIRST_LINE = re.compile(rb"\r?(?:\n|\Z)")
_EMPTY_LINE_AFTER_LF = re.compile(rb"\n(\r?(?:\n|\Z))")
_EMPTY_LINE_CR = re.compile(rb"(?<![^\r])\r")


def header_end(raw: bytes) -> int:
    """Offset where the header block ends: the start of its first empty line, or the end of the message.

    Every line before it is header, as procmail and maildrop read it: a line that is not a field
    does not end the block (a leading mbox ``From `` line is one of them).
    """
    if line_ending(raw) == b"\r":
        found = _EMPTY_LINE_CR.search(raw)
        return found.start() if found else len(raw)
    if _EMPTY_FIRST_LINE.match(raw):
        return 0
    found = _EMPTY_LINE_AFTER_LF.search(raw)
    return found.start(1) if found else len(raw)


def rename_forged(header: bytes, prefix: str) -> bytes:
    """Rename every field of the header block ``header`` whose name starts with ``prefix-``
    (case-insensitive) to ``X-Forged-...``, where a line starts: after LF, or after a bare CR.

    Only the name changes; the value, folded continuation lines and line endings stay byte for byte.
    """
    wanted = re.escape((prefix + "-").encode("ascii"))
    forged = re.compile(rb"(?<![^\r\n])" + wanted + rb"(?=[\x21-\x39\x3b-\x7e]*[ \t]*:)", re.IGNORECASE)
    renamed = FORGED_PREFIX.encode("ascii") + (prefix[2:] if prefix[:2].lower() == "x-" else prefix).encode("ascii") + b"-"
    return forged.sub(lambda _: renamed, header)


@functools.lru_cache(maxsize=8)
def _own_field(prefix: str) -> re.Pattern:
    """A header line that is one of ours (``prefix-...:``) or the forged one renamed (``X-Forged-...:``)."""
    forged = FORGED_PREFIX + (prefix[2:] if prefix[:2].lower() == "x-" else prefix)
    names = b"|".join(re.escape((name + "-").encode("ascii")) for name in (prefix, forged))
    return re.compile(rb"(?:" + names + rb")[\x21-\x39\x3b-\x7e]*[ \t]*:", re.IGNORECASE)


def strip_own_headers(raw: bytes, prefix: str = DEFAULT_PREFIX) -> bytes:
    """``raw`` without the fields filter mode adds (``X-Spam-*``) or renames (``X-Forged-Spam-*``),
    their folded continuation lines included: a message learns the same whether it was filtered or not.

    Only the header block changes; every other byte stays as it was.
    """
    cut = header_end(raw)
    own = _own_field(prefix)
    if own.search(raw, 0, cut) is None:  # none anywhere in the block, so none where a line starts
        return raw
    kept, dropping = [], False
    for line in raw[:cut].splitlines(keepends=True):
        if dropping and line[:1] in (b" ", b"\t"):
            continue
        dropping = own.match(line) is not None
        if not dropping:
            kept.append(line)
    return b"".join(kept) + raw[cut:]


_MESSAGE_ID = re.compile(rb"message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE)


def message_key(raw: bytes, prefix: str = DEFAULT_PREFIX) -> str:
    """A message's identity for learning: its Message-ID with the SHA-256 of its body, or, without a
    Message-ID, the SHA-256 of the whole message; an mbox envelope line (``From ...``) and our own
    header fields removed and line endings read as LF first. 32 hex digits."""
    import hashlib

    if raw.startswith(b"From "):  # the envelope an mbox adds: a message learns the same from any mailbox
        newline = raw.find(b"\n")
        raw = raw[newline + 1 :] if newline >= 0 else b""
    raw = strip_own_headers(raw, prefix).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    cut = header_end(raw)
    header, body = raw[:cut], raw[cut:]
    found = next((m for m in _MESSAGE_ID.finditer(header) if m.start() == 0 or header[m.start() - 1 : m.start()] == b"\n"), None)
    if found is not None and found.group(1).split():
        what = b"message-id " + b" ".join(found.group(1).split()) + b"\n" + hashlib.sha256(body).digest()
    else:
        what = b"message " + header.rstrip(b"\n") + b"\n" + body
    return hashlib.sha256(what).hexdigest()[:32]

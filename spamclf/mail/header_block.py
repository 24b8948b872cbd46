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
# end we add after it would make it one, with our headers past the block.
_EMPTY_LINE = {b"\n": re.compile(rb"(?<![^\n])\r?(?:\n|\Z)"), b"\r": re.compile(rb"(?<![^\r])\r")}


def header_end(raw: bytes) -> int:
    """Offset where the header block ends: the start of its first empty line, or the end of the message.

    Every line before it is header, as procmail and maildrop read it: a line that is not a field
    does not end the block (a leading mbox ``From `` line is one of them).
    """
    found = _EMPTY_LINE[line_ending(raw)[-1:]].search(raw)
    return found.start() if found else len(raw)


def rename_forged(header: bytes, prefix: str) -> bytes:
    """Rename every field of the header block ``header`` whose name starts with ``prefix-``
    (case-insensitive) to ``X-Forged-...``, where a line starts: after LF, or after a bare CR.

    Only the name changes; the value, folded continuation lines and line endings stay byte for byte.
    """
    wanted = re.escape((prefix + "-").encode("ascii"))
    forged = re.compile(rb"(?<![^\r\n])" + wanted + rb"(?=[\x21-\x39\x3b-\x7e]*[ \t]*:)", re.IGNORECASE)
    renamed = FORGED_PREFIX.encode("ascii") + (prefix[2:] if prefix[:2].lower() == "x-" else prefix).encode("ascii") + b"-"
    return forged.sub(lambda _: renamed, header)


def _own_field(prefix: str) -> re.Pattern:
    """A field of the header block named ``prefix-*`` or its ``X-Forged-`` rename, with its folded lines."""
    renamed = FORGED_PREFIX + (prefix[2:] if prefix[:2].lower() == "x-" else prefix)
    names = b"|".join(re.escape((p + "-").encode("ascii")) for p in (prefix, renamed))
    return re.compile(rb"(?:(?<=\n)|(?<=\r)|^)(?:" + names + rb")[\x21-\x39\x3b-\x7e]*[ \t]*:[^\r\n]*(?:\r\n|\n|\r)?(?:[ \t][^\r\n]*(?:\r\n|\n|\r)?)*", re.IGNORECASE)


def strip_own_headers(raw: bytes, prefix: str = DEFAULT_PREFIX) -> bytes:
    """``raw`` without the fields filter mode adds (``X-Spam-*``) or renames (``X-Forged-Spam-*``) in its
    header block, folded lines included: a message learns the same whether or not it was filtered first."""
    cut = header_end(raw)
    return _own_field(prefix).sub(b"", raw[:cut]) + raw[cut:]


_MESSAGE_ID = re.compile(rb"(?:^|\n)message-id[ \t]*:[ \t]*(?:\r?\n[ \t]+)?([^\r\n]*)", re.IGNORECASE)


def message_key(raw: bytes) -> str:
    """A message's identity for learning: its Message-ID (if any) and the SHA-256 of its body (what follows
    the header block), both of ``strip_own_headers(raw)``: re-delivered or filtered copies share it."""
    import hashlib

    raw = strip_own_headers(raw)
    cut = header_end(raw)
    found = _MESSAGE_ID.search(raw[:cut])
    message_id = found.group(1).strip().decode("ascii", "replace") if found else ""
    return f"{message_id} {hashlib.sha256(raw[cut:]).hexdigest()}"

"""Text from outside (file names, messages' own words in error reasons) made safe to print on a terminal."""

from __future__ import annotations

import re

# Control characters, the Unicode line and paragraph separators (a file name may hold any of them),
# and surrogates: the bytes of a name that are not valid UTF-8, as os.fsdecode gives them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``new\\nline.eml``), so that a hostile file
    name can neither break a one-line-per-item listing nor send escape sequences to a terminal. A
    byte of a name that is not valid UTF-8 is written ``\\xff``, so the result always encodes.

    For human-readable output (the table, stderr's log lines); CSV and JSON Lines keep names exactly,
    and their own quoting keeps rows apart (see ``output``).
    """
    return _CONTROL.sub(lambda m: _escape(m.group()), text)

"""Text from outside (file names, messages' own words in error reasons) made safe to print on a terminal."""

from __future__ import annotations

import re

# Control characters, and the Unicode line and paragraph separators: a file name may hold any of them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``new\\nline.eml``), so that a hostile file
    name can neither break a one-line-per-item listing nor send escape sequences to a terminal.

    For human-readable output (the table, stderr's log lines); CSV and JSON Lines keep names exactly,
    and their own quoting keeps rows apart.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)

"""JSON Lines records and CSV lines that stay valid whatever the names in them hold.

CSV and JSON Lines are always valid UTF-8 (whatever the locale), and a number is always finite.
File names are kept exactly, but for the bytes of a name that are not valid UTF-8 (on Linux a
name is any bytes; Python holds them as ``surrogateescape`` characters). These follow ripgrep's
``--json`` convention of base64 for such bytes, in a way that keeps each format's columns and the
``path`` key a plain string:

- JSON Lines: ``path`` is the name with each such byte as U+FFFD, and ``path_bytes`` beside it
  holds the exact bytes of the name in base64 (only in rows whose name needs it).
- CSV: the ``path`` cell is ``base64:`` followed by the base64 of the exact bytes; a name that
  itself begins with ``base64:`` is written that way too, so every cell reads back one way.
  A cell holding a CR is quoted, as one holding a newline or a comma is.

Other text in a record (an error's reason) has such bytes as U+FFFD.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from typing import Iterable

CSV_BYTES_PREFIX = "base64:"


def utf8_text(text: str) -> tuple[str, bytes | None]:
    """``text`` as valid Unicode, with U+FFFD for each byte that is not valid UTF-8, and those exact
    bytes (``None`` when the text was valid already)."""
    try:
        text.encode("utf-8")
        return text, None
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte (a JSON table's "\\ud800")
        raw = text.encode("utf-8", "surrogatepass")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), raw


def _clean(value):
    """``value`` with every string valid Unicode and every non-finite float ``None``: what JSON can hold."""
    if isinstance(value, str):
        return utf8_text(value)[0]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def json_record(doc: dict) -> str:
    """One JSON Lines record (no newline): valid UTF-8, finite numbers, and ``path_bytes`` after
    ``path`` when the path is not valid UTF-8."""
    out = {}
    for key, value in doc.items():
        if key == "path" and isinstance(value, str):
            text, raw = utf8_text(value)
            out["path"] = text
            if raw is not None:
                out["path_bytes"] = base64.b64encode(raw).decode("ascii")
        else:
            out[key] = _clean(value)
    return json.dumps(out, ensure_ascii=False, allow_nan=False)


def csv_path(path: str) -> str:
    """A path as a CSV cell: the name itself, or ``base64:`` and its exact bytes (see the module's notes)."""
    text, raw = utf8_text(path)
    if raw is None and not text.startswith(CSV_BYTES_PREFIX):
        return text
    return CSV_BYTES_PREFIX + base64.b64encode(path.encode("utf-8", "surrogateescape") if raw is None else raw).decode("ascii")


class CsvLines:
    """CSV lines ending in ``\\n`` whose cells are always valid UTF-8 and whose rows a reader cannot
    split: Python quotes only the characters of the line terminator, and readers also end a row at
    a bare CR, so a row with a CR in a cell is written fully quoted."""

    def __init__(self) -> None:
        self._text = io.StringIO()
        self._plain = csv.writer(self._text, lineterminator="\n")
        self._quoted = csv.writer(self._text, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def line(self, cells: Iterable) -> str:
        cells = [utf8_text(c)[0] if isinstance(c, str) else c for c in cells]
        self._text.seek(0)
        self._text.truncate()
        (self._quoted if any(isinstance(c, str) and "\r" in c for c in cells) else self._plain).writerow(cells)
        return self._text.getvalue()

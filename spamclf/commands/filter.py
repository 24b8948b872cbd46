"""Mail-filter mode: one message in, the same message out with spam headers added, and a verdict as exit status.

This is how bogofilter and SpamAssassin plug into procmail, maildrop or a Postfix pipe.
The message is handled as bytes from start to end: it is never decoded and re-encoded,
so every original byte stays as it was, line endings included. The only changes:

- our three headers (``X-Spam-Flag``, ``X-Spam-Score``, ``X-Spam-Status`` by default) are
  added at the end of the header block, with the message's own line ending;
- headers already present whose name starts with our prefix (``X-Spam-``) -- which a
  spammer can forge, e.g. ``X-Spam-Flag: NO`` -- are renamed to ``X-Forged-Spam-...``
  (the ``X-`` of the prefix is replaced): kept for the record, never mistaken for ours.

Whatever goes wrong (a broken models directory, a bug), the message is passed through
unchanged and the exit status is 3: a filter must never eat mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import SpamclfError

EXIT_SPAM, EXIT_HAM, EXIT_UNSURE, EXIT_ERROR = 0, 1, 2, 3
EXIT_BY_LABEL = {"spam": EXIT_SPAM, "ham": EXIT_HAM, "unsure": EXIT_UNSURE}
DEFAULT_PREFIX = "X-Spam"
FORGED_PREFIX = "X-Forged-"

_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")  # RFC 5322 field name (any printable but ':') then ':'
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


@dataclass(frozen=True)
class FilterOptions:
    """How to label and which headers to write."""

    threshold: float | None = None  # the spam cutoff; None: the bundle's threshold
    ham_cutoff: float | None = None  # None: no unsure band
    header_prefix: str = DEFAULT_PREFIX
    exit_zero: bool = False

    def header_names(self) -> tuple[str, str, str]:
        if not _PREFIX.fullmatch(self.header_prefix):
            raise SpamclfError(f"header prefix {self.header_prefix!r} must be letters, digits and '-', like X-Spam")
        return (f"{self.header_prefix}-Flag", f"{self.header_prefix}-Score", f"{self.header_prefix}-Status")


@dataclass
class FilterResult:
    """The message to write out, the verdict, and the exit status that goes with it."""

    output: bytes
    label: str | None
    score: float | None
    exit_code: int
    error: str | None = None


def line_ending(raw: bytes) -> bytes:
    """The message's line ending, from its first line: CRLF or LF (LF when there is no line at all)."""
    end = raw.find(b"\n")
    return b"\r\n" if end > 0 and raw[end - 1 : end] == b"\r" else b"\n"


def header_end(raw: bytes) -> int:
    """Offset where the header block ends: the start of the blank line, of the first line that is not
    a header, or the end of the message. A leading mbox ``From `` line counts as part of the block."""
    pos = 0
    first = True
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        end = len(raw) if nl < 0 else nl + 1
        line = raw[pos:end]
        if line in (b"\n", b"\r\n"):
            return pos
        is_header = _FIELD.match(line) or (not first and line[:1] in (b" ", b"\t")) or (first and line.startswith(b"From "))
        if not is_header:
            return pos
        first = False
        pos = end
    return pos


def rename_forged(header: bytes, prefix: str) -> bytes:
    """Rename every header whose name starts with ``prefix-`` (case-insensitive) to ``X-Forged-...``.

    Only the name changes; the value, folded continuation lines and line endings stay byte for byte.
    """
    wanted = (prefix + "-").lower().encode("ascii")
    renamed = FORGED_PREFIX.encode("ascii") + (prefix[2:] if prefix[:2].lower() == "x-" else prefix).encode("ascii") + b"-"
    out = []
    at_line_start = True
    for line in header.splitlines(keepends=True):
        if at_line_start and line[: len(wanted)].lower() == wanted and _FIELD.match(line):
            line = renamed + line[len(wanted) :]
        out.append(line)
        at_line_start = line.endswith(b"\n")
    return b"".join(out)


def add_headers(raw: bytes, fields: list[tuple[str, str]], prefix: str = DEFAULT_PREFIX) -> bytes:
    """``raw`` with forged ``prefix-*`` headers renamed and ``fields`` added at the end of its header block."""
    eol = line_ending(raw)
    cut = header_end(raw)
    head, rest = raw[:cut], raw[cut:]
    head = rename_forged(head, prefix)
    if head and not head.endswith(b"\n"):
        head += eol  # a message that is all header and no final newline
    added = b"".join(f"{name}: {value}".encode("ascii") + eol for name, value in fields)
    if not head and rest and not rest.startswith((b"\n", b"\r\n")):
        added += eol  # no header block at all: ours becomes one, the text stays the body
    return head + added + rest


def verdict_fields(label: str, score: float, cutoffs: tuple[float, float], bundle_id: str, names: tuple[str, str, str]) -> list[tuple[str, str]]:
    """The three header fields for a verdict, SpamAssassin-style."""
    ham_cutoff, spam_cutoff = cutoffs
    status = {"spam": "Yes", "ham": "No", "unsure": "Unsure"}[label]
    detail = f"score={score:.6f} threshold={spam_cutoff:.6f}"
    if ham_cutoff < spam_cutoff:
        detail += f" ham_cutoff={ham_cutoff:.6f}"
    flag, score_name, status_name = names
    return [
        (flag, "YES" if label == "spam" else "NO"),
        (score_name, f"{score:.6f}"),
        (status_name, f"{status}, {detail} model={bundle_id}"),
    ]


def filter_message(clf, raw: bytes, options: FilterOptions = FilterOptions()) -> FilterResult:
    """Score ``raw`` with a loaded Classifier and return it with headers added. Raises on a bad option."""
    names = options.header_names()
    cutoffs = clf.cutoffs(options.threshold, options.ham_cutoff)
    # Score at most what extraction would read from a file; pass every byte through regardless.
    score = float(clf.score_messages([raw[: clf.options.max_bytes]])[0])
    label = clf.label(score, options.threshold, options.ham_cutoff)
    fields = verdict_fields(label, score, cutoffs, clf.bundle.bundle_id, names)
    output = add_headers(raw, fields, options.header_prefix)
    code = 0 if options.exit_zero else EXIT_BY_LABEL[label]
    return FilterResult(output=output, label=label, score=score, exit_code=code)


def run_filter(models_dir: str | Path, raw: bytes, options: FilterOptions = FilterOptions()) -> FilterResult:
    """Load ``models_dir`` and filter ``raw``. Never raises: on any error the message comes back unchanged, exit 3."""
    try:
        from .predict import Classifier

        return filter_message(Classifier.load(models_dir), raw, options)
    except Exception as exc:  # noqa: BLE001 -- a filter must pass mail through whatever failed
        return FilterResult(output=raw, label=None, score=None, exit_code=EXIT_ERROR, error=_one_line(exc))


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if isinstance(exc, SpamclfError) else f"{exc.__class__.__name__}: {text}"


def pass_through(stdin: BinaryIO, stdout: BinaryIO) -> str | None:
    """Copy the message on ``stdin`` to ``stdout`` unchanged, as it comes (memory bounded): what a
    filter does when it cannot even start, its command line wrong. Returns what went wrong, or None."""
    import shutil

    try:
        shutil.copyfileobj(stdin, stdout)
        stdout.flush()
    except OSError as exc:
        return f"cannot pass the message through: {exc.strerror or exc}"
    return None


def filter_stream(models_dir: str | Path, stdin: BinaryIO, stdout: BinaryIO, options: FilterOptions = FilterOptions()) -> FilterResult:
    """Filter mode end to end: read all of ``stdin``, filter it, write it to ``stdout``. Never raises.

    The message is read before the models directory is touched, so that whatever fails
    later, the message can still be written out unchanged.
    """
    try:
        raw = stdin.read()
    except OSError as exc:
        return FilterResult(output=b"", label=None, score=None, exit_code=EXIT_ERROR, error=f"cannot read the message: {exc}")
    result = run_filter(models_dir, raw, options)
    try:
        stdout.write(result.output)
        stdout.flush()
    except OSError as exc:
        result.exit_code, result.error = EXIT_ERROR, f"cannot write the message: {exc.strerror or exc}"
    return result

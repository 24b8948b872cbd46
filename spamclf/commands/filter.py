"""Mail-filter mode: one message in, the same message out with spam headers added, and a verdict as exit status.

This is how bogofilter and SpamAssassin plug into procmail, maildrop or a Postfix pipe.
The message is handled as bytes from start to end: it is never decoded and re-encoded,
so every original byte stays as it was, line endings included. The only changes:

- our three headers (``X-Spam-Flag``, ``X-Spam-Score``, ``X-Spam-Status`` by default) are
  added at the end of the header block, with the message's own line ending;
- headers in the header block whose name starts with our prefix (``X-Spam-``) -- which a
  spammer can forge, e.g. ``X-Spam-Flag: NO`` -- are renamed to ``X-Forged-Spam-...``
  (the ``X-`` of the prefix is replaced): kept for the record, never mistaken for ours.

The header block is what procmail and maildrop read as one (``mail.header_block``).

A message with no LF at all but CR line endings (old Mac style) is CR-terminated: its header
block ends at its first empty line (CR CR) and our headers get CR endings. The MDAs, which
split lines on LF only, see such a message as one line and our headers in it at no line start;
the exit status still carries the verdict.

Whatever goes wrong (a broken models directory, a bug), the message is passed through
unchanged and the exit status is 3: a filter must never eat mail. With stdin closed there is
no message, with stdout closed none can be delivered: one error line and status 3 too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import EXIT_BY_LABEL, EXIT_ERROR, EXIT_HAM, EXIT_SPAM, EXIT_UNSURE, SpamclfError  # noqa: F401 -- filter mode's statuses
from ..mail.header_block import DEFAULT_PREFIX, header_end, line_ending, rename_forged

NO_STDOUT = "stdout is closed"

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


def add_headers(raw: bytes, fields: list[tuple[str, str]], prefix: str = DEFAULT_PREFIX) -> bytes:
    """``raw`` with forged ``prefix-*`` headers renamed and ``fields`` added at the end of its header block."""
    eol = line_ending(raw)
    cut = header_end(raw)
    head, rest = rename_forged(raw[:cut], prefix), raw[cut:]
    if head and not head.endswith(eol[-1:]):
        head += eol  # a message that is all header and no final line ending
    added = b"".join(f"{name}: {value}".encode("ascii") + eol for name, value in fields)
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


def pass_through(stdin: BinaryIO, stdout: BinaryIO | None) -> str | None:
    """Copy the message on ``stdin`` to ``stdout`` unchanged, as it comes (memory bounded): what a
    filter does when it cannot even start, its command line wrong. Returns what went wrong, or None."""
    import shutil

    if stdout is None:
        return f"cannot pass the message through: {NO_STDOUT}"
    try:
        shutil.copyfileobj(stdin, stdout)
        stdout.flush()
    except OSError as exc:
        return f"cannot pass the message through: {exc.strerror or exc}"
    return None


def filter_stream(
    models_dir: str | Path, stdin: BinaryIO | None, stdout: BinaryIO | None, options: FilterOptions = FilterOptions()
) -> FilterResult:
    """Filter mode end to end: read all of ``stdin``, filter it, write it to ``stdout``. Never raises.

    The message is read before the models directory is touched, so that whatever fails
    later, the message can still be written out unchanged. A stream that is None (the process
    was started with it closed) is an error: no message to read, or nowhere to deliver it.
    """
    if stdin is None or stdout is None:
        problem = "no message to filter: stdin is closed" if stdin is None else f"cannot deliver the message: {NO_STDOUT}"
        return FilterResult(output=b"", label=None, score=None, exit_code=EXIT_ERROR, error=problem)
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

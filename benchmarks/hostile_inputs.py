"""Time bounds of extraction on hostile input (issue 3): the worst case per message, measured.

The cases are those of tests/mail/test_hostile_inputs.py, plus the largest sizes the default caps allow
(10 MB). Each is timed alone, best of three. Then the reading of hostile files (issue 17):
inputs far past the cap, read with the default caps, each timed once. Usage::

    python -m benchmarks.hostile_inputs

prints one line per case and the slowest; exits 1 if any extraction takes more than 1 second,
or any file more than 10.
"""

from __future__ import annotations

import base64
import csv
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

from spamclf.mail.extract import extract
from spamclf.mail.sources import iter_inputs

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "mail"))
from test_hostile_inputs import HOSTILE, multipart  # noqa: E402

LIMIT_S = 1.0
READ_LIMIT_S = 10.0
ENVELOPE = b"From a@b Mon Jan  1 00:00:00 2001\n"

CASES = dict(HOSTILE)
CASES.update(
    {
        "10MB_of_parts": multipart(220_000)[:10_000_000],
        "10MB_base64_attachment": b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\n"
        b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" + base64.encodebytes(os.urandom(7_300_000)) + b"--b--\n",
        "10MB_cr_only_multipart": b"Content-Type: multipart/mixed; boundary=b\r\r--b\r\r" + b"w\r" * 5_000_000,
        "10MB_html_tags": b"Content-Type: text/html\n\n" + b"<b>x</b>" * 1_250_000,
        "10MB_lt_run": b"Content-Type: text/html\n\n" + b"<" * 10_000_000,
        "10MB_nul": b"\x00" * 10_000_000,
        "10MB_binary": os.urandom(10_000_000),
    }
)


def write_files(folder: Path, megabytes: int = 1024) -> dict[str, Path]:
    """Files far past the caps: an mbox whose first message is ``megabytes`` MB of empty lines, gzipped
    (1 MB per GB), and a CSV row with a 45-million-character cell; each followed by a small message."""
    box = folder / "empty_lines.mbox.gz"
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    with open(box, "wb") as fh:
        fh.write(packer.compress(ENVELOPE + b"Subject: huge\n\n"))
        for _ in range(megabytes):
            fh.write(packer.compress(b"\n" * (1 << 20)))
        fh.write(packer.compress(b"\n" + ENVELOPE + b"Subject: small\n\nhello\n") + packer.flush())
    table = folder / "big_cell.csv"
    with open(table, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text",), ("Subject: big\n\n" + "money " * 7_500_000,), ("after",)])
    return {f"{megabytes}MB_of_empty_lines.mbox.gz": box, "45M_character_csv_cell": table}


def main() -> int:
    worst = ("", 0.0)
    for name, raw in CASES.items():
        best = min(_timed(raw) for _ in range(3))
        worst = max(worst, (name, best), key=lambda t: t[1])
        print(f"{name:28s} {len(raw):>10,d} bytes {best:7.3f} s", flush=True)
    print(f"slowest: {worst[0]} {worst[1]:.3f} s (limit {LIMIT_S} s)")
    slowest_read = ("", 0.0)
    with tempfile.TemporaryDirectory() as folder:
        for name, path in write_files(Path(folder)).items():
            start = time.perf_counter()
            items = sum(1 for _ in iter_inputs([path], 10_000_000))
            took = time.perf_counter() - start
            slowest_read = max(slowest_read, (name, took), key=lambda t: t[1])
            print(f"{name:28s} {path.stat().st_size:>10,d} bytes {took:7.3f} s ({items} items)", flush=True)
    print(f"slowest file: {slowest_read[0]} {slowest_read[1]:.3f} s (limit {READ_LIMIT_S} s)")
    return 0 if worst[1] <= LIMIT_S and slowest_read[1] <= READ_LIMIT_S else 1


def _timed(raw: bytes) -> float:
    start = time.perf_counter()
    extract(raw)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())

"""Time bounds of extraction on hostile input (issue 3): the worst case per message, measured.

The cases are those of tests/test_hostile.py, plus the largest sizes the default caps allow
(10 MB). Each is timed alone, best of three. Usage::

    python -m benchmarks.hostile_inputs

prints one line per case and the slowest; exits 1 if any case takes more than 1 second.
"""

from __future__ import annotations

import base64
import os
import sys
import time

from spamclf.mail.extract import extract

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_hostile import HOSTILE, multipart  # noqa: E402

LIMIT_S = 1.0

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


def main() -> int:
    worst = ("", 0.0)
    for name, raw in CASES.items():
        best = min(_timed(raw) for _ in range(3))
        worst = max(worst, (name, best), key=lambda t: t[1])
        print(f"{name:28s} {len(raw):>10,d} bytes {best:7.3f} s", flush=True)
    print(f"slowest: {worst[0]} {worst[1]:.3f} s (limit {LIMIT_S} s)")
    return 0 if worst[1] <= LIMIT_S else 1


def _timed(raw: bytes) -> float:
    start = time.perf_counter()
    extract(raw)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())

"""Streaming benchmark: reading and classifying one large gzipped mbox, peak memory and time.

Builds a deterministic mbox of short messages (words drawn with a fixed seed from the bundled
``data/sample`` mail, so it needs no corpus), gzips it, then measures two whole processes with
``os.wait4``: reading every message of it (``sources.iter_inputs``) and ``spamclf predict
--format csv`` over it with the given models directory. Usage::

    python -m benchmarks.streaming --models DIR [--messages 100000]

prints a table, writes benchmarks/results/streaming-<time>.json (and streaming-latest.json).
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import tempfile
from pathlib import Path

from .common import ROOT, machine, measure, spamclf_cmd, table, write_results

_READ = "from spamclf.mail.sources import iter_inputs; print(sum(1 for _ in iter_inputs([{box!r}], 10_000_000)))"


def build_mbox(path: Path, messages: int, seed: int = 1) -> int:
    """Write ``messages`` short messages as a gzipped mbox at ``path``; returns the uncompressed size."""
    rng = random.Random(seed)
    words = sorted({w for p in sorted((ROOT / "data" / "sample").rglob("*.txt")) for w in p.read_text("latin-1").split() if w.isalpha()})
    size = 0
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
        for i in range(messages):
            body = " ".join(rng.choices(words, k=120))
            lines = "\n".join(body[j : j + 72] for j in range(0, len(body), 72))
            sender = f"sender{i % 977}@example.com"
            msg = (
                f"From {sender} Mon Jan  1 00:00:00 2024\nFrom: Sender {i % 977} <{sender}>\nTo: user@example.org\n"
                f"Subject: message {i} {rng.choice(words)}\nMessage-ID: <{i}@example.com>\n"
                f"Date: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: text/plain; charset=us-ascii\n\n{lines}\n\n"
            ).encode()
            size += len(msg)
            out.write(msg)
    return size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="models directory to classify with")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spamclf-streaming-") as work:
        box = Path(work) / "box.mbox.gz"
        size = build_mbox(box, args.messages)
        read = measure([sys.executable, "-c", _READ.format(box=str(box))])
        predict = measure(spamclf_cmd("predict", "--models", str(Path(args.models).resolve()), "--format", "csv", str(box)))
        compressed = box.stat().st_size
    doc = {
        "machine": machine(),
        "messages": args.messages,
        "mbox_bytes": size,
        "gzip_bytes": compressed,
        "read": read,
        "predict": {**predict, "messages_per_s": args.messages / predict["wall_s"]},
    }
    rows = [
        [f"read {args.messages} messages ({size / 1e6:.0f} MB, {compressed / 1e6:.0f} MB gzipped)", f"{read['wall_s']:.2f}", f"{read['peak_rss_mib']:.0f}"],
        ["spamclf predict --format csv over it", f"{predict['wall_s']:.2f}", f"{predict['peak_rss_mib']:.0f}"],
    ]
    print(table(rows, ["", "wall s", "peak MiB"]))
    print(f"\nresults: {write_results('streaming', doc)}")


if __name__ == "__main__":
    main()

"""The streaming benchmark's mbox: deterministic, and every message in it is read back."""

from __future__ import annotations

from benchmarks.streaming import build_mbox
from spamclf.mail.sources import iter_inputs


def test_the_mbox_is_the_same_every_time_and_reads_back_whole(tmp_path):
    first, second = tmp_path / "a.mbox.gz", tmp_path / "b.mbox.gz"
    size = build_mbox(first, 50)
    assert build_mbox(second, 50) == size and first.read_bytes() == second.read_bytes()
    items = list(iter_inputs([str(first)], 10_000_000))
    assert len(items) == 50 and all(item.error is None for item in items)
    assert sum(len(item.raw) for item in items) <= size and b"Subject: message 49 " in items[-1].raw

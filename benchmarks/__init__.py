"""Speed and accuracy benchmarks: ``make bench`` and ``make accuracy`` (see benchmarks/README.md)."""

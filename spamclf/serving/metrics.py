"""The daemon's counters, and ``GET /metrics`` in Prometheus' text format (version 0.0.4).

Written here rather than with ``prometheus_client``: a handful of counters and one histogram, all in
the one daemon process (the scoring workers count nothing), need no dependency.
"""

from __future__ import annotations

from collections import Counter

# Request latency buckets, in seconds: a scored message takes milliseconds, a hostile one up to the time limit.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(**labels) -> str:
    def escape(v) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter = Counter()  # (endpoint, status) -> count
        self.verdicts: Counter = Counter()  # label -> count
        self.errors: Counter = Counter()  # (endpoint, kind) -> count
        self.latency: dict[str, list] = {}  # endpoint -> [bucket counts..., sum, count]

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[endpoint, status] += 1
        row = self.latency.setdefault(endpoint, [0] * len(BUCKETS) + [0.0, 0])
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                row[i] += 1
        row[-2] += seconds
        row[-1] += 1

    def error(self, endpoint: str, kind: str) -> None:
        self.errors[endpoint, kind] += 1

    def render(self, engine) -> str:
        lines = []

        def family(name: str, kind: str, help_text: str, samples=(), names: tuple = ()) -> None:
            """The family's HELP and TYPE lines, then one sample per (label values, value) of ``samples``."""
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for key, value in sorted(samples):
                key = key if isinstance(key, tuple) else (key,)
                lines.append(f"{name}{_labels(**dict(zip(names, key)))} {value}")

        family("spamclf_bundle_info", "gauge", "The bundle that scores new requests (its id is a label).", [(engine.current.bundle_id, 1)], ("bundle_id",))
        family("spamclf_requests_total", "counter", "Requests answered, by endpoint and HTTP status.", self.requests.items(), ("endpoint", "status"))
        family("spamclf_request_duration_seconds", "histogram", "Time from a request's start to its answer.")
        for endpoint, row in sorted(self.latency.items()):
            for bound, n in zip(BUCKETS, row):
                lines.append(f"spamclf_request_duration_seconds_bucket{_labels(endpoint=endpoint, le=bound)} {n}")
            lines.append(f"spamclf_request_duration_seconds_bucket{_labels(endpoint=endpoint, le='+Inf')} {row[-1]}")
            lines.append(f"spamclf_request_duration_seconds_sum{_labels(endpoint=endpoint)} {row[-2]:.6f}")
            lines.append(f"spamclf_request_duration_seconds_count{_labels(endpoint=endpoint)} {row[-1]}")
        family("spamclf_verdicts_total", "counter", "Messages scored, by label.", self.verdicts.items(), ("label",))
        family("spamclf_errors_total", "counter", "Requests refused or failed, by endpoint and kind.", self.errors.items(), ("endpoint", "kind"))
        family("spamclf_reloads_total", "counter", "Bundles found changed on disk: switched to (ok) or refused.", engine.reloads.items(), ("result",))
        family("spamclf_in_flight", "gauge", "Messages being scored or waiting for a worker.", [((), engine.pending)])
        family("spamclf_capacity", "gauge", "The most messages in flight before requests get 503.", [((), engine.capacity)])
        return "\n".join(lines) + "\n"

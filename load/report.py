"""What a load run tells its user: a progress line, the closing summary and a timeline PNG."""

from __future__ import annotations

from pathlib import Path

from mlflow_acceptance.fixtures.core.plots import Series, timeline
from mlflow_acceptance.fixtures.core.replica_watch import ReplicaWatch
from mlflow_acceptance.load import slo
from mlflow_acceptance.load.runner import LoadResult


def progress_line(history_file: Path, elapsed: float, total: float) -> str:
    """A line like '40s/90s: 20 users, 31.5 RPS, 0.0 failures/s, p95 180 ms' from the CSV."""
    try:
        history = slo.read_history(history_file)
    except (OSError, KeyError, ValueError):
        history = []
    if not history:
        return f"{elapsed:.0f}s/{total:.0f}s: starting"
    last = history[-1]
    p95 = f"{last.p95_ms:.0f} ms" if last.p95_ms is not None else "n/a"
    return (
        f"{elapsed:.0f}s/{total:.0f}s: {last.users} users, {last.rps:.1f} RPS, "
        f"{last.failures_per_s:.1f} failures/s, p95 {p95}"
    )


def summary_line(result: LoadResult) -> str:
    total = result.total
    p95 = f"{total.p95_ms:.0f}" if total.p95_ms is not None else "n/a"
    p99 = f"{total.p99_ms:.0f}" if total.p99_ms is not None else "n/a"
    return (
        f"{total.requests} requests, {total.rps:.1f} RPS (peak {result.peak_rps:.1f}), "
        f"p95 {p95} ms, p99 {p99} ms, failures {total.failure_ratio:.2%}; "
        f"{result.pace.describe()}"
    )


def plot(
    result: LoadResult, path: Path, title: str, watch: ReplicaWatch | None = None
) -> Path | None:
    """RPS, failures/s, p95 and users over time, and what the replicas did where ``watch``
    saw them; None when locust recorded no history."""
    history = result.history
    if not history:
        return None
    start = history[0].timestamp
    times = [point.timestamp - start for point in history]
    replicas = watch.series(start, wall=True) if watch is not None else []
    return timeline(
        path,
        title,
        [
            Series("RPS (10 s mean)", times, [p.rps for p in history], "requests/s"),
            Series("failures/s", times, [p.failures_per_s for p in history], "requests/s"),
            Series("p95 (last 10 s)", times, [p.p95_ms for p in history], "latency ms"),
            Series("users", times, [p.users for p in history], "users"),
            *replicas,
        ],
    )

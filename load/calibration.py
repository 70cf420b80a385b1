"""Turn once-a-second readings taken during a load run into the calibration's numbers.

A reading holds each replica's cumulative CPU seconds and memory (from its cgroup), the
load generator's cumulative CPU seconds (from /proc) and, where there is one, the
autoscaler's view. CPU utilisation over an interval is CPU time over wall time divided by
the replica's CPU limit, as the HPA computes it against a pod's request. Pure functions:
no Docker, no locust, so they are tested on their own.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlflow_acceptance.fixtures.core.capabilities import ResourceSample


@dataclass
class Reading:
    """Everything sampled at one moment (``at`` is time.monotonic(), ``wall`` time.time())."""

    at: float
    wall: float
    replicas: list[ResourceSample] = field(default_factory=list)
    generator_cpu_seconds: float | None = None
    generator_process_seconds: dict[int, float] = field(default_factory=dict)  # by pid
    autoscaler: dict[str, Any] | None = None


@dataclass(frozen=True)
class Point:
    """A value over the interval ending ``t`` seconds after the first reading."""

    t: float
    value: float


def replica_cpu_percent(readings: Sequence[Reading]) -> dict[str, list[Point]]:
    """Per replica: CPU % of its request (else limit) over each interval between readings.

    Intervals where a replica restarted (its counter went back) or has no limit are skipped.
    """
    series: dict[str, list[Point]] = {}
    if not readings:
        return series
    start = readings[0].at
    for before, after in itertools.pairwise(readings):
        previous = {sample.replica: sample for sample in before.replicas}
        for sample in after.replicas:
            old = previous.get(sample.replica)
            if old is None or not sample.cpu_basis_cores:
                continue
            wall = sample.at - old.at
            used = sample.cpu_seconds - old.cpu_seconds
            if wall <= 0 or used < 0:
                continue
            percent = 100.0 * used / wall / sample.cpu_basis_cores
            series.setdefault(sample.replica, []).append(Point(after.at - start, percent))
    return series


def average_across(series: dict[str, list[Point]]) -> list[Point]:
    """The mean over replicas at each interval end (the HPA's average utilisation)."""
    by_time: dict[float, list[float]] = {}
    for points in series.values():
        for point in points:
            by_time.setdefault(point.t, []).append(point.value)
    return [Point(t, statistics.fmean(values)) for t, values in sorted(by_time.items())]


def rolling_mean(points: Sequence[Point], seconds: float) -> list[Point]:
    """Mean of the points within the last ``seconds`` at each point (smooths sampling jitter)."""
    smoothed = []
    for index, point in enumerate(points):
        window = [p.value for p in points[: index + 1] if p.t > point.t - seconds]
        smoothed.append(Point(point.t, statistics.fmean(window)))
    return smoothed


def longest_stretch_at_or_above(points: Sequence[Point], threshold: float) -> tuple[float, float]:
    """(start, end) seconds of the longest run of consecutive points >= threshold; (0, 0) if none.

    A stretch starts where the interval of its first point began (the previous point's t).
    """
    best = (0.0, 0.0)
    begin: float | None = None
    previous_t = 0.0
    for point in points:
        if point.value >= threshold:
            if begin is None:
                begin = previous_t
            if point.t - begin > best[1] - best[0]:
                best = (begin, point.t)
        else:
            begin = None
        previous_t = point.t
    return best


def rate_between(readings: Sequence[Reading], start: float, end: float, pick) -> float | None:
    """CPU cores (CPU seconds per second) of ``pick(reading)`` between two offsets."""
    inside = [r for r in readings if start <= r.at - readings[0].at <= end]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    before, after = pick(first), pick(last)
    if before is None or after is None or last.at <= first.at:
        return None
    return max(after - before, 0.0) / (last.at - first.at)


def busiest_process_cores(readings: Sequence[Reading], start: float, end: float) -> float | None:
    """The cores of the busiest single generator process between two offsets."""
    inside = [r for r in readings if start <= r.at - readings[0].at <= end]
    if len(inside) < 2 or inside[-1].at <= inside[0].at:
        return None
    first, last = inside[0].generator_process_seconds, inside[-1].generator_process_seconds
    used = [last[pid] - first[pid] for pid in last.keys() & first.keys()]
    if not used:
        return None
    return max(max(used), 0.0) / (inside[-1].at - inside[0].at)


def server_cpu_used(before: Reading, after: Reading) -> float | None:
    """CPU seconds the replicas used between two readings: each replica's own increase,
    over replicas present in both whose counter did not go back (a restart), as
    replica_cpu_percent counts them. A sum of counters would fall when a replica restarts
    or leaves and jump when one arrives. None if no replica is in both."""
    previous = {sample.replica: sample for sample in before.replicas}
    increases = [
        sample.cpu_seconds - previous[sample.replica].cpu_seconds
        for sample in after.replicas
        if sample.replica in previous
    ]
    return sum(max(i, 0.0) for i in increases) if increases else None


def server_cpu_rates(readings: Sequence[Reading]) -> list[Point]:
    """Cores the replicas used over each interval between readings."""
    if not readings:
        return []
    points = []
    for before, after in itertools.pairwise(readings):
        used = server_cpu_used(before, after)
        if used is not None and after.at > before.at:
            points.append(Point(after.at - readings[0].at, used / (after.at - before.at)))
    return points


def server_cores_between(readings: Sequence[Reading], start: float, end: float) -> float | None:
    """Cores the replicas used between two offsets, across restarts and new replicas."""
    inside = [r for r in readings if start <= r.at - readings[0].at <= end]
    if len(inside) < 2 or inside[-1].at <= inside[0].at:
        return None
    used = [server_cpu_used(a, b) for a, b in itertools.pairwise(inside)]
    if all(u is None for u in used):
        return None
    return sum(u for u in used if u is not None) / (inside[-1].at - inside[0].at)


def replica_percent_between(
    readings: Sequence[Reading], start: float, end: float
) -> dict[str, float]:
    """Each replica's mean CPU % of request (else limit) between two offsets."""
    inside = [r for r in readings if start <= r.at - readings[0].at <= end]
    if len(inside) < 2:
        return {}
    first = {sample.replica: sample for sample in inside[0].replicas}
    result = {}
    for sample in inside[-1].replicas:
        old = first.get(sample.replica)
        if old is None or not sample.cpu_basis_cores or sample.at <= old.at:
            continue
        used = sample.cpu_seconds - old.cpu_seconds
        if used >= 0:
            result[sample.replica] = 100.0 * used / (sample.at - old.at) / sample.cpu_basis_cores
    return result


def peak_memory(readings: Sequence[Reading]) -> dict[str, tuple[int, int | None]]:
    """Per replica: (peak bytes in use, limit bytes or None)."""
    peaks: dict[str, tuple[int, int | None]] = {}
    for reading in readings:
        for sample in reading.replicas:
            peak, _ = peaks.get(sample.replica, (0, None))
            peaks[sample.replica] = (max(peak, sample.memory_bytes), sample.memory_limit_bytes)
    return peaks

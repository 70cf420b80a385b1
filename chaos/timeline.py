"""Per-second view of an experiment's operations, its latency statistics, and its plot."""

from __future__ import annotations

import math
from pathlib import Path

from mlflow_acceptance.chaos.workload import Op
from mlflow_acceptance.fixtures.core.plots import Band, Event, Series, timeline


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def p95_ms(ops: list[Op], start: float, end: float) -> float | None:
    """95th percentile latency of the operations started within [start, end]."""
    window = [op.seconds * 1000 for op in ops if start <= op.started <= end]
    value = percentile(window, 0.95)
    return None if value is None else round(value, 1)


def write_plot(
    path: Path,
    title: str,
    ops: list[Op],
    origin: float,
    events: list[tuple[float, str]],
    probes: list | None = None,
    replicas: list[Series] | None = None,
) -> Path:
    """Operations, errors and p95 latency per second, with the fault and recovery marked;
    the raw prober's errors and latency beside the writers' (``probes``: its Calls), and
    what the replicas did (``replicas``: fixtures/core/replica_watch.py's series)."""
    end = max((op.ended for op in ops), default=origin) - origin
    seconds = list(range(int(end) + 1))
    done = [0] * len(seconds)
    failed = [0] * len(seconds)
    latency: list[list[float]] = [[] for _ in seconds]
    for op in ops:
        bucket = min(int(op.ended - origin), len(seconds) - 1)
        if bucket < 0:
            continue
        if op.ok:
            done[bucket] += 1
        else:
            failed[bucket] += 1
        latency[bucket].append(op.seconds * 1000)
    series = [
        Series("acknowledged", seconds, done, panel="operations/s"),
        Series("client failures", seconds, failed, panel="operations/s"),
        Series("p95 latency", seconds, [percentile(v, 0.95) for v in latency], panel="ms"),
    ]
    probe_failed = [0] * len(seconds)
    probe_ms: list[list[float]] = [[] for _ in seconds]
    for call in probes or []:
        bucket = min(int(call.ended - origin), len(seconds) - 1)
        if bucket >= 0:
            probe_failed[bucket] += not call.ok
            probe_ms[bucket].append(call.ms)
    if probes:
        series += [
            Series("raw prober errors", seconds, probe_failed, panel="operations/s"),
            Series(
                "raw prober latency", seconds, [percentile(v, 1.0) for v in probe_ms], panel="ms"
            ),
        ]
    series += replicas or []
    marks = [Event(at - origin, label) for at, label in events]
    return timeline(path, title, series, events=marks, bands=fault_bands(marks, seconds[-1]))


def fault_bands(marks: list[Event], end: float) -> list[Band]:
    """Each fault ("fault: ...") until the next "recovered" (or the end, if it never did)."""
    bands, opened = [], None
    for mark in sorted(marks, key=lambda m: m.at):
        if mark.label.startswith("fault") and opened is None:
            opened = mark
        elif mark.label == "recovered" and opened is not None:
            bands.append(Band(opened.at, mark.at, opened.label.removeprefix("fault: ")))
            opened = None
    if opened is not None:
        bands.append(Band(opened.at, max(end, opened.at), opened.label.removeprefix("fault: ")))
    return bands

"""Service-level objectives over locust's CSV output, and the one-line verdict on a breach.

Read from ``<prefix>_stats.csv`` (one row per request name plus "Aggregated"),
``<prefix>_stats_history.csv`` (a row per second; the Aggregated rows give RPS over time)
and ``<prefix>_exceptions.csv`` (errors raised by the locustfile itself). Latency SLOs apply
to every request name except the ``setup:`` requests each user makes once; the failure
ratio and minimum RPS apply to the whole run.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

AGGREGATED = "Aggregated"
SETUP = "setup:"


class SloConfigError(ValueError):
    """An SLO given on the command line that cannot be read."""


@dataclass(frozen=True)
class RequestStats:
    """One row of ``_stats.csv``: a request name's totals over the run (times in ms)."""

    method: str
    name: str
    requests: int
    failures: int
    rps: float
    median_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class HistoryPoint:
    """One Aggregated row of ``_stats_history.csv`` (locust's RPS is a ~10 s average)."""

    timestamp: float
    users: int
    rps: float
    failures_per_s: float
    p95_ms: float | None
    total_requests: int
    total_failures: int


@dataclass(frozen=True)
class SloPolicy:
    max_failure_ratio: float = 0.01
    p95_ms: float = 1000.0
    p99_ms: float = 2500.0
    min_rps: float = 0.0
    # request name -> {"p95_ms": ..., "p99_ms": ...}, for operations slower by nature
    overrides: dict[str, dict[str, float]] = field(default_factory=dict)

    def limit(self, name: str, which: str) -> float:
        return self.overrides.get(name, {}).get(which, getattr(self, which))

    def describe(self) -> str:
        text = (
            f"failures <= {self.max_failure_ratio:.2%}, p95 <= {self.p95_ms:g} ms, "
            f"p99 <= {self.p99_ms:g} ms, RPS >= {self.min_rps:g}"
        )
        for name, limits in sorted(self.overrides.items()):
            text += (
                "; " + name + ": " + ", ".join(f"{k[:3]} <= {v:g} ms" for k, v in limits.items())
            )
        return text


def latency_option(values: list[str] | None, which: str) -> tuple[float | None, dict[str, float]]:
    """Read repeated ``--p95-ms 1000`` / ``--p95-ms "PUT artifact=2000"`` values.

    Returns the default limit (None if not given) and per-name limits.
    """
    default: float | None = None
    per_name: dict[str, float] = {}
    for value in values or []:
        name, sep, number = value.rpartition("=")
        try:
            limit = float(number)
        except ValueError:
            raise SloConfigError(
                f"--{which.replace('_', '-')} {value!r} is not milliseconds; "
                'use e.g. 1000 or "PUT artifact=2000"'
            ) from None
        if limit <= 0:
            raise SloConfigError(f"--{which.replace('_', '-')} {value!r} must be above 0")
        if sep:
            per_name[name.strip()] = limit
        else:
            default = limit
    return default, per_name


def _number(text: str | None) -> float | None:
    if text in (None, "", "N/A"):
        return None
    return float(text)


def read_stats(path: Path) -> list[RequestStats]:
    """Rows of ``_stats.csv``, the Aggregated row last."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        RequestStats(
            method=row["Type"],
            name=row["Name"],
            requests=int(row["Request Count"]),
            failures=int(row["Failure Count"]),
            rps=float(row["Requests/s"] or 0),
            median_ms=_number(row["Median Response Time"]),
            p95_ms=_number(row["95%"]),
            p99_ms=_number(row["99%"]),
            max_ms=_number(row["Max Response Time"]),
        )
        for row in rows
    ]


def read_history(path: Path) -> list[HistoryPoint]:
    """The Aggregated rows of ``_stats_history.csv``, oldest first."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == AGGREGATED]
    return [
        HistoryPoint(
            timestamp=float(row["Timestamp"]),
            users=int(row["User Count"]),
            rps=float(row["Requests/s"] or 0),
            failures_per_s=float(row["Failures/s"] or 0),
            p95_ms=_number(row["95%"]),
            total_requests=int(row["Total Request Count"]),
            total_failures=int(row["Total Failure Count"]),
        )
        for row in rows
    ]


def read_exceptions(path: Path) -> list[tuple[int, str]]:
    """(count, message) of each error the locustfile raised; none when the file is absent."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [(int(row["Count"]), row["Message"]) for row in csv.DictReader(handle)]


def aggregated(stats: list[RequestStats]) -> RequestStats:
    for row in stats:
        if row.name == AGGREGATED:
            return row
    raise ValueError("locust's stats have no Aggregated row")


def evaluate(
    stats: list[RequestStats], policy: SloPolicy, exceptions: list[tuple[int, str]] = ()
) -> list[str]:
    """Every SLO breach as a short sentence; empty when the run met all of them."""
    breaches: list[str] = []
    total = aggregated(stats)
    if total.requests == 0:
        return ["no requests were made"]
    raised = sum(count for count, _ in exceptions)
    if raised:
        breaches.append(f"the locustfile raised {raised} errors (first: {exceptions[0][1][:120]})")
    if total.failure_ratio > policy.max_failure_ratio:
        worst = max((row for row in stats if row.name != AGGREGATED), key=lambda row: row.failures)
        breaches.append(
            f"failure ratio {total.failure_ratio:.2%} > {policy.max_failure_ratio:.2%} "
            f"({total.failures}/{total.requests}; most in {worst.name}: {worst.failures})"
        )
    for row in stats:
        if row.name == AGGREGATED or row.name.startswith(SETUP) or row.requests == 0:
            continue
        for which, value in (("p95_ms", row.p95_ms), ("p99_ms", row.p99_ms)):
            limit = policy.limit(row.name, which)
            if value is not None and value > limit:
                breaches.append(f"{which[:3]} of {row.name} {value:.0f} ms > {limit:g} ms")
    if total.rps < policy.min_rps:
        breaches.append(f"throughput {total.rps:.1f} RPS < {policy.min_rps:g} RPS")
    return breaches


def verdict(breaches: list[str]) -> str:
    """One line: PASS, or the first breach and how many more there are."""
    if not breaches:
        return "SLOs met"
    more = f" (and {len(breaches) - 1} more: see slo.json)" if len(breaches) > 1 else ""
    return f"SLO breach: {breaches[0]}{more}"

"""Achieved against offered rate: how far locust's users kept to their own schedule.

A closed-loop user offers one task per (task time + the wait it drew). When the generator
is short of CPU, its gevent loop wakes users late and every loop stretches: the server then
sees less load than the run claims, whatever the server could take. Each locust process
notes, per loop, the wait asked for, how late the wake-up came and how long the task ran,
and writes them next to locust's CSVs; the runner merges the processes.

achieved / offered = (asked + busy) / (asked + busy + late): 1.0 when every wake-up was on
time. Lateness is the generator's own delay, not the server's: a slow response shows up
as task time, which both rates include.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

FILE_GLOB = "_pace_*.json"  # after the CSV prefix, one file per locust process (by pid)
MIN_KEPT = 0.9  # below this share of the offered rate the run measured the generator


@dataclass
class Pace:
    """One process's (or the merged) loop accounting, in seconds."""

    loops: int = 0
    asked_seconds: float = 0.0
    busy_seconds: float = 0.0
    late: list[float] = field(default_factory=list)  # per wake-up

    def note_wait(self, asked: float, late: float) -> None:
        self.loops += 1
        self.asked_seconds += asked
        self.late.append(max(late, 0.0))

    def note_task(self, seconds: float) -> None:
        self.busy_seconds += seconds

    @property
    def late_seconds(self) -> float:
        return sum(self.late)

    @property
    def kept(self) -> float | None:
        """Achieved over offered rate; None before any loop."""
        offered = self.asked_seconds + self.busy_seconds
        if not self.loops or offered <= 0:
            return None
        return offered / (offered + self.late_seconds)

    def late_ms(self, quantile: float) -> float | None:
        if not self.late:
            return None
        ordered = sorted(self.late)
        index = min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))
        return round(ordered[index] * 1000, 1)

    def summary(self) -> dict:
        kept = self.kept
        return {
            "loops": self.loops,
            "achieved_of_offered": None if kept is None else round(kept, 4),
            "late_p95_ms": self.late_ms(0.95),
            "late_max_ms": self.late_ms(1.0),
        }

    def describe(self) -> str:
        kept = self.kept
        if kept is None:
            return "no user loop was timed"
        return (
            f"users achieved {kept:.1%} of the rate they offered over {self.loops} loops "
            f"(wake-ups late by p95 {self.late_ms(0.95):.0f} ms, max {self.late_ms(1.0):.0f} ms)"
        )

    def shortfall(self) -> str | None:
        """Why the run measured the generator instead of the server, or None."""
        kept = self.kept
        if kept is None or kept >= MIN_KEPT:
            return None
        return (
            f"the load generator fell behind its own schedule: {self.describe()}, below "
            f"{MIN_KEPT:.0%}; give locust more CPU (--processes, fewer users per core)"
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")


def merged(paces: Iterable[Pace]) -> Pace:
    total = Pace()
    for pace in paces:
        total.loops += pace.loops
        total.asked_seconds += pace.asked_seconds
        total.busy_seconds += pace.busy_seconds
        total.late += pace.late
    return total


def read(csv_prefix: Path) -> Pace:
    """Every process's file next to the CSVs, merged (an empty Pace when none wrote)."""
    files = sorted(csv_prefix.parent.glob(csv_prefix.name + FILE_GLOB))
    return merged(Pace(**json.loads(f.read_text(encoding="utf-8"))) for f in files)

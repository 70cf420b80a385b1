"""Repeated replica kills, each timed on its own: a series of kills spans minutes, so the
span says nothing about how fast one replica comes back (which is what is bounded)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlflow_acceptance.chaos.probes import wait_seconds
from mlflow_acceptance.fixtures.core.capabilities import ReplicaController

POLL_SECONDS = 1.0


@dataclass
class KillSeries:
    kills: list[str] = field(default_factory=list)  # the victims, in order
    # Per kill: seconds from the kill until two replicas were Ready again.
    recoveries: list[float] = field(default_factory=list)
    last_kill: float = float("-inf")

    @property
    def slowest(self) -> float | None:
        return max(self.recoveries, default=None)

    @property
    def mean(self) -> float | None:
        if not self.recoveries:
            return None
        return round(sum(self.recoveries) / len(self.recoveries), 1)

    def finish(self, recovered_at: float) -> None:
        """Record the last kill's recovery once the caller saw every replica Ready."""
        if len(self.recoveries) < len(self.kills):
            self.recoveries.append(round(recovered_at - self.last_kill, 1))


def kill_repeatedly(
    controller: ReplicaController,
    kill: Callable[[str, dict[str, int]], float],
    count: int,
    every: float,
    bound: float,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = wait_seconds,
) -> KillSeries:
    """Kill a Ready replica ``count`` times, each once two replicas are Ready again and at
    most every ``every`` seconds (never the last one Ready, as a PodDisruptionBudget of
    minAvailable 1 would), for at most ``bound`` seconds. ``kill(victim, restarts_before)``
    kills and returns the moment of the kill. The last kill's recovery is recorded by
    ``KillSeries.finish`` once the caller saw every replica Ready."""
    series = KillSeries()
    deadline = clock() + bound
    while clock() < deadline:
        replicas = controller.list()
        ready = [r for r in replicas if r.ready]
        if len(ready) >= 2 and len(series.recoveries) < len(series.kills):
            series.recoveries.append(round(clock() - series.last_kill, 1))
        if len(series.kills) == count:
            break
        if len(ready) >= 2 and clock() - series.last_kill >= every:
            victim = ready[len(series.kills) % len(ready)].name
            series.last_kill = kill(victim, {r.name: r.restarts for r in replicas})
            series.kills.append(victim)
        pause(POLL_SECONDS)
    return series

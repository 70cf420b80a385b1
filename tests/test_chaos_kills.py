"""Repeated kills are each timed on their own: a series whose kills each come back in time
passes however long it spans, one slow start among fast ones passes the mean bound, and
replicas that come back slower with every kill fail it."""

from __future__ import annotations

import pytest
from mlflow_acceptance.chaos.kills import kill_repeatedly
from mlflow_acceptance.chaos.verdicts import recovered_within
from mlflow_acceptance.fixtures.core.capabilities import Replica


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += seconds


class Replicas:
    """Two replicas; a killed one is Ready again after its turn in ``comebacks``."""

    def __init__(self, clock: Clock, comebacks: list[float]) -> None:
        self.clock = clock
        self.comebacks = list(comebacks)
        self.down_until = {"server-1": 0.0, "server-2": 0.0}

    def list(self) -> list[Replica]:
        return [Replica(n, self.clock() >= until) for n, until in self.down_until.items()]

    def kill(self, victim: str, before: dict[str, int]) -> float:
        assert sum(r.ready for r in self.list()) == 2, "killed with one replica Ready"
        self.down_until[victim] = self.clock() + self.comebacks.pop(0)
        return self.clock()


def series_for(comebacks: list[float], bound: float = 450):
    clock = Clock()
    replicas = Replicas(clock, comebacks)
    series = kill_repeatedly(
        replicas, replicas.kill, count=3, every=10, bound=bound, clock=clock, pause=clock.pause
    )
    return clock, series


def test_each_kill_is_timed_from_its_kill_until_two_are_ready():
    _, series = series_for([60, 60, 60])
    series.finish(series.last_kill + 60)  # the caller's wait for Ready saw the last one back
    assert series.kills == ["server-1", "server-2", "server-1"]
    assert series.recoveries == [60.0, 60.0, 60.0]
    # The series spans more than one kill's bound; each kill stays within it.
    recovered_within(series.mean, 150, "replicas were Ready again")


def test_one_slow_start_among_fast_ones_passes_the_mean_bound():
    _, series = series_for([30, 200, 30])
    series.finish(series.last_kill + 30)
    assert (series.slowest, series.mean) == (200.0, 86.7)
    recovered_within(series.mean, 150, "replicas were Ready again")


def test_replicas_slower_with_every_kill_fail_the_mean_bound():
    _, series = series_for([120, 160, 200])
    series.finish(series.last_kill + 200)
    assert series.recoveries == [120.0, 160.0, 200.0]
    with pytest.raises(AssertionError, match=r"only 160.0s after the fault \(bound 150s\)"):
        recovered_within(series.mean, 150, "replicas were Ready again")


def test_kills_stop_at_the_bound():
    _, series = series_for([400, 400, 400], bound=450)
    assert len(series.kills) == 2, series
    assert series.recoveries == [400.0]


def test_a_crashed_service_is_sigkilled_and_started_again_on_its_data():
    from mlflow_acceptance.fixtures.docker.faults import DockerServiceFaults

    calls = []
    container = type(
        "Container",
        (),
        {
            "kill": lambda self, signal: calls.append(("kill", signal)),
            "start": lambda self: calls.append(("start",)),
        },
    )()
    faults = DockerServiceFaults(None, "r1", None)
    faults._container = lambda service: container
    faults.crash("database")
    assert calls == [("kill", "SIGKILL"), ("start",)]

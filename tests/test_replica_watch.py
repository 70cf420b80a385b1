"""The replica watch beside a chaos experiment: counts, CPU of the limit and memory per
replica on the experiment's time axis; a failed reading is counted, never raised."""

from __future__ import annotations

from types import SimpleNamespace

from mlflow_acceptance.fixtures.core.capabilities import Replica, ResourceSample
from mlflow_acceptance.fixtures.core.replica_watch import Reading, ReplicaWatch, cpu_percent
from mlflow_acceptance.fixtures.core.waiting import Observation, wait_until

MIB = 2**20


def sample(name: str, at: float, cpu: float, memory_mib: int) -> ResourceSample:
    return ResourceSample(name, at, cpu, memory_mib * MIB, 0.5, 2048 * MIB)


class Replicas:
    def __init__(self, states: list[list[bool]]) -> None:
        self.states = iter(states)

    def list(self) -> list[Replica]:
        return [
            Replica(f"mlflow-acc-r-server-{i + 1}", ok) for i, ok in enumerate(next(self.states))
        ]


class Resources:
    def __init__(self, readings: list[list[ResourceSample]]) -> None:
        self.readings = iter(readings)

    def sample(self) -> list[ResourceSample]:
        return next(self.readings)


def test_counts_cpu_and_memory_become_series_on_the_experiments_time_axis():
    name = "mlflow-acc-r-server-1"
    deployment = SimpleNamespace(
        replica_controller=Replicas([[True, True], [False, True], [True, True]]),
        autoscaler=None,
        resources=Resources(
            [
                [sample(name, 102.0, 10.0, 500)],
                [sample(name, 104.0, 10.5, 520)],  # 0.5 CPU-s in 2 s of a 0.5 limit: 50 %
                [sample(name, 106.0, 0.2, 300)],  # restarted: its counter began again
            ]
        ),
    )
    watch = ReplicaWatch(deployment)
    watch.readings = [watch.read() for _ in range(3)]
    series = {(s.panel, s.label): s for s in watch.series(origin=100.0)}
    assert set(series) == {
        ("replicas", "Ready replicas"),
        ("CPU % of limit", "server-1"),
        ("memory MiB", "server-1"),
    }
    assert list(series[("replicas", "Ready replicas")].values) == [2, 1, 2]
    assert series[("replicas", "Ready replicas")].steps  # a count: held, never a slope
    assert not series[("CPU % of limit", "server-1")].steps
    assert list(series[("CPU % of limit", "server-1")].times) == [4.0, 6.0]
    assert list(series[("CPU % of limit", "server-1")].values) == [50.0, None]
    assert list(series[("memory MiB", "server-1")].values) == [500, 520, 300]


def test_a_reading_that_fails_is_counted_and_the_watch_goes_on():
    class Broken:
        def list(self):
            raise ConnectionError("API server went away")

    watch = ReplicaWatch(
        SimpleNamespace(replica_controller=Broken(), autoscaler=None, resources=None)
    )
    reading = watch.read()
    assert reading.ready is None
    assert watch.errors == ["ConnectionError: API server went away"]
    assert watch.series(origin=0.0) == []


def test_a_target_that_sees_no_replica_starts_no_thread():
    watch = ReplicaWatch(SimpleNamespace(replica_controller=None, autoscaler=None, resources=None))
    watch.start()
    watch.stop()
    assert watch.readings == []


def test_the_watch_thread_reads_until_stopped():
    deployment = SimpleNamespace(
        replica_controller=Replicas([[True]] * 1000), autoscaler=None, resources=None
    )
    watch = ReplicaWatch(deployment, interval=0.01)
    watch.start()
    try:
        wait_until(
            lambda: Observation(len(watch.readings) >= 3, f"{len(watch.readings)} readings"),
            timeout=10,
            interval=0.01,
            what="three readings",
        )
    finally:
        watch.stop()
    assert not watch._thread.is_alive()


def test_cpu_without_a_limit_is_not_a_share_of_one():
    before, now = sample("a", 0, 1, 1), sample("a", 1, 2, 1)
    unlimited = ResourceSample("a", 1, 2, MIB, None, None)
    assert cpu_percent(before, now) == 200.0
    assert cpu_percent(before, unlimited) is None


def test_a_load_runs_wall_clock_origin_puts_readings_on_locusts_time_axis():
    watch = ReplicaWatch(None)
    # monotonic 100 and 110 were wall-clock 5000 and 5010
    watch.readings = [Reading(100.0, 5000.0, ready=2), Reading(110.0, 5010.0, ready=3)]
    (ready,) = watch.series(origin=4990.0, wall=True)
    assert list(ready.times) == [10.0, 20.0]
    assert list(ready.values) == [2, 3]
    assert not watch.sees_anything

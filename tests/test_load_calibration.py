"""Calibration arithmetic on made-up readings, and the /proc reader of the generator's CPU."""

from __future__ import annotations

import os

import pytest
from mlflow_acceptance.fixtures.core.capabilities import ResourceSample
from mlflow_acceptance.load import calibration as calc
from mlflow_acceptance.load import procstat

GIB = 2**30


def reading(t: float, cpu: dict[str, float], memory: int = GIB, generator: float = 0.0):
    return calc.Reading(
        at=t,
        wall=1_000_000 + t,
        replicas=[
            ResourceSample(name, t, seconds, memory, 0.5, 2 * GIB) for name, seconds in cpu.items()
        ],
        generator_cpu_seconds=generator,
    )


def busy(percent_1: float, percent_2: float, seconds: int, start=(0.0, 0.0), t0=0):
    """Readings 1 s apart with replicas using the given % of their 0.5 CPU limit."""
    out = []
    for i in range(seconds + 1):
        out.append(
            reading(
                t0 + i,
                {
                    "server-1": start[0] + 0.005 * percent_1 * i,
                    "server-2": start[1] + 0.005 * percent_2 * i,
                },
                generator=0.05 * i,
            )
        )
    return out


def test_cpu_percent_of_limit_per_interval():
    series = calc.replica_cpu_percent(busy(80, 60, 3))
    assert [round(p.value) for p in series["server-1"]] == [80, 80, 80]
    assert [round(p.value) for p in series["server-2"]] == [60, 60, 60]
    assert [p.t for p in series["server-1"]] == [1, 2, 3]
    average = calc.average_across(series)
    assert [round(p.value) for p in average] == [70, 70, 70]


def test_a_restarted_replica_skips_the_interval_instead_of_going_negative():
    readings = busy(80, 80, 2)
    readings.append(reading(3, {"server-1": 0.1, "server-2": 1.2}))  # server-1 restarted
    series = calc.replica_cpu_percent(readings)
    assert len(series["server-1"]) == 2
    assert len(series["server-2"]) == 3


def test_rolling_mean_smooths_jitter():
    points = [calc.Point(t, v) for t, v in enumerate([100, 40, 100, 40, 100], start=1)]
    smoothed = calc.rolling_mean(points, 2)
    assert [p.value for p in smoothed] == [100, 70, 70, 70, 70]


def test_longest_stretch_counts_seconds_at_or_above_target():
    values = [50, 75, 80, 69, 71, 72, 73, 74, 60]
    points = [calc.Point(t, v) for t, v in enumerate(values, start=1)]
    assert calc.longest_stretch_at_or_above(points, 70) == (4, 8)  # t=5..8 -> began at 4
    assert calc.longest_stretch_at_or_above(points, 90) == (0.0, 0.0)


def test_sustained_load_passes_and_a_light_one_does_not():
    heavy = busy(85, 75, 40)
    light = busy(20, 15, 40)
    for readings, expected in ((heavy, 40), (light, 0)):
        average = calc.rolling_mean(calc.average_across(calc.replica_cpu_percent(readings)), 5)
        start, end = calc.longest_stretch_at_or_above(average, 70)
        assert round(end - start) == expected


def test_rates_and_per_replica_percent_over_a_window():
    readings = busy(90, 70, 30)
    per_replica = calc.replica_percent_between(readings, 10, 30)
    assert per_replica == pytest.approx({"server-1": 90, "server-2": 70})
    assert calc.server_cores_between(readings, 10, 30) == pytest.approx(0.8)
    generator = calc.rate_between(readings, 10, 30, lambda r: r.generator_cpu_seconds)
    assert generator == pytest.approx(0.05)
    assert calc.server_cores_between(readings, 50, 60) is None


def test_server_cores_hold_across_a_restart_and_a_new_replica():
    """Seen on kind: a replica killed in the top stage made the summed counters fall, and
    the generator check reported no server CPU at all."""
    readings = [
        reading(0, {"a": 0.0, "b": 50.0}),
        reading(1, {"a": 1.0, "b": 51.0}),
        reading(2, {"a": 2.0, "b": 0.1}),  # b restarted: its interval is not counted
        reading(3, {"a": 3.0, "b": 1.1, "c": 40.0}),  # c arrives with 40 s already used
        reading(4, {"a": 4.0, "b": 2.1, "c": 41.0}),
    ]
    # a: 4 s; b: 1 + 1 + 1 s; c: 1 s (its first 40 s were before it was seen) over 4 s
    assert calc.server_cores_between(readings, 0, 4) == pytest.approx(2.0)
    assert [p.value for p in calc.server_cpu_rates(readings)] == pytest.approx([2, 1, 2, 3])
    assert calc.server_cores_between([reading(0, {}), reading(1, {})], 0, 1) is None


def test_peak_memory_per_replica_with_its_limit():
    readings = [reading(0, {"a": 0}, memory=GIB), reading(1, {"a": 1}, memory=int(1.5 * GIB))]
    assert calc.peak_memory(readings) == {"a": (int(1.5 * GIB), 2 * GIB)}


STAT = (
    "4242 (python -m (locust)) S 4200 4242 4242 0 -1 4194560 2500 0 0 0 "
    "{utime} {stime} 0 0 20 0 3 0 12345 100000000 5000 18446744073709551615 0 0 0 0 0 0 0 "
    "16781312 2 0 0 0 0 0 17 1 0 0 0 0 0"
)


def test_parse_stat_reads_state_session_and_cpu_despite_parentheses():
    stat = procstat.parse_stat(STAT.format(utime=250, stime=50))
    assert (stat.pid, stat.state, stat.session) == (4242, "S", 4242)
    assert stat.cpu_seconds == pytest.approx(300 / procstat.CLOCK_TICKS)


def test_session_cpu_sums_the_session_only(tmp_path):
    for pid, session, utime in ((4242, 4242, 100), (4243, 4242, 200), (999, 1, 5000)):
        (tmp_path / str(pid)).mkdir()
        text = STAT.format(utime=utime, stime=0).replace("4242 (", f"{pid} (", 1)
        text = text.replace(" 4200 4242 4242 ", f" 4200 {session} {session} ")
        (tmp_path / str(pid) / "stat").write_text(text)
    (tmp_path / "self").mkdir()
    assert procstat.session_cpu_seconds(4242, tmp_path) == pytest.approx(300 / procstat.CLOCK_TICKS)
    assert procstat.session_cpu_seconds(7, tmp_path) == 0.0


def test_session_cpu_of_this_very_process_is_readable():
    if not procstat.available():
        pytest.skip("no /proc here")
    assert procstat.session_cpu_seconds(os.getsid(0)) > 0


class FakeResources:
    """Replicas whose CPU use per call follows a script of % of a 0.5 CPU limit."""

    def __init__(self, percents: list[float]) -> None:
        self.percents = iter(percents)
        self.t = 0.0
        self.cpu = 0.0

    def sample(self):
        percent = next(self.percents, 0.0)
        self.t += 1.0
        self.cpu += 0.005 * percent
        return [ResourceSample("server-1", self.t, self.cpu, GIB, 0.5, 2 * GIB)]


def test_wait_for_idle_needs_consecutive_quiet_polls():
    from mlflow_acceptance.load.warmup import wait_for_idle

    lines: list[str] = []
    resources = FakeResources([100, 100, 10, 90, 10, 10, 10])
    seconds, idle = wait_for_idle(resources, lines.append, polls=3, interval=0.01, timeout=5)
    assert idle == pytest.approx(10)
    assert lines[0] == "settling: replicas at 100% of their CPU limit"
    assert seconds < 5


def test_wait_for_idle_says_what_it_saw_when_it_gives_up():
    from mlflow_acceptance.fixtures.core.waiting import WaitTimeout
    from mlflow_acceptance.load.warmup import wait_for_idle

    with pytest.raises(WaitTimeout, match=r"idle below 25% CPU.*replicas at 100% of their CPU"):
        wait_for_idle(FakeResources([100] * 1000), lambda _: None, interval=0.01, timeout=0.3)


class FifteenSecondResources(FakeResources):
    """A metrics API: a new reading only every third poll; between, the same one again."""

    def __init__(self, percents: list[float]) -> None:
        super().__init__(percents)
        self.polls = 0
        self.last = None

    def sample(self):
        self.polls += 1
        if self.last is None or self.polls % 3 == 0:
            self.last = super().sample()
        return self.last


def test_wait_for_idle_neither_counts_nor_resets_on_polls_without_a_new_reading():
    from mlflow_acceptance.load.warmup import wait_for_idle

    lines: list[str] = []
    resources = FifteenSecondResources([10, 10, 10, 10])
    _, idle = wait_for_idle(resources, lines.append, polls=3, interval=0.01, timeout=5)
    assert idle == pytest.approx(10)
    assert resources.polls >= 9, "three fresh readings take at least nine polls here"
    assert not any("100%" in line for line in lines), lines

"""Where a run's time went: the lines name the start's phases and each module, and add up,
in seconds and in the machine's CPU-seconds; the run's CPU gives the least time it takes."""

from __future__ import annotations

import json
import time

import pytest
from mlflow_acceptance.fixtures.core import html_report, machine_cpu
from mlflow_acceptance.fixtures.core.reporting import RunSummary
from mlflow_acceptance.fixtures.core.timings import (
    ENVIRONMENT_SECONDS,
    CpuFloor,
    Line,
    breakdown,
)

MEASUREMENTS = {
    "local.images_seconds": 1.0,
    "local.image_mlflow_seconds": 20.0,  # a build inside the images phase: no line of its own
    "local.database_seconds": 3.0,
    "local.replicas_seconds": 17.0,
    "local.startup_seconds": 30.0,
    "artifacts.large_mib": 100,
}
# The first test's setup holds the stack's start, as pytest counts a session fixture.
TESTS = [
    ("suites/a.py::t1", 35.0, None),
    ("suites/a.py::t2", 5.0, None),
    ("chaos/b.py::t", 100.0, None),
]


def test_the_start_gets_its_own_line_and_the_lines_add_up_to_the_run():
    lines = breakdown(MEASUREMENTS, TESTS, "local", duration_s=150.0, environment_s=2.0)
    by_what = {line.what: line for line in lines}
    assert [line.what for line in lines] == [
        "chaos/b.py",
        "local start",
        "suites/a.py",
        "the rest (collection, teardown, reports)",
        "environment (uv sync, before pytest)",
    ]
    assert by_what["suites/a.py"].seconds == 10.0  # 40 s minus the 30 s start
    assert by_what["local start"].detail == "images 1.0, database 3.0, replicas 17.0"
    assert by_what["the rest (collection, teardown, reports)"].seconds == 10.0
    assert sum(line.seconds for line in lines) == 150.0 + 2.0


def test_a_target_without_a_start_and_no_environment_has_modules_and_the_rest_only():
    lines = breakdown({}, [("tests/x.py::t", 4.0, None)], "external", duration_s=5.0)
    assert [(line.what, line.seconds) for line in lines] == [
        ("tests/x.py", 4.0),
        ("the rest (collection, teardown, reports)", 1.0),
    ]


def test_summary_json_carries_the_timings_with_nox_environment_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_SECONDS, "0.4")
    summary = RunSummary("run-1", tmp_path, "local")
    summary.started = time.time() - 60
    summary.measurements.update(MEASUREMENTS)
    for nodeid, seconds, _ in TESTS[:1]:
        summary.record(nodeid).duration_s = seconds
    written = json.loads(summary.write(0).read_text())
    timings = {entry["what"]: entry["seconds"] for entry in written["timings"]}
    assert timings["environment (uv sync, before pytest)"] == 0.4
    assert timings["local start"] == 30.0
    assert timings["suites/a.py"] == 5.0
    assert 24.0 <= timings["the rest (collection, teardown, reports)"] <= 26.0


def test_each_line_carries_the_machines_cpu_seconds_and_they_add_up_to_the_runs():
    measurements = {**MEASUREMENTS, "local.startup_cpu_seconds": 25.0}
    tests = [
        ("suites/a.py::t1", 35.0, 40.0),
        ("suites/a.py::t2", 5.0, 3.0),
        ("chaos/b.py::t", 100.0, 90.0),
    ]
    lines = breakdown(measurements, tests, "local", duration_s=150.0, cpu_s=150.0)
    cpu = {line.what: line.cpu_s for line in lines}
    assert cpu["local start"] == 25.0
    assert cpu["suites/a.py"] == 18.0  # 43 CPU-s minus the start's 25
    assert cpu["chaos/b.py"] == 90.0
    assert cpu["the rest (collection, teardown, reports)"] == 17.0
    assert sum(cpu.values()) == 150.0
    # The start's CPU is not one of its phases.
    start = next(line for line in lines if line.what == "local start")
    assert "startup_cpu" not in start.detail
    assert "90.0 CPU-s  chaos/b.py" in next(x for x in lines if x.what == "chaos/b.py").render(True)


def test_without_cpu_readings_no_line_claims_cpu_seconds():
    tests = [("suites/a.py::t1", 35.0, 40.0), ("chaos/b.py::t", 100.0, None)]
    lines = breakdown(MEASUREMENTS, tests, "local", duration_s=150.0, cpu_s=150.0)
    assert all(line.cpu_s is None for line in lines)
    assert "CPU-s" not in lines[0].render()


def test_a_line_without_cpu_keeps_the_column_when_others_have_it():
    with_cpu = Line("chaos/b.py", 100.0, cpu_s=90.0).render(True)
    without = Line("environment (uv sync, before pytest)", 2.0).render(True)
    assert with_cpu.index("chaos/b.py") == without.index("environment")


def test_the_floor_is_the_runs_cpu_over_the_cores():
    floor = CpuFloor(busy_s=1270.0, cores=2, wall_s=1120.0)
    assert floor.floor_s == 635.0
    assert floor.as_dict() == {
        "busy_seconds": 1270.0,
        "cores": 2,
        "wall_seconds": 1120.0,
        "floor_seconds": 635.0,
    }
    assert "no split of this run takes less than 635 s" in floor.render()
    assert "(57% busy)" in floor.render()


def write_stat(path, user, nice, system, idle, iowait, irq, softirq, steal):
    fields = [user, nice, system, idle, iowait, irq, softirq, steal, 0, 0]
    path.write_text("cpu  " + " ".join(map(str, fields)) + "\ncpu0 1 2 3\n", encoding="ascii")


def test_busy_seconds_count_work_and_leave_out_idle_and_iowait(tmp_path):
    stat = tmp_path / "stat"
    tick = __import__("os").sysconf("SC_CLK_TCK")
    write_stat(stat, 10 * tick, 1 * tick, 4 * tick, 500 * tick, 70 * tick, 0, 1 * tick, 0)
    assert machine_cpu.busy_seconds(stat) == pytest.approx(16.0)


def test_without_proc_stat_there_is_no_reading_and_the_meter_says_so(tmp_path):
    assert machine_cpu.busy_seconds(tmp_path / "absent") is None
    assert machine_cpu.Meter(read=lambda: None).spent() is None
    readings = iter([100.0, 130.5])
    assert machine_cpu.Meter(read=lambda: next(readings)).spent() == 30.5


def test_summary_and_html_report_carry_the_floor(tmp_path):
    summary = RunSummary("run-1", tmp_path, "local")
    readings = iter([1000.0, 1600.0, 1600.0, 1600.0, 1600.0])
    summary.cpu = machine_cpu.Meter(read=lambda: next(readings))
    summary.started = time.time() - 400
    summary.record("chaos/b.py::t").duration_s = 390.0
    summary.spent_cpu("chaos/b.py::t", 550.0)
    written = json.loads(summary.write(0).read_text())
    assert written["cpu"]["busy_seconds"] == 600.0
    assert written["cpu"]["floor_seconds"] == 600.0 / machine_cpu.cores()
    assert {t["what"]: t["cpu_s"] for t in written["timings"]}["chaos/b.py"] == 550.0
    page = html_report.write_report(tmp_path).read_text(encoding="utf-8")
    assert "600 CPU-s in 400 s" in page
    assert "no split of this run takes less than" in page
    assert "550.0 CPU-s" in page

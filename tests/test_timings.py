"""Where a run's time went: the lines name the start's phases and each module, and add up."""

from __future__ import annotations

import json
import time

from mlflow_acceptance.fixtures.core.reporting import RunSummary
from mlflow_acceptance.fixtures.core.timings import ENVIRONMENT_SECONDS, breakdown

MEASUREMENTS = {
    "local.images_seconds": 1.0,
    "local.image_mlflow_seconds": 20.0,  # a build inside the images phase: no line of its own
    "local.database_seconds": 3.0,
    "local.replicas_seconds": 17.0,
    "local.startup_seconds": 30.0,
    "artifacts.large_mib": 100,
}
# The first test's setup holds the stack's start, as pytest counts a session fixture.
TESTS = [("suites/a.py::t1", 35.0), ("suites/a.py::t2", 5.0), ("chaos/b.py::t", 100.0)]


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
    lines = breakdown({}, [("tests/x.py::t", 4.0)], "external", duration_s=5.0)
    assert [(line.what, line.seconds) for line in lines] == [
        ("tests/x.py", 4.0),
        ("the rest (collection, teardown, reports)", 1.0),
    ]


def test_summary_json_carries_the_timings_with_nox_environment_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_SECONDS, "0.4")
    summary = RunSummary("run-1", tmp_path, "local")
    summary.started = time.time() - 60
    summary.measurements.update(MEASUREMENTS)
    for nodeid, seconds in TESTS[:1]:
        summary.record(nodeid).duration_s = seconds
    written = json.loads(summary.write(0).read_text())
    timings = {entry["what"]: entry["seconds"] for entry in written["timings"]}
    assert timings["environment (uv sync, before pytest)"] == 0.4
    assert timings["local start"] == 30.0
    assert timings["suites/a.py"] == 5.0
    assert 24.0 <= timings["the rest (collection, teardown, reports)"] <= 26.0

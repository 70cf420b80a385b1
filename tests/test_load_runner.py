"""The locust subprocess: its command line, its hard time bound, Ctrl-C, and no gevent here."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow_acceptance.fixtures.core.waiting import Observation, wait_until
from mlflow_acceptance.load import procstat, runner, shapes

ROOT = Path(__file__).resolve().parent.parent


def plan(tmp_path: Path, **changes) -> runner.LoadPlan:
    values = {
        "host": "https://mlflow.example.com/",
        "out_dir": tmp_path / "load",
        "prefix": "acc-20260101-000000-abcd-load",
        "shape": shapes.Step(30, 10, 90, 3),
        "ca_bundle": None,
    }
    values.update(changes)
    return runner.LoadPlan(**values)


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_command_line_for_a_step_run(tmp_path):
    ca = tmp_path / "ca.pem"
    command = runner.locust_command(plan(tmp_path, ca_bundle=ca), python="/py")
    assert command[:3] == ["/py", "-m", "locust"]
    assert option(command, "--locustfile") == str(ROOT / "load" / "locustfile.py")
    assert "--headless" in command
    assert option(command, "--host") == "https://mlflow.example.com"
    assert (option(command, "--users"), option(command, "--spawn-rate")) == ("30", "10")
    assert option(command, "--run-time") == "90s"
    assert option(command, "--mlflow-shape") == "step"
    assert option(command, "--mlflow-steps") == "3"
    assert option(command, "--mlflow-prefix") == "acc-20260101-000000-abcd-load"
    assert option(command, "--mlflow-ca-bundle") == str(ca.resolve())
    assert option(command, "--csv") == str(tmp_path / "load" / "locust")
    assert "--csv-full-history" in command
    assert option(command, "--html") == str(tmp_path / "load" / "locust.html")
    assert option(command, "--exit-code-on-error") == "0"
    assert command[-3:] == ["TrackingWriter", "Reader", "ArtifactUser"]
    assert "--processes" not in command
    assert "--master" not in command


def test_command_line_for_workload_and_distribution(tmp_path):
    workload = runner.Workload(writer_weight=5, reader_weight=0, artifact_weight=2, wait_min=0.1)
    command = runner.locust_command(
        plan(tmp_path, shape=shapes.Spike(20, 20, 30), workload=workload, processes=4)
    )
    assert option(command, "--mlflow-shape") == "spike"
    assert "--mlflow-steps" not in command
    assert option(command, "--mlflow-writer-weight") == "5"
    assert option(command, "--mlflow-wait-min") == "0.1"
    assert option(command, "--processes") == "4"
    assert command[-2:] == ["TrackingWriter", "ArtifactUser"]  # weight 0: not run at all
    master = runner.locust_command(plan(tmp_path, expect_workers=3, master_bind_port=5600))
    assert "--master" in master
    assert option(master, "--expect-workers") == "3"
    assert option(master, "--expect-workers-max-wait") == str(runner.WORKER_WAIT)
    assert option(master, "--master-bind-port") == "5600"


def test_hard_limit_covers_start_up_and_worker_wait(tmp_path):
    assert plan(tmp_path).hard_limit == 90 + runner.STARTUP_ALLOWANCE
    assert plan(tmp_path, expect_workers=2).hard_limit == (
        90 + runner.STARTUP_ALLOWANCE + runner.WORKER_WAIT
    )
    assert plan(tmp_path, time_limit=5).hard_limit == 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"writer_weight": -1}, "weights must be 0 or more"),
        ({"writer_weight": 0, "reader_weight": 0, "artifact_weight": 0}, "not all 0"),
        ({"wait_min": 2, "wait_max": 1}, "0 <= min <= max"),
        ({"artifact_bytes": 0}, "at least 1 byte"),
    ],
)
def test_workload_rejects_nonsense(changes, message):
    with pytest.raises(ValueError, match=message):
        runner.Workload(**changes)


def fake_python(tmp_path: Path, body: str) -> str:
    """A stand-in for the interpreter that ignores locust's arguments and runs ``body``."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_hard_bound_stops_a_run_that_does_not_end(tmp_path):
    started = time.monotonic()
    outcome = runner.run(
        plan(tmp_path, time_limit=1), python=fake_python(tmp_path, "exec sleep 60")
    )
    assert outcome.timed_out
    assert time.monotonic() - started < 10
    assert "did not finish within" in outcome.problem(tmp_path / "load" / "locust.log")


def test_a_generator_ignoring_sigint_is_killed_with_its_group(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "STOP_GRACE", 0.5)
    seen: list[runner.LocustProcess] = []
    python = fake_python(tmp_path, "trap '' INT\nsleep 60 &\nwait")
    outcome = runner.run(plan(tmp_path, time_limit=1), seen.append, python=python)
    assert outcome.timed_out

    def none_running() -> Observation:  # zombies may wait for a PID 1 that does not reap
        left = [p for p in procstat.session_processes(seen[0].pid) if p.state != "Z"]
        return Observation(not left, f"still running: {left}")

    # A SIGKILLed process takes a moment to go on a busy machine; one that ignored the
    # kill would still run its 60 s sleep when this gives up.
    wait_until(none_running, timeout=5, interval=0.1, what="the generator's group to be gone")


def test_ctrl_c_stops_locust_and_reaches_the_caller(tmp_path):
    seen: list[runner.LocustProcess] = []

    def interrupt(process):
        seen.append(process)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(plan(tmp_path), interrupt, python=fake_python(tmp_path, "exec sleep 60"))
    assert seen[0].proc.poll() is not None


def test_exit_code_and_last_error_line_are_reported(tmp_path):
    python = fake_python(tmp_path, "echo 'ERROR/locust.main: No User class found!'\nexit 1")
    outcome = runner.run(plan(tmp_path), python=python)
    assert outcome.returncode == 1
    problem = outcome.problem(tmp_path / "load" / "locust.log")
    assert problem.startswith("locust exited with code 1: ERROR/locust.main: No User class")


def test_the_test_process_never_imports_gevent_or_locust():
    modules = [
        "mlflow_acceptance.load.runner",
        "mlflow_acceptance.load.slo",
        "mlflow_acceptance.load.shapes",
        "mlflow_acceptance.load.report",
        "mlflow_acceptance.load.calibration",
        "mlflow_acceptance.load.autoscaling",
        "mlflow_acceptance.load.warmup",
        "mlflow_acceptance.load.procstat",
        "mlflow_acceptance.load.__main__",
        "mlflow_acceptance.suites.test_autoscaling",
    ]
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_locust_loads_the_locustfile_with_its_users_and_options():
    env = runner.locust_environment()
    listing = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(runner.LOCUSTFILE), "--list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert sorted(listing.stdout.split()[2:]) == ["ArtifactUser", "Reader", "TrackingWriter"]
    # locust prints --help before it loads a locustfile, so probe the custom options instead
    command = runner.locust_command(plan(Path("/nonexistent")))
    probe_args = [
        *command[: command.index("--headless")],
        *command[command.index("--mlflow-prefix") :],
        "--list",
    ]
    probe = subprocess.run(
        probe_args,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    bad = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(runner.LOCUSTFILE), "--mlflow-shape", "zig"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert "--mlflow-shape: invalid choice: 'zig'" in bad.stderr

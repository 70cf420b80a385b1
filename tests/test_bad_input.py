"""A wrong option or a missing prerequisite ends the run with one clear line, before anything
is started, and never with a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_ACC_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--target", "moon"], {}, "--target='moon' is not one of local, external, kind, gke"),
        (
            [
                "--ca-bundle",
                "/nonexistent.pem",
                "--target",
                "external",
                "--tracking-uri",
                "https://127.0.0.1:9",
            ],
            {},
            "--ca-bundle /nonexistent.pem: no such file",
        ),
        ([], {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, "no Docker engine reachable"),
        (
            ["--target", "external", "--tracking-uri", f"http://127.0.0.1:{closed_port()}"],
            {},
            "cannot reach http://127.0.0.1:",
        ),
    ],
)
def test_one_clear_line(args, env, expected, tmp_path):
    result = run_pytest("suites/test_health.py", "--reports-dir", str(tmp_path), *args, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert expected in output, output
    assert "Traceback" not in output, output
    error_lines = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert len(error_lines) == 1, output


def test_self_tests_do_not_need_a_docker_engine(tmp_path):
    """Only runs that collect deployment tests check the target's prerequisites."""
    result = run_pytest(
        "tests/test_options.py",
        "--reports-dir",
        str(tmp_path),
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_target_that_cannot_start_ends_the_run_once_with_one_line(
    pytester, tmp_path, monkeypatch
):
    """`--mlflow-version 2.22.2` used to end in 78 setup errors, each retrying the stack and
    printing its traceback: the first failure now ends the run, with one line."""
    pytester.makeconftest(
        """
from mlflow_acceptance.fixtures.core.errors import TargetError
from mlflow_acceptance.fixtures.targets.external import target

target.ExternalTarget.check = lambda self: None
attempts = []

def start(self):
    attempts.append(1)
    raise TargetError("schema migration failed (exit 1):\\nImportError: FallbackAsyncAdapted")

target.ExternalTarget.start = start
"""
    )
    pytester.makepyfile(
        "\n".join(f"def test_{n}(deployment):\n    assert deployment\n" for n in range(5))
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess(
        "-p", "mlflow_acceptance.fixtures.plugin", "--target", "external", "--tracking-uri", "https://127.0.0.1:9",
        "--reports-dir", str(tmp_path), "-p", "no:randomly",
    )  # fmt: skip
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, output
    assert output.count("could not stand up the external target") == 1, output
    assert "schema migration failed (exit 1)" in output
    assert "startup-error.txt" in output
    assert "Traceback" not in output
    assert (
        "ImportError: FallbackAsyncAdapted" in next(tmp_path.rglob("startup-error.txt")).read_text()
    )

"""Which arguments after `nox -s <session> --` replace the session's default test folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_acceptance.fixtures.core.pytest_args import with_default_paths

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = ["suites", "chaos"]


@pytest.mark.parametrize(
    "posargs",
    [
        [],
        ["-m", "smoke"],
        ["--tracking-uri", "https://127.0.0.1:8443", "--ca-bundle", str(ROOT / "pyproject.toml")],
        ["--ca-bundle", "pyproject.toml", "-x"],
        ["--reports-dir", "reports"],
        ["-k", "suites"],  # an expression that happens to be a folder's name
        ["--deselect", "suites/test_health.py::test_ui_root_serves_html"],
    ],
)
def test_options_and_their_values_keep_the_default_folders(posargs):
    assert with_default_paths(posargs, DEFAULTS, ROOT) == [*DEFAULTS, *posargs]


@pytest.mark.parametrize(
    "posargs",
    [
        ["suites/test_health.py", "-x"],
        ["-m", "smoke", "suites/test_health.py::test_health_through_front_door"],
        [str(ROOT / "chaos")],
        ["--offline", "chaos/test_pod_kill.py"],
    ],
)
def test_named_test_paths_replace_the_default_folders(posargs):
    assert with_default_paths(posargs, DEFAULTS, ROOT) == posargs


@pytest.mark.parametrize(
    "posargs",
    [
        ["--db-dsn", "mysql://u:s3cret@db/mlflow", "-m", "smoke"],
        ["--db-dsn=mysql://u:s3cret@db/mlflow", "-m", "smoke"],
    ],
)
def test_secret_options_leave_the_command_line_for_the_environment(posargs):
    """Real-cluster trial: nox echoed --db-dsn with its password into console and CI logs."""
    from mlflow_acceptance.fixtures.core.pytest_args import secrets_to_environment

    args, env = secrets_to_environment(posargs)
    assert args == ["-m", "smoke"]
    assert env == {"MLFLOW_ACC_DB_DSN": "mysql://u:s3cret@db/mlflow"}
    assert not any("s3cret" in arg for arg in args)

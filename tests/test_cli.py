"""The console command and the wheel: what `uvx mlflow-acceptance …` and another
repository's `pytest --pyargs mlflow_acceptance.suites` get."""

from __future__ import annotations

import shutil
import site as site_module
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from mlflow_acceptance.fixtures import cli

from mlflow_acceptance import ROOT

UV = shutil.which("uv")


def test_usage_names_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in [*cli.TARGET_COMMANDS, *cli.OTHER_COMMANDS]:
        assert f"\n  {command} " in out


def test_an_unknown_command_is_one_line_and_exit_2(capsys):
    assert cli.main(["locall"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no command 'locall'" in err
    assert "local, external" in err


def test_a_targets_help_lists_its_own_options_only(capsys):
    assert cli.main(["external", "--help"]) == 0
    external = capsys.readouterr().out
    assert "--tracking-uri URL" in external
    assert "MLFLOW_ACC_DB_DSN" in external
    assert "--replicas" not in external  # the local target's
    assert cli.main(["local", "-h"]) == 0
    local = capsys.readouterr().out
    assert "--replicas N" in local
    assert "--tracking-uri" not in local


def test_target_runs_get_their_default_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = cli.pytest_args("external", ["--tracking-uri", "https://h", "-m", "smoke"])
    assert args == [
        "--target",
        "external",
        str(ROOT / "suites"),
        "--tracking-uri",
        "https://h",
        "-m",
        "smoke",
    ]
    assert cli.pytest_args("local", [])[2:] == [str(ROOT / "suites"), str(ROOT / "chaos")]


def test_test_paths_name_the_packages_tests_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = cli.pytest_args("local", ["suites/test_health.py::test_health", "-x"])
    assert args == ["--target", "local", f"{ROOT}/suites/test_health.py::test_health", "-x"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if UV is None:
        pytest.skip("uv is not on PATH (the README's set-up line installs it)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [UV, "build", "--wheel", "--quiet", "-o", str(out), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (found,) = out.glob("mlflow_acceptance-*.whl")
    return found


def test_the_wheel_holds_one_package_with_what_runs_need(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names}
    assert tops == {"mlflow_acceptance", next(t for t in tops if t.endswith(".dist-info"))}
    for needed in [
        "__init__.py",
        "fixtures/plugin.py",
        "fixtures/cli.py",
        "fixtures/targets/local/nginx.conf",
        "suites/conftest.py",
        "suites/test_health.py",
        "chaos/test_pod_kill.py",
        "load/locustfile.py",
        "images/mlflow/Dockerfile",
        "values/base.yaml",
        "kind-config.yaml",
        "pyproject.toml",
        "uv.lock",
    ]:
        assert f"mlflow_acceptance/{needed}" in names, needed
    assert not any(name.startswith("mlflow_acceptance/tests/") for name in names)
    assert not any("__pycache__" in name for name in names)


def test_the_wheel_depends_on_the_test_group_and_declares_its_entry_points(wheel):
    archive = zipfile.ZipFile(wheel)
    info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in archive.read(info).decode().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    pins = [r for r in groups["test"] if isinstance(r, str)] + groups["server"]
    assert sorted(requires) == sorted(pin.split("#")[0].strip() for pin in pins)
    entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "mlflow-acceptance = mlflow_acceptance.fixtures.cli:main" in entry_points
    assert "mlflow_acceptance.fixtures.plugin = mlflow_acceptance.fixtures.plugin" in entry_points


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel alone in a venv that sees this environment's packages (no download)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run(
        [UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [UV, "pip", "install", "--quiet", "--no-deps", "--python", str(python), str(wheel)],
        check=True,
        timeout=120,
    )
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "the-test-environment.pth").write_text("\n".join(site_module.getsitepackages()) + "\n")
    return venv / "bin"


def run_in(folder: Path, *command: str) -> subprocess.CompletedProcess:
    """A command run outside the checkout, so only the installed wheel can be imported."""
    return subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_installed_command_runs_from_any_folder(installed, tmp_path):
    result = run_in(tmp_path, str(installed / "mlflow-acceptance"), "external", "--help")
    assert result.returncode == 0, result.stderr
    assert "--tracking-uri URL" in result.stdout
    where = run_in(
        tmp_path, str(installed / "python"), "-c", "import mlflow_acceptance as m; print(m.ROOT)"
    )
    assert "site-packages" in where.stdout, where.stdout + where.stderr


def test_the_installed_command_names_itself_where_a_checkout_names_nox(installed, tmp_path):
    code = "from mlflow_acceptance.fixtures.cli import how_to_run; print(how_to_run('external'))"
    result = run_in(tmp_path, str(installed / "python"), "-c", code)
    assert result.stdout.strip() == "mlflow-acceptance external", result.stderr
    assert cli.how_to_run("external") == "nox -s external --"


def test_the_installed_plugin_stays_out_of_other_test_runs(installed, tmp_path):
    (tmp_path / "test_theirs.py").write_text("def test_theirs():\n    assert True\n")
    result = run_in(tmp_path, str(installed / "python"), "-m", "pytest", "-q", "test_theirs.py")
    assert result.returncode == 0, result.stdout[-2000:]
    assert not (tmp_path / "reports").exists(), "the plugin wrote reports into a run not its own"


def test_pytest_pyargs_runs_the_installed_suites_against_a_target(installed, tmp_path):
    result = run_in(
        tmp_path,
        str(installed / "python"),
        "-m",
        "pytest",
        "-p",
        "no:locust",
        "--pyargs",
        "mlflow_acceptance.suites",
        "--target",
        "external",
        "--tracking-uri",
        "https://127.0.0.1:9",
        "-m",
        "smoke",
        "--collect-only",
        "-q",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "test_health.py::" in result.stdout
    assert (tmp_path / "reports").is_dir()  # asked for a target: the plugin is at work

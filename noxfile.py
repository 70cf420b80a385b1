"""Sessions: `nox -s tests` (self-tests), `nox -s local` (the main job), and the rest.

Arguments after `--` go to pytest (or to the load runner for `load`). Sessions share
environments: one per set of dependency groups, in the user's cache, synced by uv to
uv.lock (every transitive pin, hashed), so a second run installs nothing and every session
that needs the `test` group runs the very same packages.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
# The `nox` console script (pipx) puts its own folder first on sys.path, not the project's.
sys.path.insert(0, str(ROOT))

from mlflow_acceptance.fixtures.core.pytest_args import secrets_to_environment  # noqa: E402
from mlflow_acceptance.fixtures.core.timings import ENVIRONMENT_SECONDS  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlflow-acceptance"
ENVIRONMENTS = CACHE / "env"
CLI = "mlflow_acceptance.fixtures.cli"  # what `mlflow-acceptance` runs, from the checkout

nox.options.default_venv_backend = "none"  # environments are uv's, shared (see sync)
nox.options.sessions = ["lint", "tests"]

# Give pytest time to tear the stack down after Ctrl-C before nox escalates to SIGTERM.
INTERRUPT = {"interrupt_timeout": 300, "terminate_timeout": 60}


class Environment:
    """A shared environment synced from uv.lock; runs its own programs."""

    def __init__(self, location: Path, sync_seconds: float) -> None:
        self.location = location
        self.sync_seconds = sync_seconds  # reported in the run's "where the time went"

    def run(self, session: nox.Session, program: str, *args: str, **kwargs) -> None:
        variables = {
            "VIRTUAL_ENV": str(self.location),
            "PATH": os.pathsep.join([str(self.location / "bin"), os.environ.get("PATH", "")]),
            ENVIRONMENT_SECONDS: f"{self.sync_seconds:.1f}",
        }
        env = {**variables, **kwargs.pop("env", {})}
        session.run(str(self.location / "bin" / program), *args, env=env, **kwargs)


def sync(session: nox.Session, *groups: str) -> Environment:
    """The shared environment of ``groups``, made to match uv.lock exactly (uv removes what
    the lock lacks; nothing happens when it already matches)."""
    location = ENVIRONMENTS / "-".join(groups)
    started = time.monotonic()
    session.run(
        "uv",
        "sync",
        "--locked",
        "--no-install-project",
        "--python",
        sys.executable,
        *(f"--only-group={group}" for group in groups),
        env={"UV_PROJECT_ENVIRONMENT": str(location)},
        silent=True,
    )
    return Environment(location, time.monotonic() - started)


def run_cli(session: nox.Session, *args: str) -> None:
    """The console command (fixtures/cli.py) in the `test` environment. Secret options go to
    it through the environment, never on the command line nox echoes."""
    environment = sync(session, "test")
    posargs, secrets = secrets_to_environment(session.posargs)
    environment.run(session, "python", "-m", CLI, *args, *posargs, env=secrets, **INTERRUPT)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    environment = sync(session, "lint")
    environment.run(session, "ruff", "check", ".")
    environment.run(session, "ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Self-tests of the suite's own code: no Docker, no cluster, seconds."""
    environment = sync(session, "test")
    environment.run(session, "pytest", "tests", *session.posargs)


@nox.session(default=False)
def local(session: nox.Session) -> None:
    """Stand up the local stack in containers and run suites/ and chaos/ against it."""
    run_cli(session, "local")


@nox.session(default=False)
def external(session: nox.Session) -> None:
    """Run the suites against a deployment that already exists (give --tracking-uri)."""
    run_cli(session, "external")


@nox.session(default=False)
def kind(session: nox.Session) -> None:
    """Create a kind cluster, deploy the chart with stand-ins, run every suite, tear down."""
    run_cli(session, "kind")


@nox.session(default=False)
def gke(session: nox.Session) -> None:
    """Run the suites against an existing cluster (GKE staging) through --kube-context."""
    run_cli(session, "gke")


@nox.session(default=False)
def load(session: nox.Session) -> None:
    """Locust load run with SLO gates against any deployment (--host URL or --target local)."""
    run_cli(session, "load")


@nox.session(default=False)
def stack(session: nox.Session) -> None:
    """Stand up the local stack (or --target kind) and keep it until Ctrl-C, for by hand or
    for `nox -s external` / `nox -s gke` against it."""
    run_cli(session, "stack")


@nox.session(default=False)
def prove(session: nox.Session) -> None:
    """Break the local stack in each known way and show the checks catch it (slow)."""
    run_cli(session, "prove")

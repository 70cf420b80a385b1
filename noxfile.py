"""Sessions: `nox -s tests` (self-tests), `nox -s local` (the main job), and the rest.

Arguments after `--` go to pytest (or to the load runner for `load`). Virtualenvs live in
the user's cache and are reused; they are reinstalled only when pyproject.toml's pinned
dependency groups change.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
# The `nox` console script (pipx) puts its own folder first on sys.path, not the project's.
sys.path.insert(0, str(ROOT))

from fixtures.core.pytest_args import secrets_to_environment, with_default_paths  # noqa: E402

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlflow-acceptance"

nox.options.envdir = str(CACHE / "nox")
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

# Give pytest time to tear the stack down after Ctrl-C before nox escalates to SIGTERM.
INTERRUPT = {"interrupt_timeout": 300, "terminate_timeout": 60}


def install(session: nox.Session, *groups: str) -> None:
    """Install the pinned dependency groups, skipping pip when nothing changed."""
    requirements = [
        req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)
    ]
    digest = hashlib.sha256(json.dumps(requirements).encode()).hexdigest()
    stamp = Path(session.virtualenv.location) / ".mlflow-acceptance-deps"
    if stamp.is_file() and stamp.read_text() == digest:
        session.log("pinned dependencies already installed")
        return
    session.install(*requirements)
    stamp.write_text(digest)


def run_target(session: nox.Session, target: str, default_paths: list[str]) -> None:
    """pytest against one target: its default folders unless the user named test paths.
    Secret options go to pytest through the environment, never on the echoed command line."""
    install(session, "test")
    posargs, secrets = secrets_to_environment(session.posargs)
    args = with_default_paths(posargs, default_paths, ROOT)
    session.run("pytest", "--target", target, *args, env=secrets, **INTERRUPT)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Self-tests of the suite's own code: no Docker, no cluster, seconds."""
    install(session, "test")
    session.run("pytest", "tests", *session.posargs)


@nox.session(default=False)
def local(session: nox.Session) -> None:
    """Stand up the local stack in containers and run suites/ and chaos/ against it."""
    run_target(session, "local", ["suites", "chaos"])


@nox.session(default=False)
def external(session: nox.Session) -> None:
    """Run the suites against a deployment that already exists (give --tracking-uri)."""
    run_target(session, "external", ["suites"])


@nox.session(default=False)
def kind(session: nox.Session) -> None:
    """Create a kind cluster, deploy the chart with stand-ins, run every suite, tear down."""
    run_target(session, "kind", ["suites", "chaos"])


@nox.session(default=False)
def gke(session: nox.Session) -> None:
    """Run the suites against an existing cluster (GKE staging) through --kube-context."""
    run_target(session, "gke", ["suites"])


@nox.session(default=False)
def load(session: nox.Session) -> None:
    """Locust load run with SLO gates against any deployment (--host URL or --target local)."""
    install(session, "test")
    session.run("python", "-m", "load", *session.posargs, **INTERRUPT)


@nox.session(default=False)
def stack(session: nox.Session) -> None:
    """Stand up the local stack (or --target kind) and keep it until Ctrl-C, for by hand or
    for `nox -s external` / `nox -s gke` against it."""
    install(session, "test")
    session.run("python", "-m", "fixtures.stack", *session.posargs, **INTERRUPT)


@nox.session(default=False)
def prove(session: nox.Session) -> None:
    """Break the local stack in each known way and show the checks catch it (slow)."""
    install(session, "test")
    session.run("python", "-m", "fixtures.prove", *session.posargs, **INTERRUPT)

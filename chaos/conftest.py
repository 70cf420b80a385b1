"""Fixtures every chaos experiment shares: the client as users run it, and experiment runs
whose writers are always stopped."""

from __future__ import annotations

import pytest

from chaos.run import ChaosRun

TEARDOWN_JOIN_SECONDS = 30.0  # writers left running by a failed test get this long to stop


@pytest.fixture(autouse=True)
def default_client_retries(deployment, monkeypatch):
    """The writers use the MLflow client as users run it: its default retries. Only what
    the harness set is undone; a user's own setting stays."""
    for name in deployment.fast_retries_set:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def chaos_run(deployment, run_state, measure):
    """Make experiment runs; at teardown stop their writers even when the test failed or
    was interrupted before finish(), so none writes on into the next test's fault."""
    runs: list[ChaosRun] = []

    def make(name: str, writers: int = 8) -> ChaosRun:
        runs.append(ChaosRun(name, deployment, run_state.run_dir, measure, writers=writers))
        return runs[-1]

    yield make
    for run in runs:
        run.pool.stop(join_timeout=TEARDOWN_JOIN_SECONDS)

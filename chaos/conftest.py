"""Fixtures every chaos experiment shares: the client as users run it, and experiment runs
whose writers are always stopped."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from mlflow_acceptance.chaos.run import ChaosRun

TEARDOWN_JOIN_SECONDS = 30.0  # writers left running by a failed test get this long to stop
CHAOS_REPLICAS = 2  # experiments start from this many Ready replicas where the target can


@dataclass(frozen=True)
class HeldReplicas:
    count: int  # Ready replicas held for the module's experiments
    idle_minimum: int  # what the deployment itself runs at idle (its HPA's minReplicas)


@pytest.fixture(scope="module", autouse=True)
def steady_replicas(deployment) -> HeldReplicas | None:
    """Each module's experiments start from a known replica count: 2 Ready replicas held
    (an autoscaler's min and max set to 2, restored afterwards), so no scale-down cuts into
    a fault and the pod-kill experiments never depend on what an earlier load left."""
    controller = deployment.replica_controller
    if controller is None or not deployment.disruptive_allowed:
        yield None  # the per-test guard skips the experiments themselves
        return
    if deployment.autoscaler is not None:
        idle_minimum = deployment.autoscaler.sample()["min_replicas"]
    else:
        idle_minimum = len(controller.list())
    with controller.hold(CHAOS_REPLICAS) as held:
        yield HeldReplicas(held, idle_minimum)


@pytest.fixture(autouse=True)
def default_client_retries(deployment, monkeypatch):
    """The writers use the MLflow client as users run it: its default retries. Only what
    the harness set is undone; a user's own setting stays."""
    for name in deployment.fast_retries_set:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def chaos_run(deployment, run_state, measure, hardening):
    """Make experiment runs; at teardown stop their writers even when the test failed or
    was interrupted before finish(), so none writes on into the next test's fault."""
    runs: list[ChaosRun] = []

    def make(name: str, writers: int = 8) -> ChaosRun:
        runs.append(
            ChaosRun(name, deployment, run_state.run_dir, measure, hardening, writers=writers)
        )
        return runs[-1]

    yield make
    for run in runs:
        run.stop_workload(join_timeout=TEARDOWN_JOIN_SECONDS)

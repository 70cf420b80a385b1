"""Steady-state probes the experiments share, and the one deliberate wait they use."""

from __future__ import annotations

import time

from mlflow.exceptions import MlflowException
from mlflow_acceptance.chaos.experiment import Probe
from mlflow_acceptance.fixtures.core.capabilities import ReplicaController
from mlflow_acceptance.fixtures.core.deployment import Deployment
from mlflow_acceptance.fixtures.core.mlflow_api import explain_write_failure
from mlflow_acceptance.fixtures.core.waiting import Observation


def wait_seconds(seconds: float) -> None:
    """Let the workload run for a fixed stretch: a deliberate duration, not a wait for a state."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))


def front_door_health(deployment: Deployment) -> Probe:
    def check() -> Observation:
        response = deployment.http.get("/health", timeout=5)
        return Observation(response.status_code == 200, f"/health HTTP {response.status_code}")

    return Probe("the front door answers /health", check)


def write_and_read_back(deployment: Deployment, experiment_id: str) -> Probe:
    client = deployment.mlflow_client()

    def check() -> Observation:
        try:
            run = client.create_run(experiment_id, tags={"acc.probe": "steady-state"})
            client.log_metric(run.info.run_id, "probe", 1.0)
            value = client.get_run(run.info.run_id).data.metrics.get("probe")
        except MlflowException as exc:
            return Observation(False, explain_write_failure(exc))
        return Observation(value == 1.0, f"wrote and read back probe={value}")

    return Probe("a run can be written and read back", check)


def replicas_ready(controller: ReplicaController) -> Probe:
    def check() -> Observation:
        replicas = controller.list()
        ready = [r for r in replicas if r.ready]
        seen = ", ".join(f"{r.name}={'Ready' if r.ready else r.detail}" for r in replicas)
        return Observation(bool(replicas) and len(ready) == len(replicas), seen)

    return Probe("every replica is Ready", check)


def controller_for(deployment: Deployment) -> tuple[ReplicaController, list]:
    """The replica controller and its replicas now; skips where the target has none."""
    controller = deployment.require("replica_controller", "cannot kill or replace replicas")
    return controller, controller.list()


def replica_steady_state(controller, deployment: Deployment, run) -> list[Probe]:
    """Every replica Ready, the front door healthy, and a run writable and readable."""
    return [
        replicas_ready(controller),
        front_door_health(deployment),
        write_and_read_back(deployment, run.experiment_id),
    ]

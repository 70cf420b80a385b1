"""What every chaos experiment shares: the workload around the fault, the audit after it,
the journal and timeline in the reports, and the measurements in summary.json."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from chaos.audit import AuditResult, audit
from chaos.experiment import Journal, Probe
from chaos.timeline import p95_ms, write_plot
from chaos.workload import WriterPool
from fixtures.waiting import Observation

WARM_UP_SECONDS = 3.0  # writes before the fault, so the plot shows the steady state
AUDIT_DETAIL_LIMIT = 50  # lost / duplicated writes named in each journal
TEARDOWN_JOIN_SECONDS = 30.0  # writers left running by a failed test get this long to stop
SETTLE_SECONDS = 5.0  # writes after recovery, so late failures (stale connections) show


@dataclass
class ChaosRun:
    """One experiment's workload, timeline events and verdict inputs."""

    name: str
    deployment: object
    run_dir: object
    measure: object
    writers: int = 8
    events: list[tuple[float, str]] = field(default_factory=list)
    fault_at: float | None = None
    recovered_at: float | None = None
    # (from, to) of each replica kill: from the kill order until the replica was seen down
    kill_windows: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = self.deployment.mlflow_client()
        self.experiment_id = self.client.create_experiment(self.deployment.unique_name(self.name))
        self.pool = WriterPool(self.client, self.experiment_id, writers=self.writers)
        self.origin = time.monotonic()

    # ---- phases --------------------------------------------------------------------------
    def start_workload(self) -> None:
        self.pool.start()
        wait_seconds(WARM_UP_SECONDS)

    def mark(self, label: str) -> float:
        now = time.monotonic()
        self.events.append((now, label))
        if label.startswith("fault") and self.fault_at is None:
            self.fault_at = now
        if label == "recovered":
            self.recovered_at = now
        return now

    def finish(self, journal: Journal) -> AuditResult:
        """Let the workload settle, stop it, audit every acknowledged write, write reports."""
        wait_seconds(SETTLE_SECONDS)
        stragglers = self.pool.stop()
        ops = self.pool.snapshot()
        result = audit(
            self.client,
            self.experiment_id,
            ops,
            database=self.deployment.database,
            object_store=self.deployment.object_store,
        )
        folder = self.run_dir / "chaos"
        journal.outputs["audit"] = result.summary()
        # Which writes, not only how many: a lost or doubled write is named in the journal.
        journal.outputs["lost"] = result.lost[:AUDIT_DETAIL_LIMIT]
        journal.outputs["duplicated"] = result.duplicates[:AUDIT_DETAIL_LIMIT]
        journal.outputs["stragglers"] = stragglers
        journal.write(folder / f"{self.name}.journal.json")
        write_plot(
            folder / f"{self.name}.png",
            f"{self.name}: {result.summary()}",
            ops,
            self.origin,
            self.events,
        )
        fault = self.fault_at or self.origin
        recovered = self.recovered_at or time.monotonic()
        values = {
            "recovery_seconds": round(recovered - fault, 1),
            "client_failures": result.client_failures,
            "lost_writes": len(result.lost_ops),
            "duplicate_writes": len(result.duplicates),
            "acknowledged_writes": result.acknowledged,
            "p95_ms_during_fault": p95_ms(ops, fault, recovered),
            "max_op_seconds": round(max((op.seconds for op in ops), default=0.0), 1),
        }
        for key, value in values.items():
            self.measure(f"{self.name}.{key}", value)
        self.values = values
        self.ops = ops
        return result

    def failures_after(self, moment: float) -> list[str]:
        return [
            f"{op.kind} {op.id}: {op.error}"
            for op in self.ops
            if not op.ok and op.started >= moment
        ]


def wait_seconds(seconds: float) -> None:
    """Let the workload run for a fixed stretch: a deliberate duration, not a wait for a state."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))


def front_door_health(deployment) -> Probe:
    def check() -> Observation:
        response = deployment.http.get("/health", timeout=5)
        return Observation(response.status_code == 200, f"/health HTTP {response.status_code}")

    return Probe("the front door answers /health", check)


def write_and_read_back(deployment, experiment_id: str) -> Probe:
    client = deployment.mlflow_client()

    def check() -> Observation:
        run = client.create_run(experiment_id, tags={"acc.probe": "steady-state"})
        client.log_metric(run.info.run_id, "probe", 1.0)
        value = client.get_run(run.info.run_id).data.metrics.get("probe")
        return Observation(value == 1.0, f"wrote and read back probe={value}")

    return Probe("a run can be written and read back", check)


def replicas_ready(controller) -> Probe:
    def check() -> Observation:
        replicas = controller.list()
        ready = [r for r in replicas if r.ready]
        seen = ", ".join(f"{r.name}={'Ready' if r.ready else r.detail}" for r in replicas)
        return Observation(bool(replicas) and len(ready) == len(replicas), seen)

    return Probe("every replica is Ready", check)


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

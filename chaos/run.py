"""One experiment's run: the writer pool around the fault, the timeline events, and what
``finish`` derives (the loss audit, the journal and timeline in the reports, measurements)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_acceptance.chaos.audit import AuditResult, audit
from mlflow_acceptance.chaos.experiment import Journal
from mlflow_acceptance.chaos.prober import Phase, RawProber, phases, tag_round_trip
from mlflow_acceptance.chaos.probes import wait_seconds
from mlflow_acceptance.chaos.timeline import p95_ms, write_plot
from mlflow_acceptance.chaos.workload import Op, WriterPool
from mlflow_acceptance.fixtures.core.deployment import Deployment
from mlflow_acceptance.fixtures.core.replica_watch import ReplicaWatch

WARM_UP_SECONDS = 8.0  # writes before the fault: the steady state the prober's latency is
# judged against, and the plot's left edge
AUDIT_DETAIL_LIMIT = 50  # lost / duplicated writes named in each journal
SETTLE_SECONDS = 24.0  # writes after recovery, so late failures (stale connections) show;
# the prober's latency is judged on its second half (a hardening finding if not back)


@dataclass
class ChaosRun:
    """One experiment's workload, timeline events and verdict inputs."""

    name: str
    deployment: Deployment
    run_dir: Path
    measure: Callable[[str, Any], Any]
    hardening: Callable[[str, str], None]  # a finding apart from failures (finding, advice)
    writers: int = 8
    events: list[tuple[float, str]] = field(default_factory=list)
    fault_at: float | None = None
    recovered_at: float | None = None
    # (from, to) of each replica kill: from the kill order until the replica was seen down
    kill_windows: list[tuple[float, float]] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)  # the write journal, once finished
    hung: list[Op] = field(default_factory=list)  # calls unanswered when the writers stopped
    values: dict[str, Any] = field(default_factory=dict)  # the measurements, once finished
    probe_phases: list[Phase] = field(default_factory=list)  # the raw prober's, once finished
    prober_stopped: bool = True  # False if its last call was unanswered past its timeout
    # an experiment's own raw probers (slow uploads, ...), stopped with the workload
    side_probers: list[RawProber] = field(default_factory=list)
    side_probers_stopped: bool = True  # False if one's last call was unanswered

    def __post_init__(self) -> None:
        self.client = self.deployment.mlflow_client()
        self.experiment_id = self.client.create_experiment(self.deployment.unique_name(self.name))
        self.pool = WriterPool(self.client, self.experiment_id, writers=self.writers)
        probe_run = self.client.create_run(self.experiment_id, tags={"acc.probe": "raw"})
        self.prober = RawProber(
            self.deployment, f"{self.name}-prober", tag_round_trip(probe_run.info.run_id)
        )
        self.watch = ReplicaWatch(self.deployment)
        self.origin = time.monotonic()

    def start_workload(self) -> None:
        self.pool.start()
        self.prober.start()
        self.watch.start()
        wait_seconds(WARM_UP_SECONDS)

    def add_probers(self, probers: list[RawProber]) -> None:
        """Start an experiment's own probers; they stop with the workload, also at teardown."""
        self.side_probers.extend(probers)
        for prober in probers:
            prober.start()

    def stop_workload(self, join_timeout: float) -> None:
        """Stop writers and probers (teardown: also when the test failed before finish)."""
        self.pool.stop(join_timeout=join_timeout)
        self.prober.stop()
        self.watch.stop()
        for prober in self.side_probers:
            prober.stop()

    def mark(self, label: str) -> float:
        now = time.monotonic()
        self.events.append((now, label))
        if label.startswith("fault") and self.fault_at is None:
            self.fault_at = now
        if label == "recovered":
            self.recovered_at = now
        return now

    def finish(self, journal: Journal, settle_seconds: float = SETTLE_SECONDS) -> AuditResult:
        """Let the workload settle, stop it, audit every acknowledged write, write reports."""
        wait_seconds(settle_seconds)
        self.hung = self.pool.stop()
        self.prober_stopped = self.prober.stop()
        self.side_probers_stopped = all([prober.stop() for prober in self.side_probers])
        self.watch.stop()
        self.ops = ops = self.pool.snapshot()
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
        journal.outputs["hung"] = [f"{op.kind} {op.id}: {op.error}" for op in self.hung]
        fault = self.fault_at or self.origin
        recovered = self.recovered_at or time.monotonic()
        settled = recovered + settle_seconds / 2
        self.probe_phases = phases(self.prober.calls, fault, recovered, settled)
        journal.outputs["prober errors"] = {
            phase.name: [call.outcome() for call in phase.errors[:AUDIT_DETAIL_LIMIT]]
            for phase in self.probe_phases
        }
        journal.write(folder / f"{self.name}.journal.json")
        write_plot(
            folder / f"{self.name}.png",
            f"{self.name}: {result.summary()}",
            ops,
            self.origin,
            self.events,
            self.prober.calls,
            self.watch.series(self.origin),
        )
        if self.watch.errors:
            journal.outputs["replica readings missed"] = self.watch.errors[:AUDIT_DETAIL_LIMIT]
        self.values = {
            "recovery_seconds": round(recovered - fault, 1) if self.fault_at is not None else None,
            "client_failures": result.client_failures,
            "hung_calls": len(self.hung),
            "lost_writes": len(result.lost_ops),
            "duplicate_writes": len(result.duplicates),
            "acknowledged_writes": result.acknowledged,
            "p95_ms_during_fault": p95_ms(ops, fault, recovered),
            "max_op_seconds": round(max((op.seconds for op in ops), default=0.0), 1),
            "writes_per_second": writes_per_second(ops),
            "checked_in_db": result.checked_in_db,
            "checked_in_bucket": result.checked_in_bucket,
        }
        for phase in self.probe_phases:
            if not phase.calls and self.fault_at is None:
                continue  # no fault, no phases: all its calls are "during"
            self.values[f"probe_{phase.name}_calls"] = len(phase.calls)
            self.values[f"probe_{phase.name}_errors"] = len(phase.errors)
            self.values[f"probe_{phase.name}_p95_ms"] = phase.p95_ms
            self.values[f"probe_{phase.name}_max_ms"] = phase.max_ms
        for key, value in self.values.items():
            self.measure(f"{self.name}.{key}", value)
        return result

    def failures_after(self, moment: float) -> list[str]:
        return [
            f"{op.kind} {op.id}: {op.error}"
            for op in self.ops
            if not op.ok and op.started >= moment
        ]


def writes_per_second(ops: list[Op]) -> float:
    """The writers' throughput over the span of their calls (0 with fewer than two)."""
    if len(ops) < 2:
        return 0.0
    span = max(op.ended for op in ops) - min(op.started for op in ops)
    return round(len(ops) / span, 1) if span > 0 else 0.0

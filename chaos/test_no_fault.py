"""The loss audit with no fault at all: the writer pool makes a few thousand mixed writes
(runs, params, metrics, batches, tags, artifacts), then every acknowledged write is read
back through the API, in MySQL and in the bucket where the target has verifiers. Silent
loss on a deployment that looks healthy (an acknowledgement without a commit, a replica on
its own database) is caught here on every target, shared ones included: nothing is
disrupted, and everything written is removed with the run's experiments."""

from __future__ import annotations

import pytest
from mlflow_acceptance.chaos.experiment import Action, Experiment
from mlflow_acceptance.chaos.probes import front_door_health, write_and_read_back
from mlflow_acceptance.chaos.verdicts import steady_state_came_back, writes_accounted_for
from mlflow_acceptance.fixtures.core import progress
from mlflow_acceptance.fixtures.core.waiting import Observation, WaitTimeout, wait_until

pytestmark = pytest.mark.chaos  # not disruptive: it runs on shared deployments too

WRITES = 2000  # ended writer calls, of every kind: 30 s on the local stack (68/s)
WRITE_SECONDS = 300  # at most this long: a slow deployment is audited on what it took


def test_a_fault_free_load_loses_nothing(chaos_run, deployment, measure):
    run = chaos_run("no_fault")

    def write() -> str:
        def enough() -> Observation:
            ended = len(run.pool.snapshot())
            return Observation(ended >= WRITES, f"{ended} of {WRITES} writes ended")

        def show(seen: Observation, elapsed: float) -> None:
            if int(elapsed) % 30 == 0:
                progress.say(f"fault-free load: {seen.seen} after {elapsed:.0f}s")

        try:
            return wait_until(
                enough, timeout=WRITE_SECONDS, interval=1, what="the writes", on_poll=show
            ).seen
        except WaitTimeout as exc:  # audited all the same: fewer writes are still writes
            return f"only {exc}"

    experiment = Experiment(
        "a fault-free load",
        [front_door_health(deployment), write_and_read_back(deployment, run.experiment_id)],
        [Action(f"write until {WRITES} writes ended", write)],
        recovery_timeout=60,
    )
    run.start_workload()
    journal = experiment.run()
    result = run.finish(journal, settle_seconds=0)
    measure("no_fault.writes_per_second", run.values["writes_per_second"])

    steady_state_came_back(journal, result)
    writes_accounted_for(run, result, faults=0)
    failed = [f"{op.kind} {op.id}: {op.error}" for op in run.ops if not op.ok]
    assert not failed, (
        f"{len(failed)} of {len(run.ops)} writes failed with no fault at all, after the "
        f"client's own retries: {failed[:5]}"
    )
    errors = [call.outcome() for call in run.prober.calls if not call.ok]
    assert not errors, (
        f"{len(errors)} of {len(run.prober.calls)} raw calls (no retries) failed with no "
        f"fault at all: {errors[:5]}"
    )

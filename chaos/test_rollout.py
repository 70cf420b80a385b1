"""A rolling restart under write load: every replica replaced gracefully, as a deploy, a
config change or a node drain does it (SIGTERM and the grace period, not a kill).

Unlike a crash, nothing has to be lost here, even by a client without retries: a replica
told to stop finishes what it serves while the front door sends new calls to the others.
A deployment where endpoints leave the load balancer after the pod got SIGTERM (no preStop
hook), or whose grace period is shorter than its calls, fails every deploy's in-flight
requests; this is the check for it.

Local target: each container in turn is stopped (SIGTERM, SIGKILL after 30 s) and started
again, Ready before the next. Kubernetes: ``kubectl rollout restart`` of the Deployment,
with its own strategy, grace period and hooks.
"""

from __future__ import annotations

import time

import pytest

from chaos.experiment import Action, Experiment
from chaos.probes import controller_for, replica_steady_state
from chaos.verdicts import (
    prober_held,
    recovered_within,
    report_stall,
    steady_state_came_back,
    writes_accounted_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive]

# Both replicas replaced in turn: each one's stop (seconds) and start to Ready (50-160 s
# at 0.5 CPU under the write load, see test_pod_kill.RECOVERY_BOUND_SECONDS).
ROLL_BOUND_SECONDS = 2 * 150


def test_rolling_restart_fails_no_call(chaos_run, deployment, measure, hardening):
    controller, replicas = controller_for(deployment)
    if len(replicas) < 2:
        pytest.skip("one replica: replacing it is an outage (test_kill_the_only_replica)")
    run = chaos_run("rollout")
    run.start_workload()

    def roll() -> dict:
        started = run.mark("fault: rolling restart")
        steps = controller.roll(timeout=ROLL_BOUND_SECONDS)
        run.mark("recovered")
        return {"steps": steps, "seconds": round(time.monotonic() - started, 1)}

    journal = Experiment(
        title="replace every replica gracefully under write load",
        steady_state=replica_steady_state(controller, deployment, run),
        method=[Action("roll every replica", roll)],
        recovery_timeout=60,
    ).run()
    result = run.finish(journal)
    measure("rollout.seconds", journal.outputs.get("roll every replica", {}).get("seconds"))
    report_stall(run, hardening, "during a rolling restart")
    during = {phase.name: phase for phase in run.probe_phases}["during"]
    steady_state_came_back(journal, result)
    recovered_within(
        run.values["recovery_seconds"], ROLL_BOUND_SECONDS, "every replica was replaced, Ready,"
    )
    writes_accounted_for(run, result, faults=0)  # a graceful stop answers what it took
    advice = (
        "a graceful rollout must cost no call: the pod needs a preStop hook (a 5-10 s sleep, "
        "so its endpoint leaves the load balancer before SIGTERM) and a grace period longer "
        "than its longest call"
    )
    assert not during.errors, (
        f"{len(during.errors)} of {len(during.calls)} raw calls (no retries) failed during the "
        f"rolling restart: {[call.outcome() for call in during.errors[:5]]}: {advice}"
    )
    prober_held(run, during_errors=0)
    failed = [f"{op.kind} {op.id}: {op.error}" for op in run.ops if not op.ok]
    assert not failed, (
        f"{len(failed)} writes failed after the client's retries during a rolling restart: "
        f"{failed[:5]}: {advice}"
    )

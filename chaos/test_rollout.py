"""A rolling restart under write load: every replica replaced gracefully, as a deploy, a
config change or a node drain does it (SIGTERM and the grace period, not a kill).

Unlike a crash, nothing has to be lost here, even by a client without retries: a replica
told to stop finishes what it serves while the front door sends new calls to the others.
A deployment whose grace period is shorter than its calls, or whose servers die at SIGTERM,
fails every deploy's in-flight requests; this is the check for it. One that still gets
traffic while it drains (no preStop hook) loses calls sent to it after SIGTERM: MLflow's
uvicorn supervisor keeps the socket open while its workers finish and resets what queued
(502s), reported as a hardening finding.

Local target: each container in turn is stopped (SIGTERM, SIGKILL after 30 s) and started
again, Ready before the next. Kubernetes: ``kubectl rollout restart`` of the Deployment,
with its own strategy, grace period and hooks.

Short calls rarely meet a stop (a few ms each, and the client retries a cut one), so slow
uploads stream through the front door all along, each in flight for seconds as a model's
upload is: a replica that dies at SIGTERM instead of finishing them cuts them, and the
front door cannot resend a body it streamed on (unbuffered uploads).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests
from mlflow_acceptance.chaos.experiment import Action, Experiment
from mlflow_acceptance.chaos.prober import Call, RawProber, Send
from mlflow_acceptance.chaos.probes import controller_for, replica_steady_state, wait_seconds
from mlflow_acceptance.chaos.verdicts import (
    prober_held,
    recovered_within,
    report_stall,
    steady_state_came_back,
    writes_accounted_for,
)
from mlflow_acceptance.fixtures.core import mlflow_api
from mlflow_acceptance.fixtures.core.frontdoor import FrontDoorHttp

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive]

# Both replicas replaced in turn: each one's stop (seconds) and start to Ready (50-160 s
# at 0.5 CPU under the write load, see test_pod_kill.RECOVERY_BOUND_SECONDS).
ROLL_BOUND_SECONDS = 2 * 150
# Slow uploads kept in flight side by side: at each stop, each is on the stopping replica
# about half the time and had been for over a second 80 % of the time, so a stop that cuts
# calls meets several.
SLOW_UPLOADERS = 6
SLOW_UPLOAD_SECONDS = 5.0  # each body is streamed over this long
SLOW_UPLOAD_CHUNKS = 20
SLOW_UPLOAD_BYTES = 20 * 16 * 1024
SLOW_UPLOAD_TIMEOUT = (5.0, 60.0)  # connect, read: a grace period (30 s) and some
# A call in flight this long before its replica was told to stop had reached it: a graceful
# replica answers it. (Under load a replica may take a moment to accept what was just sent.)
IN_FLIGHT_SECONDS = 1.0
# What a request the front door sent to a replica already told to stop gets when that replica
# queues it and exits: without a preStop hook (the chart has none) the endpoint is still in
# rotation while the replica drains. A hardening finding, not a failure.
LATE_STATUS = 502


def in_flight_at_a_stop(call: Call, stops: list[float]) -> bool:
    return any(call.started <= stop - IN_FLIGHT_SECONDS < stop <= call.ended for stop in stops)


class PacedBody:
    """An upload's body streamed at a steady pace over ``seconds``, its length known (sent
    with Content-Length, as MLflow's client sends files)."""

    def __init__(self, data: bytes, chunks: int, seconds: float) -> None:
        self.data, self.chunks, self.interval = data, chunks, seconds / chunks

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[bytes]:
        size = -(-len(self.data) // self.chunks)
        for start in range(0, len(self.data), size):
            if start:
                wait_seconds(self.interval)  # the stream's pace, not a wait for a state
            yield self.data[start : start + size]


def slow_uploads(prefix: str) -> Send:
    """Raw artifact PUTs through the front door, each streamed over seconds, no retries."""

    def send(http: FrontDoorHttp, n: int, call: Call) -> requests.Response:
        call.name = f"PUT {prefix}/slow-{n}.bin"
        body = PacedBody(os.urandom(SLOW_UPLOAD_BYTES), SLOW_UPLOAD_CHUNKS, SLOW_UPLOAD_SECONDS)
        path = mlflow_api.artifact(f"{prefix}/slow-{n}.bin")
        return http.request("PUT", path, data=body, timeout=SLOW_UPLOAD_TIMEOUT)

    return send


def test_rolling_restart_fails_no_call(chaos_run, deployment, measure, hardening):
    controller, replicas = controller_for(deployment)
    if len(replicas) < 2:
        pytest.skip("one replica: replacing it is an outage (test_kill_the_only_replica)")
    run = chaos_run("rollout")
    uploaders = [
        RawProber(
            deployment,
            f"slow-upload-{i}",
            slow_uploads(f"{run.experiment_id}/rollout-{i}/artifacts"),
            SLOW_UPLOAD_TIMEOUT,
        )
        for i in range(SLOW_UPLOADERS)
    ]
    run.add_probers(uploaders)
    run.start_workload()

    stops: list[float] = []  # when each replica was told to stop (time.monotonic())

    def roll() -> dict:
        started = run.mark("fault: rolling restart")
        rollout = controller.roll(timeout=ROLL_BOUND_SECONDS)
        stops.extend(rollout.stops)
        run.mark("recovered")
        return {"steps": rollout.steps, "seconds": round(time.monotonic() - started, 1)}

    journal = Experiment(
        title="replace every replica gracefully under write load",
        steady_state=replica_steady_state(controller, deployment, run),
        method=[Action("roll every replica", roll)],
        recovery_timeout=60,
    ).run()
    result = run.finish(journal)
    measure("rollout.seconds", journal.outputs.get("roll every replica", {}).get("seconds"))
    report_stall(run, hardening, "during a rolling restart")
    steady_state_came_back(journal, result)
    recovered_within(
        run.values["recovery_seconds"], ROLL_BOUND_SECONDS, "every replica was replaced, Ready,"
    )
    writes_accounted_for(run, result, faults=0)  # a graceful stop answers what it took
    assert run.side_probers_stopped, "a slow upload was unanswered past its timeout"
    assert stops, "the target could not tell when replicas were told to stop"

    during = {phase.name: phase for phase in run.probe_phases}["during"]
    fault, recovered = run.fault_at or run.origin, run.recovered_at or time.monotonic()
    slow = [c for u in uploaders for c in u.calls if c.ended >= fault and c.started <= recovered]
    held = [call for call in slow if in_flight_at_a_stop(call, stops)]
    raw = [*during.calls, *slow]
    cut = [call for call in raw if not call.ok and in_flight_at_a_stop(call, stops)]
    sent_late = [c for c in raw if not c.ok and c not in cut and c.status == LATE_STATUS]
    other = [c for c in raw if not c.ok and c not in cut and c not in sent_late]
    measure("rollout.slow_uploads_in_flight_at_a_stop", len(held))
    measure("rollout.raw_calls_cut_at_a_stop", len(cut))
    measure("rollout.raw_calls_sent_to_a_stopping_replica_failed", len(sent_late))
    assert held, (
        f"none of {len(slow)} slow uploads was in flight when a replica was told to stop: "
        "nothing for this check to see"
    )
    assert not cut, (
        f"{len(cut)} raw calls (no retries) in flight when a replica was told to stop failed "
        f"during the rolling restart ({len(held)} slow uploads were in flight then): "
        f"{[call.outcome() for call in cut[:5]]}: a replica told to stop must finish what it "
        "serves (graceful shutdown; a grace period longer than its longest call)"
    )
    assert not other, (
        f"{len(other)} raw calls (no retries) failed during the rolling restart: "
        f"{[call.outcome() for call in other[:5]]}"
    )
    if sent_late:
        hardening(
            f"rollout: {len(sent_late)} raw call(s) the front door sent to a replica already "
            "told to stop got a 502: it queued them and reset them when it exited",
            "add a preStop hook (sleep 5-10 s) so the endpoint leaves the load balancer before "
            "SIGTERM (the chart has no lifecycle setting: a patch or a post-renderer); MLflow's "
            "uvicorn supervisor keeps the socket open while its workers finish",
        )
    prober_held(run, during_errors=None)  # judged above, by what the stops did to each call
    failed = [f"{op.kind} {op.id}: {op.error}" for op in run.ops if not op.ok]
    assert not failed, (
        f"{len(failed)} writes failed after the client's retries during a rolling restart: "
        f"{failed[:5]}: a graceful rollout must cost no call"
    )

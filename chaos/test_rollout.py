"""A rolling restart under write load: every replica replaced gracefully, as a deploy, a
config change or a node drain does it (SIGTERM and the grace period, not a kill).

Unlike a crash, nothing has to be lost here, even by a client without retries: a replica
told to stop finishes what it serves while the front door sends new calls to the others.
A deployment whose grace period is shorter than its calls, or whose servers die at SIGTERM,
fails every deploy's in-flight requests; this is the check for it. One whose endpoints leave
the load balancer only after SIGTERM (no preStop hook) loses the odd call the front door had
just sent: at most one per stop is reported as a hardening finding.

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

from chaos.experiment import Action, Experiment
from chaos.prober import Call, RawProber, Send
from chaos.probes import controller_for, replica_steady_state, wait_seconds
from chaos.verdicts import (
    prober_held,
    recovered_within,
    report_stall,
    steady_state_came_back,
    writes_accounted_for,
)
from fixtures.core import mlflow_api
from fixtures.core.frontdoor import FrontDoorHttp

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive]

# Both replicas replaced in turn: each one's stop (seconds) and start to Ready (50-160 s
# at 0.5 CPU under the write load, see test_pod_kill.RECOVERY_BOUND_SECONDS).
ROLL_BOUND_SECONDS = 2 * 150
# Slow uploads kept in flight side by side: at each stop, each is on the stopping replica
# about half the time, so a stop that cuts calls meets one all but surely.
SLOW_UPLOADERS = 3
SLOW_UPLOAD_SECONDS = 5.0  # each body is streamed over this long
SLOW_UPLOAD_CHUNKS = 20
SLOW_UPLOAD_BYTES = 20 * 16 * 1024
SLOW_UPLOAD_TIMEOUT = (5.0, 60.0)  # connect, read: a grace period (30 s) and some
# Without a preStop hook (the chart has none), a connection the front door opened just before
# a replica's SIGTERM closed its listening socket is reset unanswered: a 502 for a POST the
# front door may not resend. At most one per stop is that race (a hardening finding); more,
# or any other error, is a rollout that costs calls.
GATEWAY_ERRORS = frozenset({502, 503, 504})


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
    fault, recovered = run.fault_at or run.origin, run.recovered_at or time.monotonic()
    slow = [c for u in uploaders for c in u.calls if c.ended >= fault and c.started <= recovered]
    slow_failed = [call for call in slow if not call.ok]
    measure("rollout.slow_uploads_during", len(slow))
    measure("rollout.slow_upload_errors", len(slow_failed))
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
    stops = len(replicas)  # each replica is stopped once
    gateway = [call for call in during.errors if call.status in GATEWAY_ERRORS]
    assert len(gateway) == len(during.errors) <= stops, (
        f"{len(during.errors)} of {len(during.calls)} raw calls (no retries) failed during the "
        f"rolling restart (at most one front-door error per stop, {stops} stops): "
        f"{[call.outcome() for call in during.errors[:5]]}: {advice}"
    )
    if gateway:
        hardening(
            f"rollout: {len(gateway)} raw call(s) got {sorted({c.status for c in gateway})} "
            f"from the front door as a replica stopped ({stops} stops): connections it had "
            "queued when SIGTERM closed its socket",
            "add a preStop hook (sleep 5-10 s) so the endpoint leaves the load balancer "
            "before SIGTERM; the chart has no lifecycle setting, so it takes a patch or a "
            "post-renderer",
        )
    assert run.side_probers_stopped, "a slow upload was unanswered past its timeout"
    assert len(slow) >= SLOW_UPLOADERS, (
        f"only {len(slow)} slow uploads overlapped the rolling restart: nothing was in flight "
        "at the stops for this check to see"
    )
    assert not slow_failed, (
        f"{len(slow_failed)} of {len(slow)} slow uploads (no retries, each streamed over "
        f"{SLOW_UPLOAD_SECONDS:.0f} s) failed during the rolling restart: "
        f"{[call.outcome() for call in slow_failed[:5]]}: a replica told to stop must finish "
        f"what it serves (graceful shutdown; a grace period longer than its longest call)"
    )
    prober_held(run, during_errors=stops)
    failed = [f"{op.kind} {op.id}: {op.error}" for op in run.ops if not op.ok]
    assert not failed, (
        f"{len(failed)} writes failed after the client's retries during a rolling restart: "
        f"{failed[:5]}: {advice}"
    )

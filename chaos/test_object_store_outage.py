"""Object-store outage under load: the bucket's service is paused. Artifact writes must end
cleanly (success or an error, never a hang past a bound) while metadata writes go on; after
it is back, artifacts work again and nothing half-written is listed as present."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import requests
from mlflow_acceptance.chaos.experiment import Action, Experiment, Probe
from mlflow_acceptance.chaos.prober import Call, RawProber, Send
from mlflow_acceptance.chaos.probes import front_door_health, wait_seconds, write_and_read_back
from mlflow_acceptance.chaos.verdicts import (
    no_call_longer_than,
    prober_held,
    steady_state_came_back,
    writes_accounted_for,
)
from mlflow_acceptance.fixtures.core import mlflow_api
from mlflow_acceptance.fixtures.core.frontdoor import FrontDoorHttp
from mlflow_acceptance.fixtures.core.waiting import Observation, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive]

PAUSE_SECONDS = 15
HANG_BOUND_SECONDS = 90
PUT_TIMEOUT = (5, HANG_BOUND_SECONDS)  # connect, read
SIZE = 64 * 1024


def artifact_puts(prefix: str, sent: dict[str, bytes]) -> Send:
    """Raw artifact PUTs of fresh random bytes (kept in ``sent`` by path), no retries: each
    one's fate is visible."""

    def send(http: FrontDoorHttp, n: int, call: Call) -> requests.Response:
        call.name = f"{prefix}/probe-{n}.bin"
        sent[call.name] = data = os.urandom(SIZE)
        return http.request("PUT", mlflow_api.artifact(call.name), data=data, timeout=PUT_TIMEOUT)

    return send


def artifact_round_trip(deployment, prefix: str) -> Probe:
    http = deployment.http

    def check() -> Observation:
        data = os.urandom(1024)
        path = mlflow_api.artifact(f"{prefix}/steady-{time.monotonic_ns()}.bin")
        put = http.request("PUT", path, data=data, timeout=(5, 20))
        got = http.get(path, timeout=(5, 20))
        ok = put.status_code == 200 and got.status_code == 200 and got.content == data
        return Observation(ok, f"PUT {put.status_code}, GET {got.status_code}")

    return Probe("an artifact can be written and read back", check)


def test_object_store_pause(chaos_run, deployment, measure):
    faults = deployment.require("faults", "cannot pause the object store (managed or shared)")
    run = chaos_run("store_pause")
    prefix = f"{run.experiment_id}/store-pause/artifacts"
    sent: dict[str, bytes] = {}
    prober = RawProber(deployment, "artifact-prober", artifact_puts(prefix, sent), PUT_TIMEOUT)
    window: dict[str, float] = {}

    def outage() -> None:
        window["start"] = run.mark("fault: pause the object store")
        faults.pause("object_store")
        window["paused"] = time.monotonic()
        wait_seconds(PAUSE_SECONDS)
        faults.unpause("object_store")
        window["end"] = run.mark("unpaused")
        probe = artifact_round_trip(deployment, prefix)
        wait_until(probe.check, timeout=60, interval=1, what="artifacts to work again")
        run.mark("recovered")

    experiment = Experiment(
        "pause the object store under load",
        [
            front_door_health(deployment),
            write_and_read_back(deployment, run.experiment_id),
            artifact_round_trip(deployment, prefix),
        ],
        [Action("pause, wait, unpause", outage)],
        rollbacks=[Action("unpause the object store", lambda: faults.unpause("object_store"))],
        recovery_timeout=60,
    )
    run.start_workload()
    prober.start()
    try:
        journal = experiment.run()
        if run.recovered_at is not None:
            # Judge artifacts after recovery on writes that started after it.
            wait_until(
                lambda: Observation(
                    any(p.started > run.recovered_at for p in list(prober.calls)),
                    f"{len(prober.calls)} artifact writes so far",
                ),
                timeout=HANG_BOUND_SECONDS,
                interval=0.5,
                what="an artifact write after recovery",
            )
    finally:
        prober.stop()
    result = run.finish(journal)

    steady_state_came_back(journal, result)
    writes_accounted_for(run, result, faults=1)
    prober_held(run, during_errors=0)  # metadata does not need the store
    start, end = window["start"], window["end"]
    metadata_failures = [
        f"{op.kind} {op.id}: {op.error}"
        for op in run.ops
        if not op.ok and op.kind != "log_artifact" and start <= op.started <= end
    ]
    assert not metadata_failures, (
        f"metadata writes failed while only the store was down: {metadata_failures[:5]}"
    )
    served = [
        op
        for op in run.ops
        if op.ok and op.kind != "log_artifact" and window["paused"] <= op.started <= op.ended <= end
    ]
    assert served, (
        "no metadata write both started and was acknowledged while the store was paused: "
        "the server stalled metadata writes too, while only its object store was down"
    )
    no_call_longer_than(run, HANG_BOUND_SECONDS)
    during = [p for p in prober.calls if p.started <= end and p.ended >= start]
    measure("store_pause.artifact_puts_during", len(during))
    measure("store_pause.artifact_puts_failed", sum(p.status != 200 for p in prober.calls))
    hung = [p.name for p in prober.calls if p.ended - p.started > HANG_BOUND_SECONDS]
    assert not hung, f"artifact writes hung past {HANG_BOUND_SECONDS}s: {hung}"
    unclean = [
        f"{p.name}: {p.status or p.error}"
        for p in prober.calls
        if p.status != 200 and not (p.status and p.status >= 500) and not p.error
    ]
    assert not unclean, f"artifact writes failed without a clean 5xx or timeout: {unclean}"
    after = [p for p in prober.calls if p.started > run.recovered_at]
    assert after, "no artifact write after recovery to judge"
    assert all(p.status == 200 for p in after), [p.status or p.error for p in after]
    assert_nothing_half_written(deployment, prober.calls, sent, prefix)


def assert_nothing_half_written(
    deployment, puts: list[Call], sent: dict[str, bytes], prefix: str
) -> None:
    """Every listed artifact is whole; every acknowledged one is listed."""
    listing = deployment.http.get(mlflow_api.ARTIFACTS, params={"path": f"{prefix}"})
    assert listing.status_code == 200, listing.text[:200]
    sizes = {f["path"]: int(f.get("file_size", -1)) for f in listing.json().get("files", [])}
    by_name = {p.name.rsplit("/", 1)[1]: p for p in puts}
    partial = [
        f"{name}: {size} of {SIZE} bytes"
        for name, size in sizes.items()
        if name in by_name and size != SIZE
    ]
    assert not partial, f"half-written artifacts are listed as present: {partial}"
    missing = [p.name for p in puts if p.status == 200 and p.name.rsplit("/", 1)[1] not in sizes]
    assert not missing, f"acknowledged artifact writes are not listed: {missing[:5]}"
    store = deployment.object_store
    if store is not None:
        for put in puts:
            name = put.name.rsplit("/", 1)[1]
            if name in sizes:
                assert store.sha256(put.name) == hashlib.sha256(sent[put.name]).hexdigest(), (
                    f"{put.name} in the bucket has other bytes than were sent"
                )

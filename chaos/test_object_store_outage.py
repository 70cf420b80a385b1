"""Object-store outage under load: the bucket's service is paused. Artifact writes must end
cleanly (success or an error, never a hang past a bound) while metadata writes go on; after
it is back, artifacts work again and nothing half-written is listed as present."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass

import pytest

from chaos.experiment import Action, Experiment, Probe
from chaos.probes import front_door_health, wait_seconds, write_and_read_back
from chaos.verdicts import no_call_longer_than, nothing_lost, steady_state_came_back
from fixtures.core import mlflow_api
from fixtures.core.frontdoor import FrontDoorHttp
from fixtures.core.waiting import Observation, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive]

PAUSE_SECONDS = 15
HANG_BOUND_SECONDS = 90
SIZE = 64 * 1024


@dataclass
class Put:
    path: str
    data: bytes
    started: float
    ended: float = 0.0
    status: int | None = None
    error: str | None = None


class ArtifactProber:
    """Raw artifact PUTs in a loop, no client retries: each one's fate is visible."""

    def __init__(self, deployment, prefix: str) -> None:
        self.http = FrontDoorHttp(deployment.tracking_uri, deployment.ca_bundle)
        self.prefix = prefix
        self.puts: list[Put] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="artifact-prober")

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            put = Put(f"{self.prefix}/probe-{n}.bin", os.urandom(SIZE), time.monotonic())
            try:
                response = self.http.request(
                    "PUT",
                    mlflow_api.artifact(put.path),
                    data=put.data,
                    timeout=(5, HANG_BOUND_SECONDS),
                )
                put.status = response.status_code
            except Exception as exc:
                put.error = type(exc).__name__
            put.ended = time.monotonic()
            self.puts.append(put)
            self._stop.wait(0.5)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HANG_BOUND_SECONDS + 10)
        self.http.close()


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
    prober = ArtifactProber(deployment, prefix)
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
                    any(p.started > run.recovered_at for p in list(prober.puts)),
                    f"{len(prober.puts)} artifact writes so far",
                ),
                timeout=HANG_BOUND_SECONDS,
                interval=0.5,
                what="an artifact write after recovery",
            )
    finally:
        prober.stop()
    result = run.finish(journal)

    steady_state_came_back(journal, result)
    nothing_lost(result)
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
    during = [p for p in prober.puts if p.started <= end and p.ended >= start]
    measure("store_pause.artifact_puts_during", len(during))
    measure("store_pause.artifact_puts_failed", sum(p.status != 200 for p in prober.puts))
    hung = [p.path for p in prober.puts if p.ended - p.started > HANG_BOUND_SECONDS]
    assert not hung, f"artifact writes hung past {HANG_BOUND_SECONDS}s: {hung}"
    unclean = [
        f"{p.path}: {p.status or p.error}"
        for p in prober.puts
        if p.status != 200 and not (p.status and p.status >= 500) and not p.error
    ]
    assert not unclean, f"artifact writes failed without a clean 5xx or timeout: {unclean}"
    after = [p for p in prober.puts if p.started > run.recovered_at]
    assert after, "no artifact write after recovery to judge"
    assert all(p.status == 200 for p in after), [p.status or p.error for p in after]
    assert_nothing_half_written(deployment, prober.puts, prefix)


def assert_nothing_half_written(deployment, puts: list[Put], prefix: str) -> None:
    """Every listed artifact is whole; every acknowledged one is listed."""
    listing = deployment.http.get(mlflow_api.ARTIFACTS, params={"path": f"{prefix}"})
    assert listing.status_code == 200, listing.text[:200]
    sizes = {f["path"]: int(f.get("file_size", -1)) for f in listing.json().get("files", [])}
    by_name = {p.path.rsplit("/", 1)[1]: p for p in puts}
    partial = [
        f"{name}: {size} of {SIZE} bytes"
        for name, size in sizes.items()
        if name in by_name and size != SIZE
    ]
    assert not partial, f"half-written artifacts are listed as present: {partial}"
    missing = [p.path for p in puts if p.status == 200 and p.path.rsplit("/", 1)[1] not in sizes]
    assert not missing, f"acknowledged artifact writes are not listed: {missing[:5]}"
    store = deployment.object_store
    if store is not None:
        for put in puts:
            name = put.path.rsplit("/", 1)[1]
            if name in sizes:
                assert store.sha256(put.path) == hashlib.sha256(put.data).hexdigest(), (
                    f"{put.path} in the bucket has other bytes than were sent"
                )

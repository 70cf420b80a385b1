"""Warm a freshly started server before load is measured against it.

A deployment that has served traffic for hours has its workers' imports, database
connection pools and lazily built handlers ready; a local stack that has just passed its
health check does not, and its first requests take seconds at 0.5 CPU. Gating on that
would judge start-up, not service. The warm-up makes each kind of request the workload
makes, a few rounds so every replica and worker sees them, inside an experiment with the
run's prefix (deleted with the rest).
"""

from __future__ import annotations

import os
import time

from fixtures.http import FrontDoorHttp

API = "api/2.0/mlflow"
ARTIFACTS = "api/2.0/mlflow-artifacts/artifacts"


def warm_up(http: FrontDoorHttp, experiment_name: str, rounds: int = 12) -> tuple[float, int]:
    """Run ``rounds`` of the workload's requests one by one; return (seconds, failed requests)."""
    started = time.monotonic()
    failed = 0

    def call(method: str, path: str, **kwargs):
        nonlocal failed
        try:
            response = http.request(method, path, **kwargs)
        except Exception:
            failed += 1
            return None
        if response.status_code != 200:
            failed += 1
            return None
        return response

    created = call("POST", f"{API}/experiments/create", json={"name": experiment_name})
    if created is None:
        return time.monotonic() - started, failed
    experiment_id = created.json()["experiment_id"]
    for index in range(rounds):
        stamp = int(time.time() * 1000)
        run = call(
            "POST",
            f"{API}/runs/create",
            json={"experiment_id": experiment_id, "start_time": stamp, "run_name": "warm-up"},
        )
        if run is None:
            continue
        run_id = run.json()["run"]["info"]["run_id"]
        metric = {"key": "loss", "value": 1.0, "timestamp": stamp, "step": index}
        call("POST", f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [metric]})
        call("POST", f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED"})
        call("POST", f"{API}/runs/search", json={"experiment_ids": [experiment_id]})
        call("GET", f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
        path = f"{ARTIFACTS}/{experiment_id}/{run_id}/artifacts/warm-up.bin"
        call("PUT", path, data=os.urandom(1024))
        call("GET", path)
        call("GET", "/")
    return time.monotonic() - started, failed

"""Bring a freshly started server to steady state before load is measured against it.

A deployment that has served traffic for hours has its workers' imports, database
connection pools and lazily built handlers ready; a local stack that has just passed its
health check does not: its first requests take seconds, and each replica burns its whole
CPU limit for tens of seconds (MLflow's job runner starting). Gating on that would judge
start-up, not service, and the start-up CPU would pass for the load's effect.

So: a warm-up that makes each kind of request the workload makes, a few rounds so every
replica and worker sees them (inside an experiment with the run's prefix, deleted with the
rest), then, where replica CPU can be read, a wait until the replicas idle.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from mlflow_acceptance.fixtures.core import mlflow_api as api
from mlflow_acceptance.fixtures.core.frontdoor import FrontDoorHttp
from mlflow_acceptance.fixtures.core.waiting import Observation, wait_until
from mlflow_acceptance.load import calibration as calc


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

    created = call("POST", api.CREATE_EXPERIMENT, json={"name": experiment_name})
    if created is None:
        return time.monotonic() - started, failed
    experiment_id = created.json()["experiment_id"]
    for index in range(rounds):
        stamp = int(time.time() * 1000)
        run = call(
            "POST",
            api.CREATE_RUN,
            json={"experiment_id": experiment_id, "start_time": stamp, "run_name": "warm-up"},
        )
        if run is None:
            continue
        run_id = run.json()["run"]["info"]["run_id"]
        metric = {"key": "loss", "value": 1.0, "timestamp": stamp, "step": index}
        call("POST", api.LOG_BATCH, json={"run_id": run_id, "metrics": [metric]})
        call("POST", api.UPDATE_RUN, json={"run_id": run_id, "status": "FINISHED"})
        call("POST", api.SEARCH_RUNS, json={"experiment_ids": [experiment_id]})
        call("GET", api.METRIC_HISTORY, params={"run_id": run_id, "metric_key": "loss"})
        path = api.artifact(f"{experiment_id}/{run_id}/artifacts/warm-up.bin")
        call("PUT", path, data=os.urandom(1024))
        call("GET", path)
        call("GET", "/")
    return time.monotonic() - started, failed


def wait_for_idle(
    resources,
    say: Callable[[str], None],
    *,
    below: float = 25.0,
    polls: int = 3,
    timeout: float = 150.0,
    interval: float = 2.0,
) -> tuple[float, float]:
    """Wait until the replicas' average CPU stays under ``below`` % of their limit for
    ``polls`` consecutive fresh readings (a poll that finds no new reading, as between the
    metrics API's 15 s samples, neither counts nor resets); return (seconds waited, last
    idle %)."""
    previous = [calc.Reading(time.monotonic(), time.time(), resources.sample())]
    quiet = [0]

    def probe() -> Observation:
        now = calc.Reading(time.monotonic(), time.time(), resources.sample())
        average = calc.average_across(calc.replica_cpu_percent([previous[0], now]))
        if not average:  # no new usage since the last poll (the metrics API's resolution)
            return Observation(False, "no new CPU reading yet", None)
        previous[0] = now
        percent = average[-1].value
        quiet[0] = quiet[0] + 1 if percent < below else 0
        seen = f"replicas at {percent:.0f}% of their CPU limit"
        return Observation(quiet[0] >= polls, seen, percent)

    started = time.monotonic()
    seen = wait_until(
        probe,
        timeout=timeout,
        interval=interval,
        what=f"the replicas to idle below {below:g}% CPU before the load",
        on_poll=lambda obs, _elapsed: (
            None if obs.ok or obs.value is None else say(f"settling: {obs.seen}")
        ),
    )
    return time.monotonic() - started, float(seen.value)

"""A prober with no retries at all beside the writers: each call's fate is visible.

The writers use MLflow's client as users run it, whose retries (7, with minutes of backoff,
on 500/502/503/504) make "no client failures" mean only that it got through in the end.
The prober sends raw requests through the front door in a loop and keeps every outcome,
so what a fault did to the service is judged per phase (before, during, after the fault),
by its errors and its p95.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from mlflow_acceptance.chaos.timeline import percentile
from mlflow_acceptance.fixtures.core import mlflow_api
from mlflow_acceptance.fixtures.core.frontdoor import FrontDoorHttp

PROBE_TAG = "acc.probe.seq"
PAUSE_SECONDS = 0.25  # between two calls of the loop
CALL_TIMEOUT = (5.0, 30.0)  # connect, read: a call past this is an error, not a hang


@dataclass
class Call:
    name: str  # what was sent, e.g. "POST runs/set-tag"
    started: float  # time.monotonic()
    ended: float = 0.0
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000

    def outcome(self) -> str:
        return f"{self.name}: {self.error or f'HTTP {self.status}'} after {self.ms:.0f} ms"


# One call of the loop: given the loop's counter, send a request and say what it was. It
# may set ``error`` on a 200 whose body is wrong (the loop passes the Call to fill in).
Send = Callable[[FrontDoorHttp, int, Call], requests.Response]


class RawProber:
    """``send`` in a loop on its own thread and connection, until stopped."""

    def __init__(self, deployment, name: str, send: Send, timeout=CALL_TIMEOUT) -> None:
        self.http = deployment.new_http()
        self.send, self.timeout = send, timeout
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            call = Call("", time.monotonic())
            try:
                call.status = self.send(self.http, n, call).status_code
            except Exception as exc:  # a cut, a refused connection, a timeout: an error
                call.error = f"{type(exc).__name__}: {str(exc)[:160]}"
            call.ended = time.monotonic()
            self.calls.append(call)
            self._stop.wait(PAUSE_SECONDS)

    def start(self) -> RawProber:
        self._thread.start()
        return self

    def stop(self) -> bool:
        """Stop the loop; False if a call was still unanswered past its read timeout."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=self.timeout[0] + self.timeout[1] + 10)
        self.http.close()
        return not self._thread.is_alive()


def tag_round_trip(run_id: str) -> Send:
    """Odd calls set a tag on the probe run, even ones read it back: a write and a read
    that touch the database but not the object store. The value read must be the last
    acknowledged write or a later attempt (a write cut after its commit did land)."""
    written = {"acked": 0, "attempted": 0}

    def send(http: FrontDoorHttp, n: int, call: Call) -> requests.Response:
        if n % 2:
            call.name = "POST runs/set-tag"
            written["attempted"] = n
            body = {"run_id": run_id, "key": PROBE_TAG, "value": str(n)}
            response = http.post(f"{mlflow_api.API}/runs/set-tag", json=body, timeout=CALL_TIMEOUT)
            if response.status_code == 200:
                written["acked"] = n
            return response
        call.name = "GET runs/get"
        response = http.get(
            f"{mlflow_api.API}/runs/get", params={"run_id": run_id}, timeout=CALL_TIMEOUT
        )
        if response.status_code == 200 and written["acked"]:
            tags = {t["key"]: t["value"] for t in response.json()["run"]["data"].get("tags", [])}
            seen = tags.get(PROBE_TAG)
            if not (seen or "").isdigit() or not (
                written["acked"] <= int(seen) <= written["attempted"]
            ):
                call.error = f"read {PROBE_TAG}={seen!r} after write {written['acked']} was acked"
        return response

    return send


@dataclass(frozen=True)
class Phase:
    name: str  # before | during | after
    calls: list[Call]

    @property
    def errors(self) -> list[Call]:
        return [call for call in self.calls if not call.ok]

    @property
    def p95_ms(self) -> float | None:
        value = percentile([call.ms for call in self.calls], 0.95)
        return None if value is None else round(value, 1)

    @property
    def max_ms(self) -> float | None:
        return round(max(call.ms for call in self.calls), 1) if self.calls else None


def phases(calls: list[Call], fault: float, recovered: float, settled: float) -> list[Phase]:
    """Calls ended before the fault, overlapping [fault, recovered], started after it, and
    started once the service had ``settled`` (a while after recovery: a replacement's first
    calls are slow while its workers load the store, which "after" includes)."""
    return [
        Phase("before", [c for c in calls if c.ended < fault]),
        Phase("during", [c for c in calls if c.ended >= fault and c.started <= recovered]),
        Phase("after", [c for c in calls if c.started > recovered]),
        Phase("settled", [c for c in calls if c.started >= settled]),
    ]

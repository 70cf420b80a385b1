"""Front-door checks on synthetic replicas and answers: traffic must reach every Ready
replica, and a failure that met 502/503/504 is headed as the front door's, not the check's."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from mlflow_acceptance.fixtures.core.attribution import gateway_headline
from mlflow_acceptance.fixtures.core.capabilities import Replica
from mlflow_acceptance.fixtures.core.deployment import Deployment
from mlflow_acceptance.fixtures.plugin import _head_with_the_front_doors_failure
from mlflow_acceptance.suites import test_health


class Answer:
    status_code, text, headers = 200, "{}", {}


class Balanced:
    """Replicas behind a front door that sends call i to ``route(i)``; each counts what it
    served in its own access log."""

    def __init__(self, names, route) -> None:
        self.names, self.route = names, route
        self.served_so_far = dict.fromkeys(names, 0)
        self.calls = 0

    def list(self):
        return [Replica(name, True) for name in self.names]

    def wait_ready(self, timeout, expected=None):
        return 0.0

    def served(self, replica, since):
        return self.served_so_far[replica]

    def post(self, path, **kwargs):
        self.served_so_far[self.route(self.calls)] += 1
        self.calls += 1
        return Answer()


def balanced(route, names=("mlflow-1", "mlflow-2")):
    controller = Balanced(names, route)
    target = Deployment(
        "fake", "https://127.0.0.1:8443", None, "3.17.2", "r1", replica_controller=controller
    )
    target.http = controller
    return target


def test_round_robin_over_every_replica_passes():
    test_health.test_front_door_reaches_every_replica(balanced(lambda i: f"mlflow-{i % 2 + 1}"))


def test_a_ready_replica_left_out_of_rotation_fails():
    with pytest.raises(AssertionError, match=r"mlflow-2 served none of 40 .*out of rotation"):
        test_health.test_front_door_reaches_every_replica(balanced(lambda i: "mlflow-1"))


def test_replicas_whose_logs_miss_calls_fail_rather_than_pass():
    target = balanced(lambda i: f"mlflow-{i % 2 + 1}")
    target.replica_controller.served = lambda replica, since: 1 if target.http.calls else 0
    with pytest.raises(AssertionError, match="do not show what they serve"):
        test_health.test_front_door_reaches_every_replica(target)


def test_a_single_replica_skips_with_the_reason():
    with pytest.raises(pytest.skip.Exception, match="nothing to balance over"):
        test_health.test_front_door_reaches_every_replica(
            balanced(lambda i: "mlflow-1", names=("mlflow-1",))
        )


CRASHING = Replica("mlflow-2", False, 4, "running, /health unreachable, last exit: OOMKilled")


def test_the_headline_names_the_front_door_the_count_and_the_restarts():
    line = gateway_headline(3, 7, "path traversal was not refused", [Replica("a", True), CRASHING])
    assert line.startswith("the front door could not reach a replica (HTTP 502/503/504: 3 ")
    assert "7 in the run" in line
    assert "mlflow-2 restarted 4x (running, /health unreachable, last exit: OOMKilled)" in line
    assert "mlflow-2 not Ready" in line


def test_a_gateway_status_quoted_by_the_client_also_heads_the_failure():
    message = "API request failed (Caused by ResponseError('too many 502 error responses'))"
    assert gateway_headline(0, 0, message, None).startswith("the front door could not reach")
    assert gateway_headline(0, 5, "HTTP 404 where 200 was expected", None) is None


def test_a_failed_report_is_headed_only_when_the_front_door_failed_during_it():
    crash = SimpleNamespace(message="path traversal was not refused")
    report = SimpleNamespace(longrepr=SimpleNamespace(reprcrash=crash), sections=[])
    now = time.time()
    http = SimpleNamespace(gateway_errors=[now - 100, now], gateway_errors_between=None)
    http.gateway_errors_between = lambda start, stop: sum(
        start <= t <= stop for t in http.gateway_errors
    )
    controller = SimpleNamespace(list=lambda: [CRASHING])
    deployment = SimpleNamespace(http=http, replica_controller=controller)
    _head_with_the_front_doors_failure(
        report, SimpleNamespace(start=now - 1, stop=now + 1), deployment
    )
    assert crash.message.startswith(
        "the front door could not reach a replica (HTTP 502/503/504: 1 "
    )
    assert crash.message.endswith("path traversal was not refused")
    assert report.sections[0][0] == "front door"

    quiet = SimpleNamespace(message="path traversal was not refused")
    report = SimpleNamespace(longrepr=SimpleNamespace(reprcrash=quiet), sections=[])
    _head_with_the_front_doors_failure(
        report, SimpleNamespace(start=now - 50, stop=now - 40), deployment
    )
    assert quiet.message == "path traversal was not refused"
    assert not report.sections


def test_mlflows_own_503_is_not_counted_as_the_front_doors():
    """no-pre-ping's failure was headed as the front door's although every 503 was MLflow's
    TEMPORARILY_UNAVAILABLE ("MySQL server has gone away"): the server spoke, not nginx."""
    from mlflow_acceptance.fixtures.core.attribution import from_the_front_door

    mlflows = '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "MySQL server has gone away"}'
    assert not from_the_front_door(503, mlflows)
    assert from_the_front_door(503, "<html><center><h1>503 Service Temporarily Unavailable")
    assert from_the_front_door(502, "")  # a streamed answer's body is not read: it counts
    assert not from_the_front_door(500, "<html>")

"""The forged-Host check on synthetic replicas: MLflow's own refusal passes; a served API
fails; anything else fails where the path to the replica keeps the Host, and is
inconclusive (a skip, said) behind a managed control plane's front end (D10)."""

from __future__ import annotations

import pytest

from fixtures.core.capabilities import HttpAnswer, Replica
from fixtures.core.deployment import Deployment
from fixtures.core.mlflow_api import HOST_REFUSAL
from suites import test_security as checks


class Replicas:
    def __init__(self, api: HttpAnswer, host_header_preserved: bool) -> None:
        self.api = api
        self.host_header_preserved = host_header_preserved
        self.asked: list[str] = []
        self.waited = False

    def list(self):
        # A replica added after the wait for Ready: it is not asked (not serving yet).
        return [Replica("mlflow-abc", True), Replica("mlflow-new", False)]

    def wait_ready(self, timeout, expected=None):
        self.waited = True
        return 0.0

    def request(self, replica, path, timeout=10.0, headers=None):
        assert self.waited, "a replica was asked before every replica was Ready"
        self.asked.append(replica)
        return HttpAnswer(200, "OK") if path == "/health" else self.api


def deployment(api: HttpAnswer, preserved: bool = True, version: str = "3.17.2"):
    controller = Replicas(api, preserved)
    return Deployment(
        "fake", "https://m.example.com", None, version, "r1", replica_controller=controller
    )


def no_hardening(finding, advice):
    raise AssertionError(f"unexpected hardening finding: {finding}")


MLFLOW_403 = HttpAnswer(403, f"{HOST_REFUSAL} - possible DNS rebinding attack detected")
FRONT_END_404 = HttpAnswer(404, "<html>404 page not found</html>")


def test_mlflows_refusal_passes_on_any_path():
    checks.test_each_replica_refuses_a_forged_host(
        deployment(MLFLOW_403, preserved=False), no_hardening
    )
    checks.test_each_replica_refuses_a_forged_host(
        deployment(MLFLOW_403, preserved=True), no_hardening
    )


def test_only_replicas_ready_after_the_wait_are_asked():
    """Seen on kind: a pod the autoscaler had just added answered /health 503."""
    target = deployment(MLFLOW_403)
    checks.test_each_replica_refuses_a_forged_host(target, no_hardening)
    assert set(target.replica_controller.asked) == {"mlflow-abc"}


def test_a_served_api_fails():
    with pytest.raises(AssertionError, match="served the API"):
        checks.test_each_replica_refuses_a_forged_host(
            deployment(HttpAnswer(200, "{}"), False), no_hardening
        )


def test_another_answer_fails_where_the_host_reaches_the_pod():
    with pytest.raises(pytest.fail.Exception, match="not MLflow's 403 refusal"):
        checks.test_each_replica_refuses_a_forged_host(
            deployment(FRONT_END_404, True), no_hardening
        )


def test_another_answer_is_inconclusive_behind_a_front_end():
    with pytest.raises(pytest.skip.Exception, match="inconclusive"):
        checks.test_each_replica_refuses_a_forged_host(
            deployment(FRONT_END_404, False), no_hardening
        )


def test_an_mlflow_2_server_skips_the_guard_checks_and_reports_the_missing_guard():
    found = []
    with pytest.raises(pytest.skip.Exception, match=r"MLflow 2\.22\.2: the Host and CORS guards"):
        checks.test_each_replica_refuses_a_forged_host(
            deployment(HttpAnswer(200, "{}"), True, version="2.22.2"),
            lambda finding, advice: found.append(finding),
        )
    assert found == ["MLflow 2.22.2 has no Host or CORS guard"]


def test_each_replica_answers_asks_only_once_every_replica_is_ready():
    """Seen on the gke path against kind: a pod the autoscaler had just added was Running,
    not Ready, and the smoke check failed on it."""
    from suites import test_health

    target = deployment(HttpAnswer(200, "3.17.2"))
    test_health.test_each_replica_answers(target)
    assert set(target.replica_controller.asked) == {"mlflow-abc"}

"""The forged-Host check on synthetic replicas: MLflow's own refusal passes; a served API
fails; anything else fails where the path to the replica keeps the Host, and is
inconclusive (a skip, said) behind a managed control plane's front end (D10)."""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core.capabilities import HttpAnswer, Replica
from mlflow_acceptance.fixtures.core.deployment import Deployment
from mlflow_acceptance.fixtures.core.mlflow_api import HOST_REFUSAL
from mlflow_acceptance.suites import test_security as checks


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
    from mlflow_acceptance.suites import test_health

    target = deployment(HttpAnswer(200, "3.17.2"))
    test_health.test_each_replica_answers(target)
    assert set(target.replica_controller.asked) == {"mlflow-abc"}


class Answer:
    def __init__(self, status: int, text: str = "", headers: dict[str, str] | None = None):
        self.status_code, self.text, self.headers = status, text, headers or {}


class FrontDoor:
    """A front door answering by the request's Host and Origin, as ``route`` says."""

    def __init__(self, route) -> None:
        self.route = route
        self.sent: list[dict[str, str]] = []

    def request(self, method, path, **kwargs):
        headers = kwargs.get("headers") or {}
        self.sent.append(headers)
        return self.route(method, path, headers)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)


def behind(route, ui_origin: str = "https://mlflow.example.com"):
    target = Deployment("fake", "https://127.0.0.1:8443", None, "3.17.2", "r1", ui_origin=ui_origin)
    target.http = FrontDoor(route)
    return target


def host_routing_ingress(method, path, headers):
    """An ingress routing by host: a foreign Host never reaches MLflow, whose allowed hosts
    are "*" here (nothing would refuse it)."""
    if headers.get("Host") == "evil.example.com":
        return Answer(404, "<html>404 Not Found</html>")
    return Answer(200, "{}")


def test_a_front_door_404_for_a_foreign_host_is_not_taken_for_mlflows_refusal():
    """The old check accepted any 4xx here, and so passed with MLFLOW_SERVER_ALLOWED_HOSTS=*."""
    with pytest.raises(pytest.skip.Exception, match="MLflow's own guard cannot be seen"):
        checks.test_forged_host_gets_403_on_the_api_while_health_answers(
            behind(host_routing_ingress), no_hardening
        )


def test_mlflows_refusal_through_a_host_routing_front_door_passes():
    def route(method, path, headers):
        if headers.get("Host") == "evil.example.com":
            return Answer(403, MLFLOW_403.text) if "/api/" in path else Answer(404, "")
        return Answer(200, "{}")

    checks.test_forged_host_gets_403_on_the_api_while_health_answers(behind(route), no_hardening)


def cors_guard(allowed: set[str]):
    """MLflow's cross-origin guard: a state-changing call from an origin not allowed (and
    not a localhost one) gets 403; a preflight never allows it."""

    def route(method, path, headers):
        origin = headers.get("Origin")
        if method == "OPTIONS":
            return Answer(
                204, "", {"Access-Control-Allow-Origin": origin} if origin in allowed else {}
            )
        if origin and origin not in allowed:
            return Answer(403, "Cross-origin request blocked")
        return Answer(200, "{}")

    return route


def test_the_uis_own_origin_blocked_fails_naming_the_setting():
    with pytest.raises(AssertionError, match="blocks the browser UI's writes"):
        checks.test_the_uis_own_origin_may_write(behind(cors_guard(set())), no_hardening)


def test_the_uis_own_origin_is_sent_with_its_own_host():
    """As the page's browser sends it: Origin and Host of the name the UI was loaded from."""
    target = behind(
        cors_guard({"https://mlflow.example.com:8443"}), "https://mlflow.example.com:8443"
    )
    checks.test_the_uis_own_origin_may_write(target, no_hardening)
    assert target.http.sent[-1] == {
        "Origin": "https://mlflow.example.com:8443",
        "Host": "mlflow.example.com:8443",
    }


def test_a_localhost_ui_origin_skips_since_mlflow_never_blocks_it():
    with pytest.raises(pytest.skip.Exception, match="could not fail here"):
        checks.test_the_uis_own_origin_may_write(
            behind(cors_guard(set()), "https://127.0.0.1:8443"), no_hardening
        )


def test_a_foreign_origin_allowed_fails():
    with pytest.raises(AssertionError, match=r"from https://evil\.example\.com"):
        checks.test_a_foreign_origin_is_refused(
            behind(cors_guard({"https://evil.example.com"})), no_hardening
        )
    checks.test_a_foreign_origin_is_refused(behind(cors_guard(set())), no_hardening)


class Request:
    """pytest's ``request``, handing out the one fixture the header check asks for."""

    def __init__(self, responses) -> None:
        self.responses = responses

    def getfixturevalue(self, name):
        assert name == "responses_of_each_kind"
        return self.responses


SOUND = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN"}


def test_security_headers_missing_on_an_error_response_fail():
    responses = [("GET /health", Answer(200, "OK", SOUND)), ("GET missing", Answer(404, "", {}))]
    with pytest.raises(AssertionError, match="no X-Content-Type-Options: nosniff on GET missing"):
        checks.test_security_headers_on_every_kind_of_response(
            behind(None), no_hardening, Request(responses)
        )


def test_x_frame_options_turned_off_fails():
    responses = [("GET /health", Answer(200, "OK", {"X-Content-Type-Options": "nosniff"}))]
    with pytest.raises(AssertionError, match="no X-Frame-Options"):
        checks.test_security_headers_on_every_kind_of_response(
            behind(None), no_hardening, Request(responses)
        )
    checks.test_security_headers_on_every_kind_of_response(
        behind(None), no_hardening, Request([("GET /health", Answer(200, "OK", SOUND))])
    )

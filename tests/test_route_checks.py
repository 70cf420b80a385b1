"""The route-family check passes on MLflow's own answers and names a front door's 404."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow_acceptance.suites import test_routes as checks
from packaging.version import Version

UI_PAGE = '<html><script defer="defer" src="static-files/static/js/main.1.js"></script></html>'


class Http:
    def __init__(self, answers):
        self.answers, self.sent = answers, []

    def request(self, method, path, **kwargs):
        self.sent.append((method, path, kwargs))
        status, text = self.answers(method, path)
        return SimpleNamespace(status_code=status, text=text, headers={"Server": "nginx"})

    def get(self, path):
        return self.request("GET", path)


def deployment(answers, version="3.17.2"):
    """A deployment whose front door answers with ``answers``, running MLflow ``version``."""

    def require_server(minimum, feature):
        if Version(version) < Version(minimum):
            pytest.skip(f"the server runs MLflow {version}: {feature} came in {minimum}")

    return SimpleNamespace(http=Http(answers), require_server=require_server)


def mlflow(method, path):
    """What MLflow answers each family's request with."""
    if path == "/":
        return 200, UI_PAGE
    if path.startswith("/static-files/"):
        return 200, "(()=>{})()"
    if path == "/v1/traces":
        return 400, '{"detail": "Invalid OpenTelemetry format - no spans found"}'
    if path == "/graphql":
        return 200, '{"data": {"mlflowSearchRuns": {"runs": []}}}'
    if "traces/search" in path:
        return 400, """{"error_code": "INVALID_PARAMETER_VALUE", "message": "'locations'"}"""
    if "get-history-bulk-interval" in path:
        return 200, '{"metrics": []}'
    return 200, '{"experiments": []}'


def api_2_only(method, path):
    if path == "/" or path.startswith("/api/2.0/"):
        return mlflow(method, path)
    return 404, "<html><center><h1>404 Not Found</h1></center><hr><center>nginx</center>"


@pytest.mark.parametrize("family", checks.FAMILIES)
def test_each_family_passes_on_mlflows_answer(family):
    checks.test_route_family_reaches_mlflow(family, deployment(mlflow), ("7", "r1"))


@pytest.mark.parametrize("family", [f for f in checks.FAMILIES if f not in ("api 2.0", "ui")])
def test_an_ingress_for_mlflow_2_fails_every_other_family_naming_it(family):
    with pytest.raises(AssertionError, match=f"does not route {family} to the server"):
        checks.test_route_family_reaches_mlflow(family, deployment(api_2_only), ("7", "r1"))


def test_static_files_follow_the_ui_pages_own_script():
    answering = deployment(mlflow)
    checks.test_route_family_reaches_mlflow("static-files", answering, ("7", "r1"))
    assert answering.http.sent[-1][:2] == ("GET", "/static-files/static/js/main.1.js")


def test_mlflow_3_families_skip_on_an_mlflow_2_server():
    with pytest.raises(pytest.skip.Exception, match=r"otlp routes came in 3\.0\.0"):
        checks.test_route_family_reaches_mlflow("otlp", deployment(mlflow, "2.22.0"), ("7", "r1"))

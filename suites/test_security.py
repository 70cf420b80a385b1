"""Security negatives: DNS-rebinding (Host) guard, CORS as a browser meets it, security
headers, no stack traces in error pages, and a metrics endpoint without secrets. MLflow >= 3.5
ships the Host and CORS guards and the headers; the chart configures the guards from the
ingress hosts. On an older server those checks skip, and the missing guard is reported as a
hardening finding."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from mlflow_acceptance.fixtures.core import mlflow_api, redaction
from mlflow_acceptance.fixtures.core.capabilities import settled_replicas

pytestmark = pytest.mark.acceptance

FORGED_HOST = "evil.example.com"
FOREIGN_ORIGIN = "https://evil.example.com"
SEARCH = mlflow_api.SEARCH_EXPERIMENTS
GUARDS = "3.5.0"  # MLflow's Host (DNS rebinding) and CORS guards
SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options")


def require_guards(deployment, hardening) -> None:
    if not deployment.server_at_least(GUARDS):
        hardening(
            f"MLflow {deployment.expected_version} has no Host or CORS guard",
            f"upgrade the server to MLflow >= {GUARDS} and set MLFLOW_SERVER_ALLOWED_HOSTS "
            "and MLFLOW_SERVER_CORS_ALLOWED_ORIGINS (the chart derives them from the ingress)",
        )
    deployment.require_server(GUARDS, "the Host and CORS guards")


STACK_TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/')
DRIVER_MARKERS = ("pymysql.err", "sqlalchemy.exc", "[SQL: ", "psycopg2.")


def mlflow_refused(status: int, text: str) -> bool:
    """MLflow's own refusal of a foreign Host, not some front end's error page."""
    return status == 403 and mlflow_api.HOST_REFUSAL in text


def test_forged_host_gets_403_on_the_api_while_health_answers(deployment, hardening):
    """MLflow's own refusal, seen through the front door. A front door that answers a
    foreign Host itself (an ingress routing by host: 404 on /health too) hides the server's
    guard; that is a skip naming the per-replica check, never a pass."""
    require_guards(deployment, hardening)
    forged = {"Host": FORGED_HOST}
    api = deployment.http.post(SEARCH, json={"max_results": 1}, headers=forged)
    health = deployment.http.get("/health", headers=forged)
    if health.status_code != 200 and not mlflow_refused(api.status_code, api.text):
        assert api.status_code != 200, f"Host: {FORGED_HOST} was served the API"
        pytest.skip(
            f"the front door answers Host: {FORGED_HOST} itself (HTTP {health.status_code} on "
            f"/health, {api.status_code} on the API), so MLflow's own guard cannot be seen "
            "through it: test_each_replica_refuses_a_forged_host judges it where replicas "
            "are reachable"
        )
    assert mlflow_refused(api.status_code, api.text), (
        f"Host: {FORGED_HOST} got HTTP {api.status_code} from the API, not MLflow's 403 "
        f"({api.text[:120]!r}): the server's allowed hosts (MLFLOW_SERVER_ALLOWED_HOSTS) "
        "do not guard against DNS rebinding"
    )
    normal = deployment.http.post(SEARCH, json={"max_results": 1})
    assert normal.status_code == 200, f"the front door's own host is refused: {normal.text[:200]}"


def test_each_replica_refuses_a_forged_host(deployment, hardening):
    require_guards(deployment, hardening)
    controller = deployment.require("replica_controller", "cannot reach replicas one by one")
    for replica in settled_replicas(controller):
        api = controller.request(
            replica.name,
            f"{SEARCH}?max_results=1",
            headers={"Host": FORGED_HOST, **deployment.replica_headers()},
        )
        health = controller.request(replica.name, "/health", headers={"Host": FORGED_HOST})
        assert health.status == 200, f"{replica.name} /health refused: probes would fail"
        if mlflow_refused(api.status, api.text):
            continue
        assert api.status != 200, f"{replica.name} served the API to Host {FORGED_HOST}"
        if not controller.host_header_preserved:
            pytest.skip(
                f"inconclusive: {replica.name} answered HTTP {api.status} ({api.text[:80]!r}), "
                "not MLflow's refusal; the path to the pod may not carry a foreign Host"
            )
        pytest.fail(
            f"{replica.name} answered Host {FORGED_HOST} with HTTP {api.status} "
            f"({api.text[:120]!r}), not MLflow's 403 refusal"
        )


def test_a_foreign_origin_is_refused(deployment, hardening):
    """What a browser does on a page of another site: a preflight for the JSON POST (whose
    answer must not allow that origin), and the POST itself, which MLflow must refuse."""
    require_guards(deployment, hardening)
    preflight = deployment.http.request(
        "OPTIONS",
        SEARCH,
        headers={
            "Origin": FOREIGN_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    allowed = preflight.headers.get("Access-Control-Allow-Origin")
    assert allowed not in (FOREIGN_ORIGIN, "*"), (
        f"preflight from {FOREIGN_ORIGIN} allowed (Access-Control-Allow-Origin: {allowed})"
    )
    foreign = deployment.http.post(
        SEARCH, json={"max_results": 1}, headers={"Origin": FOREIGN_ORIGIN}
    )
    assert foreign.status_code == 403, (
        f"a POST from {FOREIGN_ORIGIN} got HTTP {foreign.status_code}, expected 403: the "
        "server's CORS origins (MLFLOW_SERVER_CORS_ALLOWED_ORIGINS) let other sites write"
    )


def test_the_uis_own_origin_may_write(deployment, hardening):
    """What the UI's own page sends: a same-origin POST carries ``Origin`` (no preflight),
    with the Host of the name the page was loaded from. MLflow blocks it unless that origin
    is configured, which breaks every write the UI makes."""
    require_guards(deployment, hardening)
    origin = deployment.ui_origin
    page = urlsplit(origin)
    if page.hostname in mlflow_api.LOCALHOST_NAMES:
        pytest.skip(
            f"the UI's origin {origin} is a localhost one, which MLflow never blocks: this "
            "check could not fail here"
        )
    same = deployment.http.post(
        SEARCH, json={"max_results": 1}, headers={"Origin": origin, "Host": page.netloc}
    )
    blocked = same.status_code == 403 and mlflow_api.CORS_REFUSAL in same.text
    assert same.status_code == 200, (
        f"a POST from the UI's own origin {origin} got HTTP {same.status_code} "
        f"({same.text[:120]!r}): "
        + (
            "MLflow's cross-origin guard blocks the browser UI's writes; add the UI's own "
            "origin to MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"
            if blocked
            else "the UI's page could not write"
        )
    )


def test_security_headers_on_every_kind_of_response(deployment, hardening, request):
    """MLflow's own headers (X-Content-Type-Options, X-Frame-Options), on the API, the
    artifact proxy and errors alike: a front door that drops them, or a server told not to
    send them, leaves pages open to MIME sniffing and clickjacking."""
    require_guards(deployment, hardening)
    for what, response in request.getfixturevalue("responses_of_each_kind"):
        seen = {name: response.headers.get(name) for name in SECURITY_HEADERS}
        assert response.headers.get("X-Content-Type-Options", "").lower() == "nosniff", (
            f"no X-Content-Type-Options: nosniff on {what} (HTTP {response.status_code}): {seen}"
        )
        frame = response.headers.get("X-Frame-Options", "").upper()
        assert frame in ("DENY", "SAMEORIGIN"), (
            f"no X-Frame-Options DENY or SAMEORIGIN on {what} (HTTP {response.status_code}): "
            f"{seen}; MLflow sends SAMEORIGIN unless MLFLOW_SERVER_X_FRAME_OPTIONS says NONE"
        )


ERROR_PROBES = [
    (
        "POST",
        mlflow_api.CREATE_RUN,
        {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
    ),
    ("GET", f"{mlflow_api.API}/no-such-endpoint", {}),
    ("GET", f"{mlflow_api.API}/runs/get", {"params": {"run_id": "0" * 32}}),
    ("GET", mlflow_api.artifact("0/no-such-file.txt"), {}),
    ("GET", "/get-artifact", {"params": {"path": "../../etc/passwd", "run_uuid": "0" * 32}}),
    (
        "POST",
        mlflow_api.SEARCH_RUNS,
        {"json": {"experiment_ids": ["0"], "filter": "metrics.x >>> 1"}},
    ),
    ("POST", "/graphql", {"json": {"query": "{ nonsense"}}),
]


def probe_ids(probes):
    return [f"{method} {path}" for method, path, _ in probes]


@pytest.mark.parametrize(("method", "path", "kwargs"), ERROR_PROBES, ids=probe_ids(ERROR_PROBES))
def test_error_responses_carry_no_stack_trace_or_secret(deployment, method, path, kwargs):
    response = deployment.http.request(method, path, **kwargs)
    assert response.status_code >= 400, f"{method} {path} unexpectedly succeeded"
    body = response.text
    leaks = [marker for marker in STACK_TRACE_MARKERS if marker in body]
    leaks += ["a secret" for secret in redaction.known() if secret in body]
    assert not leaks, f"{method} {path} (HTTP {response.status_code}) leaks {leaks}: {body[:300]}"


# MLflow 3.17.2 answers a malformed runs/create body with the DB driver's error text,
# including the SQL statement. Strict: when a release stops doing it, this turns red so
# the marker gets removed.
DRIVER_LEAK = pytest.mark.xfail(
    strict=True, reason="MLflow 3.17.2 returns the DB driver's error and SQL text on bad input"
)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [pytest.param(*ERROR_PROBES[0], marks=DRIVER_LEAK), *ERROR_PROBES[1:]],
    ids=probe_ids(ERROR_PROBES),
)
def test_error_responses_carry_no_database_internals(deployment, method, path, kwargs):
    response = deployment.http.request(method, path, **kwargs)
    leaks = [marker for marker in DRIVER_MARKERS if marker in response.text]
    assert not leaks, (
        f"{method} {path} (HTTP {response.status_code}) shows database internals {leaks}: "
        f"{response.text[:300]}"
    )


def test_metrics_endpoint_exposes_no_secrets(deployment):
    response = deployment.http.get("/metrics")
    if response.status_code == 404:
        pytest.skip("the metrics endpoint is not enabled (--expose-prometheus)")
    assert response.status_code == 200, f"/metrics: HTTP {response.status_code}"
    body = response.text
    assert "mlflow_http_request_total" in body or "# TYPE" in body, body[:200]
    found = [s for s in redaction.known() if s in body]
    assert not found, "/metrics exposes a secret"
    for marker in ("mysql+pymysql://", "password", "secret_key", "AWS_SECRET"):
        assert marker.lower() not in body.lower(), f"/metrics mentions {marker!r}"
    forged = deployment.http.get("/metrics", headers={"Host": FORGED_HOST})
    assert forged.status_code != 200, "/metrics answers any Host header"

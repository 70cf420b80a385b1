"""Smoke: the deployment answers through its front door, every replica is up, right version.

These run first and fast; when they fail, nothing else is worth reading.
"""

from __future__ import annotations

import time

import pytest
from mlflow_acceptance.fixtures.core import mlflow_api
from mlflow_acceptance.fixtures.core.capabilities import settled_replicas

pytestmark = pytest.mark.smoke


def test_health_through_front_door(deployment):
    response = deployment.http.get("/health")
    assert response.status_code == 200, (
        f"GET {deployment.tracking_uri}/health: expected 200, got {response.status_code}: "
        f"{response.text[:200]!r}"
    )
    assert response.text.strip() == "OK", f"/health body: expected 'OK', got {response.text!r}"


def test_version_is_the_one_deployed(deployment):
    response = deployment.http.get("/version")
    assert response.status_code == 200, f"GET /version: HTTP {response.status_code}"
    assert response.text.strip() == deployment.expected_version, (
        f"server reports MLflow {response.text.strip()!r}, expected "
        f"{deployment.expected_version!r} (set --mlflow-version to what you deployed)"
    )


def test_ui_root_serves_html(deployment):
    response = deployment.http.get("/")
    content_type = response.headers.get("content-type", "")
    assert response.status_code == 200, f"GET / (the UI): HTTP {response.status_code}"
    assert content_type.startswith("text/html"), f"GET / content-type is {content_type!r}"
    page = response.text.lower()
    assert "<html" in page, f"GET / is not an HTML page: {response.text[:200]!r}"
    assert "mlflow" in page, f"GET / does not look like the MLflow UI: {response.text[:200]!r}"


def test_mlflow_client_reaches_the_server(deployment):
    """The client as users configure it sees what the server holds: an experiment made
    over plain REST through the front door is found by name, with the same id."""
    name = deployment.unique_name("client-reach")
    response = deployment.http.post(mlflow_api.CREATE_EXPERIMENT, json={"name": name})
    assert response.status_code == 200, (
        f"POST {mlflow_api.CREATE_EXPERIMENT}: HTTP {response.status_code}: {response.text[:200]}"
    )
    created = response.json()["experiment_id"]
    found = deployment.mlflow_client().get_experiment_by_name(name)
    seen = None if found is None else found.experiment_id
    assert seen == created, f"the client found experiment {name!r} as {seen}, created {created}"


def test_each_replica_answers(deployment):
    controller = deployment.require("replica_controller", "cannot reach replicas one by one")
    replicas = settled_replicas(controller)  # fails, saying why, if one never gets Ready
    assert replicas, "the replica controller lists no server replicas"
    for replica in replicas:
        version = controller.request(replica.name, "/version", headers=deployment.replica_headers())
        assert version.status == 200, f"{replica.name} /version: HTTP {version.status}"
        assert version.text.strip() == deployment.expected_version, (
            f"{replica.name} reports MLflow {version.text.strip()!r}, "
            f"expected {deployment.expected_version!r}"
        )


ROTATION_CALLS = 40  # a replica left out by chance: (1/2)^40 with two, 3 x (2/3)^40 with three


def test_front_door_reaches_every_replica(deployment):
    """Front-door API calls land on every Ready replica, counted in each replica's own
    access log: a replica left out of rotation (a stale endpoint list, an upstream naming
    one pod) is capacity paid for and never used, and fails over nowhere."""
    controller = deployment.require("replica_controller", "cannot see replicas one by one")
    replicas = settled_replicas(controller)
    if len(replicas) < 2:
        pytest.skip(f"{len(replicas)} replica Ready: nothing to balance over")
    since = time.time() - 1  # logs are read by the second; only the difference counts
    before = {r.name: controller.served(r.name, since) for r in replicas}
    for _ in range(ROTATION_CALLS):
        response = deployment.http.post(mlflow_api.SEARCH_EXPERIMENTS, json={"max_results": 1})
        assert response.status_code == 200, f"experiments/search: HTTP {response.status_code}"
    counts = {name: controller.served(name, since) - before[name] for name in before}
    idle = sorted(name for name, count in counts.items() if count == 0)
    assert not idle, (
        f"{', '.join(idle)} served none of {ROTATION_CALLS} front-door calls while Ready "
        f"(calls served per replica: {counts}): out of rotation"
    )
    assert sum(counts.values()) >= ROTATION_CALLS, (
        f"the replicas logged {sum(counts.values())} of {ROTATION_CALLS} front-door calls "
        f"({counts}): their access logs do not show what they serve"
    )

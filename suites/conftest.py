"""Shared fixtures of the acceptance suites: an MLflow client, prefixed experiments, a
logged run, and one front-door response of each kind a browser gets."""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core import mlflow_api


@pytest.fixture(scope="module")
def client(deployment):
    """The MLflow client as a user configures it: tracking URI and CA bundle, nothing else."""
    return deployment.mlflow_client()


@pytest.fixture
def new_experiment(deployment, client):
    """Create an experiment named with this run's prefix; the janitor removes it at the end."""

    def create(what: str, **tags: str) -> str:
        return client.create_experiment(deployment.unique_name(what), tags=tags or None)

    return create


@pytest.fixture(scope="module")
def logged_run(deployment) -> tuple[str, str]:
    """An experiment and a run with a metric, for requests that need one to exist (the
    route families' chart and search requests)."""
    client = deployment.mlflow_client()
    experiment_id = client.create_experiment(deployment.unique_name("logged-run"))
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "m", 1.0, step=0)
    return experiment_id, run.info.run_id


@pytest.fixture(scope="module")
def artifact_run(deployment, client) -> tuple[str, str]:
    """An experiment and a run whose artifacts the artifact suites write and read back."""
    experiment_id = client.create_experiment(deployment.unique_name("artifacts"))
    run = client.create_run(experiment_id)
    return experiment_id, run.info.run_id


@pytest.fixture(scope="module")
def bucket_unchecked_note(deployment, run_state) -> None:
    """Without a bucket verifier the bucket half of these checks cannot run: say so in the
    summary rather than pass it silently."""
    if deployment.object_store is None:
        note = (
            f"artifacts: {deployment.label} has no bucket verifier (--bucket): artifacts were "
            "read back through the server only, never found in the bucket"
        )
        if note not in run_state.summary.notes:
            run_state.summary.notes.append(note)


@pytest.fixture
def responses_of_each_kind(deployment) -> list[tuple[str, object]]:
    """Health, the API, the artifact proxy and an error, as (what, response): headers a
    front door or the server adds must be on all of them (nginx's ``add_header`` without
    ``always`` drops them on 4xx/5xx). Fails at once when a kind does not answer as meant,
    so a header check never judges an error page that stands in for a success."""
    http = deployment.http
    missing = deployment.unique_name("no-such-folder")
    responses = [
        ("GET /health", http.get("/health")),
        (
            "POST experiments/search",
            http.post(mlflow_api.SEARCH_EXPERIMENTS, json={"max_results": 1}),
        ),
        ("GET the artifact proxy", http.get(mlflow_api.ARTIFACTS, params={"path": missing})),
        (
            "GET an experiment that does not exist",
            http.get(f"{mlflow_api.API}/experiments/get", params={"experiment_id": "987654321"}),
        ),
    ]
    statuses = {what: response.status_code for what, response in responses}
    assert all(code < 400 for code in list(statuses.values())[:-1]), (
        f"the responses meant to succeed did not: {statuses}"
    )
    assert list(statuses.values())[-1] >= 400, f"no error response to inspect: {statuses}"
    return responses

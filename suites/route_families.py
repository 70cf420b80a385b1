"""The route families the UI and MLflow 3's clients use, each with one request MLflow
answers in a known way: what suites/test_routes.py sends through the front door, and
suites/test_auth.py sends without credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mlflow_acceptance.fixtures.core import mlflow_api

GRAPHQL_SEARCH = (
    'query { mlflowSearchRuns(input: {experimentIds: ["%s"], maxResults: 1}) '
    "{ runs { info { runId } } apiError { code message } } }"
)
# The UI page loads its bundle by a path relative to the page: static-files/static/js/...
UI_SCRIPT = re.compile(r'src="/?(static-files/[^"]+\.js)"')


@dataclass(frozen=True)
class Route:
    """One request of a route family and the answer only MLflow gives to it."""

    method: str
    path: str
    status: int
    says: str  # a fragment of MLflow's own answer
    breaks: str  # what users lose when the front door does not route it
    kwargs: dict[str, Any] = field(default_factory=dict)


# Families MLflow 2 does not serve: skipped on an older server, not blamed on the front door.
MLFLOW_3 = {"api 3.0", "ajax-api 3.0", "otlp"}


def route(family: str, deployment, logged_run: tuple[str, str]) -> Route:
    """The request for ``family``. The 3.0 families send a search without its required
    locations: MLflow's own refusal (400 naming the parameter) proves the route, and holds
    across 3.x, where a successful answer's shape does not."""
    experiment_id, run_id = logged_run
    search = {"json": {"max_results": 1}}
    if family == "api 2.0":
        return Route(
            "POST", mlflow_api.SEARCH_EXPERIMENTS, 200, '"experiments"', "the tracking client",
            search,
        )  # fmt: skip
    if family == "api 3.0":
        return Route(
            "POST", "/api/3.0/mlflow/traces/search", 400, "locations",
            "MLflow 3 clients (traces, assessments)", {"json": {}},
        )  # fmt: skip
    if family == "ajax-api 2.0":
        return Route(
            "POST", "/ajax-api/2.0/mlflow/experiments/search", 200, '"experiments"',
            "every page of the UI (its data calls)", search,
        )  # fmt: skip
    if family == "ajax-api 3.0":
        return Route(
            "POST", "/ajax-api/3.0/mlflow/traces/search", 400, "locations",
            "the UI's MLflow 3 pages (traces, evaluations)", {"json": {}},
        )  # fmt: skip
    if family == "chart data":
        return Route(
            "GET",
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
            f"?run_ids={run_id}&metric_key=m&max_results=10",
            200, '"metrics"', "the UI's metric charts",
        )  # fmt: skip
    if family == "graphql":
        return Route(
            "POST", "/graphql", 200, '"mlflowSearchRuns"', "the UI's run pages (GraphQL)",
            {"json": {"query": GRAPHQL_SEARCH % experiment_id}},
        )  # fmt: skip
    if family == "otlp":
        # An export with no spans: MLflow's OTLP endpoint refuses it with its own message
        # (a real span is the tracing suite's business; here only the route is judged).
        return Route(
            "POST", mlflow_api.OTLP_TRACES, 400, "no spans found",
            "OpenTelemetry trace export (mlflow.tracing, any OTLP exporter)",
            {"data": b"", "headers": {
                "Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment_id,
            }},
        )  # fmt: skip
    if family == "ui":
        return Route("GET", "/", 200, "<html", "the UI itself")
    if family == "static-files":
        page = deployment.http.get("/").text
        found = UI_SCRIPT.search(page)
        assert found, f"the UI page names no static-files script: {page[:200]!r}"
        return Route("GET", "/" + found.group(1), 200, "", "the UI's scripts and styles")
    raise ValueError(family)


FAMILIES = (
    "api 2.0", "api 3.0", "ajax-api 2.0", "ajax-api 3.0", "chart data", "graphql", "otlp",
    "ui", "static-files",
)  # fmt: skip

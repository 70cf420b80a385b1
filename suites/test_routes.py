"""Every route family the UI and MLflow 3's clients use reaches the server through the
front door.

An ingress or gateway written for MLflow 2 often forwards only ``/api/2.0`` and ``/``: the
tracking client then works and every MLflow 2 check passes, while the UI's data calls
(``/ajax-api``), its run search (``/graphql``), its scripts (``/static-files``), MLflow 3's
own API (``/api/3.0``) and OTLP trace export (``/v1/traces``) answer with the front door's
404. Each family gets one request MLflow answers in a known way; anything else is named,
with what breaks for users.
"""

from __future__ import annotations

import pytest
from mlflow_acceptance.suites.route_families import FAMILIES, MLFLOW_3, route

pytestmark = pytest.mark.acceptance


@pytest.mark.parametrize("family", FAMILIES)
def test_route_family_reaches_mlflow(family, deployment, logged_run):
    if family in MLFLOW_3:
        deployment.require_server("3.0.0", f"the {family} routes")
    sent = route(family, deployment, logged_run)
    response = deployment.http.request(sent.method, sent.path, **sent.kwargs)
    answered = response.status_code == sent.status and sent.says in response.text
    assert answered, (
        f"{sent.method} {sent.path} answered HTTP {response.status_code} "
        f"(Server: {response.headers.get('Server', '-')}) {response.text[:160]!r}, not "
        f"MLflow's own answer (HTTP {sent.status}{f' with {sent.says!r}' if sent.says else ''}):"
        f" the front door does not route {family} to the server, which breaks {sent.breaks}"
    )

"""The janitor removes only what the run made, webhooks included, and says what it could not."""

from __future__ import annotations

import json
from types import SimpleNamespace

from mlflow_acceptance.fixtures.core import mlflow_api
from mlflow_acceptance.fixtures.core.janitor import Janitor

PREFIX = "acc-20261203-0000-ab12"


class Http:
    def __init__(self, routes):
        self.routes, self.sent = routes, []

    def request(self, method, path, **kwargs):
        self.sent.append((method, path, kwargs))
        status, body = self.routes(method, path, kwargs)
        return SimpleNamespace(
            status_code=status, content=json.dumps(body).encode(), json=lambda: body
        )

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)


def webhooks_in_two_pages(method, path, kwargs):
    if path == mlflow_api.WEBHOOKS:
        if kwargs["params"].get("page_token") is None:
            mine = {"webhook_id": "w1", "name": f"{PREFIX}-webhook-1"}
            theirs = {"webhook_id": "w2", "name": "team-alerts"}
            return 200, {"webhooks": [mine, theirs], "next_page_token": "t2"}
        return 200, {"webhooks": [{"webhook_id": "w3", "name": f"{PREFIX}-webhook-3"}]}
    if method == "DELETE" and path.startswith(mlflow_api.WEBHOOKS):
        return 200, {}
    return 200, {}  # no experiments, no models


def test_the_runs_webhooks_are_deleted_on_every_page_and_no_others():
    http = Http(webhooks_in_two_pages)
    janitor = Janitor(http, PREFIX)
    counts = janitor.sweep()
    deleted = [path for method, path, _ in http.sent if method == "DELETE"]
    assert deleted == [f"{mlflow_api.WEBHOOKS}/w1", f"{mlflow_api.WEBHOOKS}/w3"]
    assert counts["webhooks"] == 2
    assert janitor.problems == []


def test_a_server_without_webhooks_is_no_problem():
    janitor = Janitor(
        Http(lambda m, p, k: (404, {}) if p == mlflow_api.WEBHOOKS else (200, {})), PREFIX
    )
    assert janitor.sweep()["webhooks"] == 0
    assert janitor.problems == []


def test_a_webhook_listing_that_fails_is_reported():
    janitor = Janitor(
        Http(lambda m, p, k: (500, {}) if p == mlflow_api.WEBHOOKS else (200, {})), PREFIX
    )
    janitor.sweep()
    assert janitor.problems == ["listing webhooks: HTTP 500"]


def test_with_the_auth_app_the_runs_users_are_deleted_and_no_others():
    def users(method, path, kwargs):
        if path == f"{mlflow_api.USERS}/list":
            mine, admin = {"username": f"{PREFIX}-reader-1"}, {"username": "admin"}
            return 200, {"users": [mine, admin]}
        return 200, {}

    http = Http(users)
    counts = Janitor(http, PREFIX, users=True).sweep()
    deleted = [k["json"] for m, p, k in http.sent if p == f"{mlflow_api.USERS}/delete"]
    assert deleted == [{"username": f"{PREFIX}-reader-1"}]
    assert counts["users"] == 1
    assert Janitor(Http(users), PREFIX).sweep()["users"] == 0  # no auth app: not listed

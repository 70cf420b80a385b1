"""A fake API server for the Kubernetes self-tests: recorded JSON objects served by path.

It implements the same four calls as fixtures.k8s.api.KubeApi and keeps every write, so
tests can assert what a capability would have sent to a real cluster.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.k8s.api import KubeError

DATA = Path(__file__).parent / "data" / "k8s"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


class FakeKube:
    def __init__(self, routes: dict[str, Any] | None = None) -> None:
        self.routes: dict[str, Any] = dict(routes or {})
        self.texts: dict[str, str] = {}
        self.sent: list[tuple[str, str, Any]] = []
        self.gets: list[tuple[str, dict[str, str] | None]] = []

    def get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        self.gets.append((path, query))
        if path not in self.routes:
            raise KubeError(404, path, "not found")
        value = self.routes[path]
        if isinstance(value, Exception):
            raise value
        return copy.deepcopy(value)

    def text(self, path: str, query: dict[str, str] | None = None) -> str:
        query = query or {}
        key = f"{path}?previous={query.get('previous')}&container={query.get('container')}"
        if key not in self.texts:
            raise KubeError(404, path, "no logs")
        return self.texts[key]

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self.sent.append((method, path, body))
        return {}

    def raw(self, path, timeout=10.0, headers=None):
        self.gets.append((path, headers))
        value = self.routes.get(path)
        if value is None:
            return 503, "no endpoints available for service", {}
        return 200, value, {"Content-Type": "text/plain"}


def release_routes(namespace: str = "mlflow", name: str = "mlflow") -> dict[str, Any]:
    """The recorded objects at the paths the capabilities read for release "mlflow"."""
    return {
        f"/api/v1/namespaces/{namespace}/pods": load("pods.json"),
        f"/api/v1/namespaces/{namespace}/events": load("events.json"),
        f"/apis/apps/v1/namespaces/{namespace}/deployments": {
            "kind": "DeploymentList",
            "items": [load("deployment.json")],
        },
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}": load("deployment.json"),
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}": load("ingress.json"),
        f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods": load("pod-metrics.json"),
        f"/apis/cert-manager.io/v1/namespaces/{namespace}/certificates/mlflow-tls": load(
            "certificate.json"
        ),
        f"/api/v1/namespaces/{namespace}/secrets/mlflow-tls": load("certificate-secret.json"),
    }


def test_fake_serves_copies_and_404s():
    fake = FakeKube({"/a": {"x": [1]}})
    fake.get("/a")["x"].append(2)
    assert fake.get("/a") == {"x": [1]}
    with pytest.raises(KubeError) as caught:
        fake.get("/missing")
    assert caught.value.status == 404

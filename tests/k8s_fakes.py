"""Test helpers for the Kubernetes self-tests (no tests here): recorded API objects, a fake
API server that serves them by path, and the backends a kind run would deploy against.

The fake implements the same four calls as fixtures.k8s.api.KubeApi and keeps every write,
so tests can assert what a capability would have sent to a real cluster.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from mlflow_acceptance.fixtures.k8s.api import KubeError
from mlflow_acceptance.fixtures.k8s.release import Backends
from mlflow_acceptance.fixtures.targets.kind.standins import server_env

DATA = Path(__file__).parent / "data" / "k8s"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


class FakeKube:
    def __init__(self, routes: dict[str, Any] | None = None) -> None:
        self.routes: dict[str, Any] = dict(routes or {})
        self.texts: dict[str, str] = {}
        self.sent: list[tuple[str, str, Any]] = []
        self.gets: list[tuple[str, dict[str, str] | None]] = []
        self.execs: dict[str, tuple[int, str, str]] = {}
        self.log_queries: list[dict[str, str]] = []

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
        self.log_queries.append(query)
        key = f"{path}?previous={query.get('previous')}&container={query.get('container')}"
        if key not in self.texts:
            raise KubeError(404, path, "no logs")
        return self.texts[key]

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self.sent.append((method, path, body))
        return {}

    def exec(self, namespace, pod, container, command, timeout):
        """Answers scripted per operation: ``self.execs[op] = (code, stdout, stderr)``."""
        self.sent.append(("EXEC", f"{namespace}/{pod}/{container}", command))
        request = json.loads(command[-1])
        return self.execs[request["op"]]

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


def backends(kind: str) -> Backends:
    """What a kind run with the ``kind`` store stand-in deploys against."""
    host = f"mlflow-acc-r1-{kind}"
    return Backends(
        db_host="mlflow-acc-r1-mysql",
        db_name="mlflow",
        db_user="mlflow",
        db_password="pw-123456",
        store_kind=kind,
        bucket="mlflow-artifacts",
        prefix="mlruns",
        server_env=server_env(kind, host),
        s3_credentials={}
        if kind == "fake-gcs"
        else {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
    )

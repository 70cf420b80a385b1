"""KubeApi against a local HTTP server standing in for an API server: paths, auth, status."""

from __future__ import annotations

import http.server
import json
import threading
from typing import ClassVar

import pytest
from mlflow_acceptance.fixtures.k8s.api import KubeApi, KubeError, pod_proxy_path

from tests.k8s_fakes import FakeKube


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict]] = []

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        Recorder.seen.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        )
        if "missing" in self.path:
            self._answer(404, {"kind": "Status", "reason": "NotFound"})
        else:
            self._answer(200, {"kind": "PodList", "items": []})

    def do_DELETE(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        Recorder.seen.append({"path": self.path, "body": body, "method": "DELETE"})
        self._answer(200, {"kind": "Status", "status": "Success"})

    def log_message(self, *args):
        pass


@pytest.fixture
def api(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster: {{server: 'http://127.0.0.1:{server.server_port}'}}\n"
        "users:\n- name: u\n  user: {token: tok-abcdef}\n"
        "contexts:\n- name: ctx\n  context: {cluster: c, user: u}\ncurrent-context: ctx\n"
    )
    Recorder.seen.clear()
    client = KubeApi(config, "ctx")
    yield client
    client.close()
    server.shutdown()


def test_get_sends_the_selector_and_the_token(api):
    assert api.get("/api/v1/namespaces/m/pods", {"labelSelector": "a=b,c=d"}) == {
        "kind": "PodList",
        "items": [],
    }
    seen = Recorder.seen[-1]
    assert seen["path"] == "/api/v1/namespaces/m/pods?labelSelector=a%3Db%2Cc%3Dd"
    assert seen["headers"]["authorization"] == "Bearer tok-abcdef"


def test_non_2xx_raises_with_the_status(api):
    with pytest.raises(KubeError) as failure:
        api.get("/api/v1/namespaces/m/pods/missing")
    assert failure.value.status == 404


def test_raw_returns_any_status_and_forwards_headers(api):
    status, _, _ = api.raw(pod_proxy_path("m", "p-1", 5000, "/missing"), headers={"Host": "mlflow"})
    assert status == 404
    assert Recorder.seen[-1]["path"] == "/api/v1/namespaces/m/pods/p-1:5000/proxy/missing"
    assert Recorder.seen[-1]["headers"]["host"] == "mlflow"


def test_delete_sends_the_body(api):
    api.send("DELETE", "/api/v1/namespaces/m/pods/p-1", {"gracePeriodSeconds": 0})
    assert Recorder.seen[-1]["body"] == {"gracePeriodSeconds": 0}


def test_fake_serves_copies_and_404s():
    fake = FakeKube({"/a": {"x": [1]}})
    fake.get("/a")["x"].append(2)
    assert fake.get("/a") == {"x": [1]}
    with pytest.raises(KubeError) as caught:
        fake.get("/missing")
    assert caught.value.status == 404


def test_a_query_in_a_proxy_path_is_sent_as_a_query(api):
    """D6: "…/proxy/api/2.0/mlflow/experiments/search?max_results=1" must reach the pod as
    that path with that query, not as a path ending in "search%3Fmax_results%3D1"."""
    path = pod_proxy_path("m", "p-1", 5000, "/api/2.0/mlflow/experiments/search?max_results=1")
    api.raw(path, headers={"Host": "evil.example.com"})
    seen = Recorder.seen[-1]["path"]
    assert seen == (
        "/api/v1/namespaces/m/pods/p-1:5000/proxy/api/2.0/mlflow/experiments/search?max_results=1"
    ), seen

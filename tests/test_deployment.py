"""The Deployment's own derived facts."""

from __future__ import annotations

from types import SimpleNamespace

from mlflow_acceptance.fixtures.core.deployment import Deployment


def deployment(**capabilities) -> Deployment:
    return Deployment("fake", "https://mlflow.example.com", None, "3.17.2", "r1", **capabilities)


def test_the_replica_ceiling_is_the_autoscalers_max_not_what_runs_now():
    """D13: the DB connection worst case counts every replica the HPA may add."""
    one_running = SimpleNamespace(list=lambda: [object()])
    hpa = SimpleNamespace(sample=lambda: {"max_replicas": 5, "min_replicas": 1})
    assert deployment(replica_controller=one_running, autoscaler=hpa).replica_ceiling() == 5
    assert deployment(replica_controller=one_running).replica_ceiling() == 1
    assert deployment().replica_ceiling() is None


def test_client_processes_follow_the_harness_proxy_else_the_callers(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    plain = Deployment("d", "https://127.0.0.1:8443", None, "3.17.2", "r1")
    assert plain.bucket_client_env == {}
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert plain.bucket_client_env == {
        "HTTP_PROXY": "http://127.0.0.1:3128",
        "NO_PROXY": "127.0.0.1",
    }
    own = Deployment("d", "https://127.0.0.1:8443", None, "3.17.2", "r1", bucket_proxy="http://p:1")
    assert own.bucket_client_env == {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1,localhost"}


def test_the_stack_says_how_clients_reach_an_s3_stand_ins_urls(tmp_path):
    from mlflow_acceptance.fixtures.stack import how_to_reach

    ca = tmp_path / "ca.pem"
    deployment = Deployment(
        "local", "https://127.0.0.1:8443", ca, "3.17.2", "r1", bucket_proxy="http://127.0.0.1:9"
    )
    lines = how_to_reach(deployment).splitlines()
    assert "  export HTTP_PROXY=http://127.0.0.1:9" in lines
    assert "  export NO_PROXY=127.0.0.1,localhost" in lines
    assert lines.index("  export HTTP_PROXY=http://127.0.0.1:9") < len(lines) - 1
    assert lines[-1].startswith("  nox -s external -- --tracking-uri")  # from a checkout

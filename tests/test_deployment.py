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

"""Disruption budgets: which select the release's pods, and whether one works at the
autoscaler's minimum (drains neither hang nor take every replica)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow_acceptance.fixtures.k8s import disruption
from mlflow_acceptance.suites import test_k8s_release as checks

LABELS = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "mlflow"}


def budget(name="mlflow", selector=None, **spec):
    selector = selector if selector is not None else {"matchLabels": dict(LABELS)}
    return {"metadata": {"name": name}, "spec": {"selector": selector, **spec}}


def test_selectors_match_labels_and_expressions():
    assert disruption.selects({"matchLabels": {"app.kubernetes.io/name": "mlflow"}}, LABELS)
    assert not disruption.selects({"matchLabels": {"app": "other"}}, LABELS)
    expression = {"key": "app.kubernetes.io/instance", "operator": "In", "values": ["mlflow"]}
    assert disruption.selects({"matchExpressions": [expression]}, LABELS)
    assert not disruption.selects(
        {"matchExpressions": [{**expression, "operator": "NotIn"}]}, LABELS
    )
    assert disruption.selects({}, LABELS), "policy/v1: an empty selector selects every pod"
    assert not disruption.selects(None, LABELS), "and no selector none"


@pytest.mark.parametrize(
    ("spec", "replicas", "allowed"),
    [
        ({"maxUnavailable": 1}, 2, 1),
        ({"minAvailable": 1}, 2, 1),
        ({"minAvailable": "50%"}, 3, 1),  # 1.5 rounded up to 2 must stay
        ({"maxUnavailable": "50%"}, 3, 2),
        ({"minAvailable": 2}, 2, 0),
        ({"maxUnavailable": 0}, 2, 0),
    ],
)
def test_evictions_allowed_as_the_disruption_controller_counts(spec, replicas, allowed):
    assert disruption.evictions_allowed(budget(**spec), replicas) == allowed


def test_a_budget_must_neither_block_drains_nor_allow_every_eviction():
    assert disruption.budget_problem(budget(maxUnavailable=1), 2) is None
    assert "allows no eviction at 2" in disruption.budget_problem(budget(minAvailable=2), 2)
    assert "protects nothing" in disruption.budget_problem(budget(maxUnavailable=1), 1)


def release(budgets, min_replicas=2):
    pods = [{"metadata": {"name": "mlflow-abc", "labels": LABELS}}]
    api = SimpleNamespace(get=lambda path: {"items": budgets})
    k8s = SimpleNamespace(
        pods=lambda: pods,
        api=api,
        release=SimpleNamespace(name="mlflow", namespace="mlflow", pod_selector="x"),
    )
    autoscaler = SimpleNamespace(sample=lambda: {"min_replicas": min_replicas})
    return SimpleNamespace(kubernetes=k8s, autoscaler=autoscaler, label="release mlflow")


def test_the_check_reports_no_budget_as_hardening_and_fails_a_blocking_one():
    findings = []
    measure = lambda name, value: value  # noqa: E731
    hardening = lambda finding, advice: findings.append(finding)  # noqa: E731
    checks.test_a_disruption_budget_keeps_a_replica_through_drains(
        release([budget(name="other", selector={"matchLabels": {"app": "x"}})]), hardening, measure
    )
    assert findings == [
        "no PodDisruptionBudget selects the pods of mlflow: a node drain or upgrade may "
        "evict every replica at once"
    ]
    checks.test_a_disruption_budget_keeps_a_replica_through_drains(
        release([budget(maxUnavailable=1)]), hardening, measure
    )
    with pytest.raises(AssertionError, match="allows no eviction at 2 replica"):
        checks.test_a_disruption_budget_keeps_a_replica_through_drains(
            release([budget(minAvailable="100%")]), hardening, measure
        )


def test_no_right_to_list_budgets_is_a_skip_saying_so():
    from mlflow_acceptance.fixtures.k8s.api import KubeError

    denied = release([])

    def forbidden(path):
        raise KubeError(403, path, "forbidden")

    denied.kubernetes.api = SimpleNamespace(get=forbidden)
    with pytest.raises(pytest.skip.Exception, match="may not list PodDisruptionBudgets"):
        checks.test_a_disruption_budget_keeps_a_replica_through_drains(
            denied, lambda *a: None, lambda *a: None
        )

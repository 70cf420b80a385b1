"""HPA timeline evaluation on recorded autoscaling/v2 objects beside the Deployment they scale:
scale-out (Ready pods, not the HPA's currentReplicas) and scale-in seen, and why not."""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core.capabilities import AutoscalerObserver
from mlflow_acceptance.fixtures.k8s.autoscaler import HpaObserver, summarize_hpa
from mlflow_acceptance.fixtures.k8s.chart import Release
from mlflow_acceptance.load.autoscaling import (
    at_minimum,
    evaluate_scale_in,
    evaluate_scale_out,
    scale_in_budget,
)

from tests.k8s_fakes import FakeKube, load


def timeline(name: str) -> list[dict]:
    return [
        summarize_hpa(sample["hpa"], float(sample["t"]), sample["deployment"])
        for sample in load(name)
    ]


def test_sample_has_the_documented_keys_and_values():
    point = timeline("hpa-timeline-scaled.json")[3]
    assert point == {
        "at": 60.0,
        "desired_replicas": 2,
        "current_replicas": 1,
        "spec_replicas": 2,
        "ready_replicas": 1,
        "min_replicas": 1,
        "max_replicas": 2,
        "cpu_utilization": 143,
        "target_cpu_utilization": 70,
        "scale_down_window": 300,
        "conditions": {"AbleToScale": "True", "ScalingActive": "True", "ScalingLimited": "False"},
        "reasons": {
            "ScalingLimited": "DesiredWithinRange: the desired count is within the acceptable range"
        },
    }


def test_observer_reads_the_charts_hpa_and_satisfies_the_protocol():
    recorded = load("hpa-timeline-scaled.json")[0]
    hpa = recorded["hpa"]
    hpa["spec"]["scaleTargetRef"]["name"] = "t-mlflow"
    fake = FakeKube(
        {
            "/apis/autoscaling/v2/namespaces/acc/horizontalpodautoscalers/t-mlflow": hpa,
            "/apis/apps/v1/namespaces/acc/deployments/t-mlflow": recorded["deployment"],
        }
    )
    observer = HpaObserver(fake, Release("t", "acc"), clock=lambda: 12.5)
    assert isinstance(observer, AutoscalerObserver)
    sample = observer.sample()
    assert sample["at"] == 12.5
    assert sample["target_cpu_utilization"] == 70
    assert sample["cpu_utilization"] == 3
    assert (sample["spec_replicas"], sample["ready_replicas"]) == (1, 1)


def test_scale_out_within_budget_is_reported_with_its_time():
    verdict = evaluate_scale_out(timeline("hpa-timeline-scaled.json"), budget_seconds=300)
    assert verdict.scaled_out
    # Not 80 s, when currentReplicas (the Deployment's spec) reached 2: 100 s, when the
    # second pod was Ready.
    assert verdict.seconds_to_scale == 100.0
    assert verdict.peak_replicas == 2
    assert verdict.peak_cpu_utilization == 143


def test_scale_out_after_the_budget_fails():
    verdict = evaluate_scale_out(timeline("hpa-timeline-scaled.json"), budget_seconds=60)
    assert not verdict.scaled_out
    assert verdict.reason == "reached 2 Ready replicas only after 100s, beyond the 60s budget"
    assert verdict.seconds_to_scale is None


def test_missing_cpu_request_is_named_as_the_cause():
    verdict = evaluate_scale_out(timeline("hpa-timeline-no-metrics.json"), budget_seconds=900)
    assert not verdict.scaled_out
    assert "never had a usable CPU metric" in verdict.reason
    assert "missing request for cpu" in verdict.reason
    assert verdict.peak_cpu_utilization is None


def test_wanted_but_not_started_pods_are_named_as_the_cause():
    """D2: the sequence the HPA controller really writes when the new pod stays Pending:
    desired 2, then currentReplicas 2 one sync later (the Deployment's spec), Ready 1."""
    points = timeline("hpa-timeline-pending.json")
    assert [(p["current_replicas"], p["desired_replicas"]) for p in points[:3]] == [
        (1, 1),
        (1, 2),
        (2, 2),
    ]
    verdict = evaluate_scale_out(points, budget_seconds=900)
    assert not verdict.scaled_out, "a Pending pod counted as scaled out"
    assert verdict.peak_replicas == 1
    assert "asked for 2 replicas" in verdict.reason
    assert "only 1 were Ready" in verdict.reason
    assert "did not start" in verdict.reason


def test_too_little_load_is_named_as_the_cause():
    idle = timeline("hpa-timeline-scaled.json")[:3]
    verdict = evaluate_scale_out(idle, budget_seconds=900)
    assert not verdict.scaled_out
    assert "CPU peaked at 68% of request against a 70% target" in verdict.reason


@pytest.mark.parametrize("points", [[]])
def test_no_samples_is_a_failure_not_a_pass(points):
    assert not evaluate_scale_out(points, budget_seconds=900).scaled_out


def scale_in_points(ready: list[int], desired: list[int], window: int = 30) -> list[dict]:
    base = timeline("hpa-timeline-scaled.json")[-1]
    return [
        {**base, "at": 5.0 * i, "ready_replicas": r, "desired_replicas": d,
         "scale_down_window": window}
        for i, (r, d) in enumerate(zip(ready, desired, strict=True))
    ]  # fmt: skip


def test_scale_in_back_to_min_within_the_window_is_fine():
    points = scale_in_points([2, 2, 2, 2, 2, 1], [2, 2, 1, 1, 1, 1])
    assert evaluate_scale_in(points, scale_in_budget(points[0])) is None
    assert scale_in_budget(points[0]) == 30 + 90


def test_no_scale_in_names_what_was_left():
    points = scale_in_points([2] * 6, [2] * 6)
    problem = evaluate_scale_in(points, budget_seconds=20)
    assert "the HPA wanted 2 and 2 were Ready, not minReplicas=1" in problem


def test_wanting_min_is_not_yet_being_at_min():
    """desired back to 1 while 2 pods are still Ready (terminating late) is not scaled in."""
    points = scale_in_points([2] * 6, [1] * 6)
    assert not any(at_minimum(p) for p in points)
    assert evaluate_scale_in(points, budget_seconds=20) is not None

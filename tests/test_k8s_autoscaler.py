"""HPA timeline evaluation on recorded autoscaling/v2 objects: scale-out seen, and why not."""

from __future__ import annotations

import pytest

from fixtures.core.capabilities import AutoscalerObserver
from fixtures.k8s.autoscaler import HpaObserver, summarize_hpa
from fixtures.k8s.chart import Release
from load.autoscaling import evaluate_scale_out
from tests.k8s_fakes import FakeKube, load


def timeline(name: str) -> list[dict]:
    return [summarize_hpa(sample["hpa"], float(sample["t"])) for sample in load(name)]


def test_sample_has_the_documented_keys_and_values():
    point = timeline("hpa-timeline-scaled.json")[3]
    assert point == {
        "at": 60.0,
        "desired_replicas": 2,
        "current_replicas": 1,
        "min_replicas": 1,
        "max_replicas": 2,
        "cpu_utilization": 143,
        "target_cpu_utilization": 70,
        "conditions": {"AbleToScale": "True", "ScalingActive": "True", "ScalingLimited": "False"},
        "reasons": {
            "ScalingLimited": "DesiredWithinRange: the desired count is within the acceptable range"
        },
    }


def test_observer_reads_the_charts_hpa_and_satisfies_the_protocol():
    hpa = load("hpa-timeline-scaled.json")[0]["hpa"]
    fake = FakeKube({"/apis/autoscaling/v2/namespaces/acc/horizontalpodautoscalers/t-mlflow": hpa})
    observer = HpaObserver(fake, Release("t", "acc"), clock=lambda: 12.5)
    assert isinstance(observer, AutoscalerObserver)
    sample = observer.sample()
    assert sample["at"] == 12.5
    assert sample["target_cpu_utilization"] == 70
    assert sample["cpu_utilization"] == 3


def test_scale_out_within_budget_is_reported_with_its_time():
    verdict = evaluate_scale_out(timeline("hpa-timeline-scaled.json"), budget_seconds=300)
    assert verdict.scaled_out
    assert verdict.seconds_to_scale == 80.0  # the first sample that RAN 2 pods, not wanted 2
    assert verdict.peak_replicas == 2
    assert verdict.peak_cpu_utilization == 143


def test_scale_out_after_the_budget_fails():
    verdict = evaluate_scale_out(timeline("hpa-timeline-scaled.json"), budget_seconds=60)
    assert not verdict.scaled_out
    assert verdict.reason == "reached 2 replicas only after 80s, beyond the 60s budget"
    assert verdict.seconds_to_scale is None


def test_missing_cpu_request_is_named_as_the_cause():
    verdict = evaluate_scale_out(timeline("hpa-timeline-no-metrics.json"), budget_seconds=900)
    assert not verdict.scaled_out
    assert "never had a usable CPU metric" in verdict.reason
    assert "missing request for cpu" in verdict.reason
    assert verdict.peak_cpu_utilization is None


def test_wanted_but_not_started_pods_are_named_as_the_cause():
    verdict = evaluate_scale_out(timeline("hpa-timeline-pending.json"), budget_seconds=900)
    assert not verdict.scaled_out
    assert "wanted 2 replicas but only 1 ran" in verdict.reason


def test_too_little_load_is_named_as_the_cause():
    idle = timeline("hpa-timeline-scaled.json")[:3]
    verdict = evaluate_scale_out(idle, budget_seconds=900)
    assert not verdict.scaled_out
    assert "CPU peaked at 68% of request against a 70% target" in verdict.reason


@pytest.mark.parametrize("points", [[]])
def test_no_samples_is_a_failure_not_a_pass(points):
    assert not evaluate_scale_out(points, budget_seconds=900).scaled_out

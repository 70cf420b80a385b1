"""The autoscaling suite's checks on synthetic runs: each passes on good data and fails on bad.

No Docker and no locust: a Calibration is assembled from made-up readings and the sample
CSVs, then handed to the check functions of suites/test_autoscaling.py directly.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow_acceptance.fixtures.core.capabilities import ResourceSample
from mlflow_acceptance.load import autoscaling, runner, shapes, slo
from mlflow_acceptance.load import calibration as calc
from mlflow_acceptance.suites import test_autoscaling as suite

DATA = Path(__file__).parent / "data" / "load"
GIB = 2**30


def readings(
    percent: float, seconds: int = 90, memory: int = GIB, generator_cores=0.05, processes=1
):
    """One reading per second; both replicas at ``percent`` of a 0.5 CPU limit; the
    generator's cores shared evenly by ``processes`` locust processes."""
    return [
        calc.Reading(
            at=float(t),
            wall=1_795_796_432.0 + t,
            replicas=[
                ResourceSample(name, float(t), 0.005 * percent * t, memory, 0.5, 2 * GIB)
                for name in ("server-1", "server-2")
            ],
            generator_cpu_seconds=generator_cores * t,
            generator_process_seconds={
                pid: generator_cores * t / processes for pid in range(100, 100 + processes)
            },
        )
        for t in range(seconds + 1)
    ]


def run(percent=90.0, stats="stats_pass.csv", **reading_changes) -> autoscaling.Calibration:
    rows = slo.read_stats(DATA / stats)
    result = runner.LoadResult(rows, slo.read_history(DATA / "stats_history.csv"), [], [], "ok")
    return autoscaling.Calibration(
        plan=runner.LoadPlan("https://x", Path("/tmp/x"), "acc-x-load", shapes.Step(60, 20, 90, 3)),
        outcome=runner.LoadOutcome(0, 92.0),
        result=result,
        readings=readings(percent, **reading_changes),
        peak_window=(65.0, 90.0),
    )


def deployment(autoscaler=None):
    return SimpleNamespace(
        label="test deployment",
        resources=object(),
        autoscaler=autoscaler,
        require=lambda capability, why: None,
    )


def measure(name, value):
    return value


def test_cpu_check_passes_above_target_and_fails_below():
    suite.test_load_holds_replicas_above_cpu_target(run(90), deployment(), measure)
    with pytest.raises(AssertionError, match="stayed >= 70% of the limit for only 0s"):
        suite.test_load_holds_replicas_above_cpu_target(run(40), deployment(), measure)


def test_cpu_check_refuses_a_failing_load(monkeypatch):
    monkeypatch.setattr(suite, "MAX_FAILURE_RATIO", 0.01)  # the sample run has 3.9 % failures
    with pytest.raises(AssertionError, match="of requests failed"):
        suite.test_load_holds_replicas_above_cpu_target(
            run(90, stats="stats_breach.csv"), deployment(), measure
        )


def test_cpu_check_fails_when_locust_did_not_finish():
    calibration = run(90)
    calibration.outcome = runner.LoadOutcome(None, 150.0, timed_out=True)
    with pytest.raises(AssertionError, match="did not finish within"):
        suite.test_load_holds_replicas_above_cpu_target(calibration, deployment(), measure)


def test_memory_check_fails_at_the_limit_and_on_restarts():
    suite.test_replica_memory_stays_below_limit(run(90), deployment(), measure)
    with pytest.raises(AssertionError, match="came within 10% of its limit under load: server-1"):
        suite.test_replica_memory_stays_below_limit(run(90, memory=2 * GIB), deployment(), measure)
    restarted = run(90)
    restarted.restarts_before, restarted.restarts_after = {"server-1": 0}, {"server-1": 1}
    with pytest.raises(AssertionError, match="server-1 restarted 1x"):
        suite.test_replica_memory_stays_below_limit(restarted, deployment(), measure)


def test_one_saturated_locust_process_fails_even_against_a_big_server():
    """Audit weakness 6: one locust process at 0.9 core against a 2.4-core server passed
    the share rule (0.9 < 0.5 x 2.4); the same load over two processes is sound."""
    big_server = 240  # % of each replica's 0.5 CPU limit: 1.2 cores each, 2.4 in all
    with pytest.raises(AssertionError, match=r"one locust process used 0\.90 cores"):
        suite.test_load_generator_is_not_the_bottleneck(
            run(big_server, generator_cores=0.9, processes=1), deployment(), measure
        )
    suite.test_load_generator_is_not_the_bottleneck(
        run(big_server, generator_cores=0.9, processes=2), deployment(), measure
    )


def test_locusts_own_cpu_warning_fails_the_generator_check(tmp_path):
    warned = run(90)
    warned.plan = warned.plan.__class__(
        "https://x", tmp_path, "acc-x-load", shapes.Step(60, 20, 90, 3)
    )
    warned.plan.log.write_text(
        "[2026-12-02 22:00:01] WARNING/root: CPU usage above 90%! This may constrain your "
        "throughput\n"
    )
    with pytest.raises(AssertionError, match=r"locust warned '.*CPU usage above 90%"):
        suite.test_load_generator_is_not_the_bottleneck(warned, deployment(), measure)


def test_generator_check_flags_a_busy_generator():
    suite.test_load_generator_is_not_the_bottleneck(run(90), deployment(), measure)
    with pytest.raises(AssertionError, match="the load generator was the bottleneck"):
        suite.test_load_generator_is_not_the_bottleneck(
            run(90, generator_cores=0.6), deployment(), measure
        )


def hpa(at: float, desired: int, current: int, ready: int) -> dict:
    return {
        "at": at,
        "desired_replicas": desired,
        "current_replicas": current,
        "spec_replicas": current,
        "ready_replicas": ready,
        "min_replicas": 1,
        "max_replicas": 3,
        "cpu_utilization": 95,
        "target_cpu_utilization": 70,
        "scale_down_window": 30,
        "conditions": {"AbleToScale": "True", "ScalingActive": "True", "ScalingLimited": "False"},
        "reasons": {"AbleToScale": "ReadyForNewScale", "ScalingActive": "ValidMetricFound"},
    }


def with_hpa(
    scale_at: float | None, ready_at: float | None = None, served: int = 12
) -> autoscaling.Calibration:
    """An HPA that wants 2 replicas from ``scale_at``, whose Deployment spec follows 15 s
    later (currentReplicas), and whose second pod is Ready from ``ready_at``."""
    ready_at = scale_at if ready_at is None else ready_at
    calibration = run(90)
    for reading in calibration.readings:
        wanted = 2 if scale_at is not None and reading.at >= scale_at else 1
        spec = 2 if scale_at is not None and reading.at >= scale_at + 15 else 1
        ready = 2 if ready_at is not None and reading.at >= ready_at else 1
        reading.autoscaler = hpa(reading.at, wanted, spec, ready)
    calibration.baseline_replicas = ["mlflow-a"]
    if ready_at is not None:
        calibration.new_replica_requests = {"mlflow-b": served}
    calibration.scale_in = [hpa(0.0, 2, 2, 2), hpa(20.0, 1, 1, 2), hpa(40.0, 1, 1, 1)]
    return calibration


def state():
    return SimpleNamespace(summary=SimpleNamespace(notes=[]))


def test_autoscaler_check_on_kubernetes():
    suite.test_autoscaler_scales_out(with_hpa(40), deployment(object()), measure, state())
    with pytest.raises(AssertionError, match="the load did not push the server hard enough"):
        suite.test_autoscaler_scales_out(with_hpa(None), deployment(object()), measure, state())


def test_autoscaler_check_wants_ready_pods_not_only_a_spec_count():
    """D2: the HPA wants 2 and the Deployment's spec (currentReplicas) is 2, but the new
    pod never becomes Ready: not a scale-out."""
    pending = with_hpa(20, ready_at=1000)
    assert max(r.autoscaler["current_replicas"] for r in pending.readings) == 2
    with pytest.raises(AssertionError, match="did not start"):
        suite.test_autoscaler_scales_out(pending, deployment(object()), measure, state())


def test_autoscaler_check_wants_the_new_pod_to_serve_traffic():
    idle_pod = with_hpa(40, served=0)
    with pytest.raises(AssertionError, match="served no front-door request"):
        suite.test_autoscaler_scales_out(idle_pod, deployment(object()), measure, state())


def test_autoscaler_not_back_at_min_before_the_load_fails_with_what_was_seen():
    unsettled = with_hpa(40)
    unsettled.settle_problem = "timed out after 120s waiting for the HPA at minReplicas"
    with pytest.raises(AssertionError, match="not back at minReplicas before the load"):
        suite.test_autoscaler_scales_out(unsettled, deployment(object()), measure, state())


def test_autoscaler_check_fails_past_its_budget(monkeypatch):
    monkeypatch.setattr(suite, "SCALE_OUT_BUDGET", 30.0)
    with pytest.raises(AssertionError, match="only after 40s"):
        suite.test_autoscaler_scales_out(with_hpa(40), deployment(object()), measure, state())


def test_scale_in_check():
    suite.test_autoscaler_scales_back_in(with_hpa(40), deployment(object()), measure, state())
    stuck = with_hpa(40)
    stuck.scale_in = [hpa(t, 2, 2, 2) for t in (0.0, 60.0, 130.0)]
    with pytest.raises(AssertionError, match="no scale-in after the load"):
        suite.test_autoscaler_scales_back_in(stuck, deployment(object()), measure, state())


def test_no_autoscaler_is_recorded_and_skipped():
    state = SimpleNamespace(summary=SimpleNamespace(notes=[]))
    recorded = {}
    with pytest.raises(pytest.skip.Exception, match="has no autoscaler"):
        suite.test_autoscaler_scales_out(
            run(90), deployment(None), lambda n, v: recorded.setdefault(n, v), state
        )
    assert recorded == {"autoscaling.autoscaler_present": False}
    assert "no autoscaler" in state.summary.notes[0]


def test_a_replica_at_95_percent_of_its_limit_fails_with_the_job_runner_advice():
    """Measured on the local stack with MLflow 3.17.2's job runner on: 1965 of 2048 MiB. The
    old check (peak >= limit) passed it."""
    crowded = run(90, memory=int(0.959 * 2 * GIB))
    with pytest.raises(AssertionError, match="peaked at 1964 MiB, 96% of its 2048 MiB") as failed:
        suite.test_replica_memory_stays_below_limit(crowded, deployment(), measure)
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in str(failed.value)


def test_a_worker_oom_killed_without_a_restart_fails():
    """uvicorn respawns an OOM-killed worker: no restart, only the cgroup's counter moves."""
    killed = run(90)
    killed.oom_before, killed.oom_after = {"server-1": 0}, {"server-1": 2}
    with pytest.raises(AssertionError, match="server-1: 2 OOM-killed in its memory cgroup"):
        suite.test_replica_memory_stays_below_limit(killed, deployment(), measure)


def test_oom_kills_are_read_from_either_cgroup_version():
    from mlflow_acceptance.fixtures.docker.resources import oom_kill_count

    v2 = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"
    v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n"
    assert oom_kill_count(v2) == 2
    assert oom_kill_count(v1) == 5
    assert oom_kill_count("cat: /sys/fs/cgroup/memory.events: No such file") is None


def test_a_generator_behind_its_own_schedule_fails_even_with_cpu_to_spare():
    """Low CPU readings can miss a generator that is starved by its neighbours (the server
    containers on the same cores): its users wake late, so the server saw less load."""
    behind = run(90)
    for _ in range(100):
        behind.result.pace.note_task(0.2)
        behind.result.pace.note_wait(1.0, 0.3)  # every wake-up 300 ms late: 80 % kept
    with pytest.raises(AssertionError, match=r"behind its own schedule: users achieved 80\.0%"):
        suite.test_load_generator_is_not_the_bottleneck(behind, deployment(), measure)

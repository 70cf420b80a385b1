"""Autoscaling calibration: the step load provably pushes the server above the HPA's target.

The chart's autoscaler adds replicas when their average CPU exceeds 70 % of the request.
One sampled step load (load/autoscaling.py) runs once per module; the checks read it:

- the replicas' average CPU, smoothed over 5 s, stays >= 70 % (of request, else limit)
  for 20 s;
- no replica's memory reaches its limit (and none restarts, e.g. OOM-killed);
- locust used less than half the CPU the server used at the peak stage, so the server,
  not the generator, set the pace;
- with an autoscaler (Kubernetes) it runs more than minReplicas (current, not only
  desired) within 180 s of the load starting; without one (the local stack) that is
  recorded and the check skips.

Reports: reports/<run-id>/autoscaling.png (replica CPU, RPS, cores, memory over time) and
reports/<run-id>/autoscaling/ (locust HTML, CSVs, log). On the local target the whole file
takes about 3 minutes (stack start-up 40 s, warm-up and settling 20-40 s, load 95 s).
"""

from __future__ import annotations

import pytest

from load import calibration as calc
from load import procstat
from load.autoscaling import (
    DURATION,
    GENERATOR_SHARE,
    MAX_FAILURE_RATIO,
    SCALE_OUT_BUDGET,
    SMOOTHING_SECONDS,
    SUSTAIN_SECONDS,
    TARGET_CPU_PERCENT,
    Calibration,
    calibrate,
    evaluate_scale_out,
)

pytestmark = [pytest.mark.load, pytest.mark.disruptive]


@pytest.fixture(scope="module")
def calibration(deployment, run_state) -> Calibration:
    """The step load, run once for the module's checks."""
    if not deployment.disruptive_allowed:  # module fixtures run before the per-test guard
        pytest.skip(f"{deployment.label} is shared: the load run needs --allow-disruptive")
    return calibrate(
        deployment,
        run_state.run_dir,
        run_state.options.calibration_users,
        run_state.summary.notes,
    )


def test_load_holds_replicas_above_cpu_target(calibration, deployment, measure):
    """The proof that a 70 % HPA would fire: sustained CPU above target under this load."""
    deployment.require("resources", "replica CPU is read from cgroups or the metrics API")
    run = calibration
    problem = run.outcome.problem(run.plan.log)
    assert problem is None, problem
    assert run.result is not None, f"locust wrote no stats (see {run.plan.log})"
    total = run.result.total
    measure("autoscaling.peak_rps", round(run.result.peak_rps, 1))
    measure("autoscaling.p95_ms", total.p95_ms)
    measure("autoscaling.p99_ms", total.p99_ms)
    measure("autoscaling.failure_ratio", round(total.failure_ratio, 4))
    measure("autoscaling.load_seconds", run.outcome.seconds)
    measure("autoscaling.settle_seconds", run.settle_seconds and round(run.settle_seconds, 1))
    measure("autoscaling.idle_cpu_percent", run.idle_cpu_percent and round(run.idle_cpu_percent))
    measure("autoscaling.readings", len(run.readings))
    measure("autoscaling.sampling_errors", len(run.sampling_errors))
    measure("autoscaling.slowest_reading_seconds", round(max(run.sample_seconds, default=0), 2))
    per_replica = calc.replica_percent_between(run.readings, *run.peak_window)
    for name, percent in sorted(per_replica.items()):
        measure(f"autoscaling.cpu_percent_of_limit.{name}", round(percent, 1))
    at_peak = sum(per_replica.values()) / len(per_replica) if per_replica else None
    measure("autoscaling.replica_cpu_percent_of_limit", at_peak and round(at_peak, 1))
    average = run.smoothed_average
    start, end = calc.longest_stretch_at_or_above(average, TARGET_CPU_PERCENT)
    measure("autoscaling.seconds_above_target", round(end - start, 1))
    peak = max((p.value for p in average), default=0.0)
    measure("autoscaling.peak_average_cpu_percent", round(peak, 1))
    assert total.failure_ratio <= MAX_FAILURE_RATIO, (
        f"{total.failure_ratio:.1%} of requests failed (> {MAX_FAILURE_RATIO:.0%}): "
        f"{run.result.verdict}; CPU under failing load proves nothing"
    )
    assert len(run.readings) >= DURATION / 4, (
        f"only {len(run.readings)} resource readings in {run.outcome.seconds:.0f}s "
        f"(errors: {run.sampling_errors[:3]})"
    )
    assert end - start >= SUSTAIN_SECONDS, (
        f"the replicas' average CPU ({SMOOTHING_SECONDS:g} s mean) stayed >= "
        f"{TARGET_CPU_PERCENT:g}% of the limit for only {end - start:.0f}s (need "
        f"{SUSTAIN_SECONDS:g}s); peak {peak:.0f}%, {at_peak or 0:.0f}% at the top stage; "
        f"load: {run.describe_load()}; plot {run.plot}"
    )


def test_replica_memory_stays_below_limit(calibration, deployment, measure):
    """The seed's 2 GiB limit must hold under load: peak per replica, and no OOM restarts."""
    deployment.require("resources", "replica memory is read from cgroups or the metrics API")
    peaks = calc.peak_memory(calibration.readings)
    assert peaks, f"no memory readings (errors: {calibration.sampling_errors[:3]})"
    crossed = []
    for name, (peak, limit) in sorted(peaks.items()):
        measure(f"autoscaling.peak_memory_mib.{name}", round(peak / 2**20))
        if limit:
            measure(f"autoscaling.memory_percent_of_limit.{name}", round(100 * peak / limit, 1))
            if peak >= limit:
                crossed.append(f"{name} {peak / 2**20:.0f} MiB >= limit {limit / 2**20:.0f} MiB")
    restarted = [
        f"{name} restarted {count - calibration.restarts_before.get(name, 0)}x"
        for name, count in calibration.restarts_after.items()
        if count > calibration.restarts_before.get(name, 0)
    ]
    assert not crossed, f"replica memory reached its limit under load: {'; '.join(crossed)}"
    assert not restarted, f"replicas restarted under load (OOM kill?): {', '.join(restarted)}"


def test_load_generator_is_not_the_bottleneck(calibration, deployment, measure):
    """If locust burns as much CPU as the server, the run measured the generator instead."""
    deployment.require("resources", "the server's CPU is needed for the comparison")
    if not procstat.available():
        pytest.skip("no /proc on this machine: cannot read locust's CPU")
    generator, server = calibration.generator_cores(), calibration.server_cores()
    measure("autoscaling.generator_cpu_cores", generator and round(generator, 3))
    measure("autoscaling.server_cpu_cores", server and round(server, 3))
    missing = f"at the top stage {calibration.peak_window} ({calibration.sampling_errors[:3]})"
    assert generator is not None, f"no locust CPU readings {missing}"
    assert server, f"no server CPU readings {missing}"
    measure("autoscaling.generator_to_server_cpu", round(generator / server, 3))
    assert generator < GENERATOR_SHARE * server, (
        f"the load generator was the bottleneck: locust used {generator:.2f} cores vs the "
        f"server's {server:.2f} at the top stage (must be < {GENERATOR_SHARE:.0%}); use "
        "--processes or separate workers"
    )


def test_autoscaler_scales_out(calibration, deployment, measure, run_state):
    """On Kubernetes the HPA must run more than minReplicas soon after the load starts."""
    if deployment.autoscaler is None:
        measure("autoscaling.autoscaler_present", False)
        note = (
            f"autoscaling: {deployment.label} has no autoscaler; the CPU calibration ran, "
            "scale-out was not checked"
        )
        if note not in run_state.summary.notes:
            run_state.summary.notes.append(note)
        pytest.skip(f"{deployment.label} has no autoscaler (calibration recorded)")
    measure("autoscaling.autoscaler_present", True)
    samples = [r.autoscaler for r in calibration.readings if r.autoscaler]
    assert samples, f"no autoscaler samples (errors: {calibration.sampling_errors[:3]})"
    baseline = samples[0]
    minimum = baseline["min_replicas"]
    measure("autoscaling.min_replicas", minimum)
    measure("autoscaling.max_desired_replicas", max(s["desired_replicas"] for s in samples))
    if (baseline["current_replicas"] or 0) > minimum or baseline["desired_replicas"] > minimum:
        pytest.skip(
            f"the HPA already ran {baseline['current_replicas']} > minReplicas={minimum} "
            "replicas when the load began (earlier load; scale-down waits 300 s): a scale-out "
            "cannot be shown"
        )
    # Scaled out means more pods *running*, not only wanted: a Pending pod does not count.
    verdict = evaluate_scale_out(samples, SCALE_OUT_BUDGET)
    measure("autoscaling.peak_replicas", verdict.peak_replicas)
    if verdict.seconds_to_scale is not None:
        measure("autoscaling.seconds_to_more_replicas", verdict.seconds_to_scale)
    assert verdict.scaled_out, (
        f"no scale-out within {SCALE_OUT_BUDGET:g}s of load: {verdict.reason}"
    )

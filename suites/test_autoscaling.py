"""Autoscaling calibration: the step load provably pushes the server above the HPA's target.

The chart's autoscaler adds replicas when their average CPU exceeds 70 % of the request.
One sampled step load (load/autoscaling.py) runs once per module; the checks read it:

- the replicas' average CPU, smoothed over 5 s, stays >= 70 % (of request, else limit)
  for 20 s;
- no replica's memory comes within 10 % of its limit, none has a process OOM-killed
  (cgroup counters: uvicorn respawns a killed worker) and none restarts;
- locust used less than half the CPU the server used at the peak stage, no locust process
  used 0.8 core or more, locust logged no CPU warning, and its users achieved at least
  90 % of the rate they offered (load/pace.py), so the server, not the generator, set the
  pace;
- with an autoscaler (Kubernetes), starting from minReplicas, more pods are Ready (not
  only wanted) within 180 s of the load starting and the added pods serve front-door
  requests; after the load the pods return to minReplicas within the HPA's scale-down
  window; without one (the local stack) that is recorded and the checks skip.

Reports: reports/<run-id>/autoscaling.png (replica CPU, RPS, cores, memory over time) and
reports/<run-id>/autoscaling/ (locust HTML, CSVs, log). On the local target the whole file
takes about 3 minutes (stack start-up 40 s, warm-up and settling 20-40 s, load 95 s).
"""

from __future__ import annotations

import pytest
from mlflow_acceptance.load import calibration as calc
from mlflow_acceptance.load import procstat
from mlflow_acceptance.load.autoscaling import (
    DURATION,
    GENERATOR_PROCESS_CORES,
    GENERATOR_SHARE,
    MAX_FAILURE_RATIO,
    SCALE_OUT_BUDGET,
    SMOOTHING_SECONDS,
    SUSTAIN_SECONDS,
    TARGET_CPU_PERCENT,
    Calibration,
    at_minimum,
    calibrate,
    evaluate_scale_in,
    evaluate_scale_out,
    scale_in_budget,
)

pytestmark = [pytest.mark.load, pytest.mark.disruptive, pytest.mark.exclusive]


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


# Peak memory in use (page cache the kernel can drop aside) above this share of the limit
# fails: one more worker, a bigger request or a longer run ends in an OOM kill.
MEMORY_HEADROOM = 0.90
MEMORY_ADVICE = (
    "raise the memory limit, or shrink what each replica runs: MLflow 3's job runner (a "
    "runner and huey consumers, about 1.5 GiB measured at 3.17.2) can be turned off with "
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false where no server-side jobs are used"
)


def test_replica_memory_stays_below_limit(calibration, deployment, measure):
    """The memory limit must hold under load with headroom: peak per replica below 90 % of
    it, no process OOM-killed (uvicorn respawns a killed worker: no restart shows it) and
    no restart."""
    deployment.require("resources", "replica memory is read from cgroups or the metrics API")
    peaks = calc.peak_memory(calibration.readings)
    assert peaks, f"no memory readings (errors: {calibration.sampling_errors[:3]})"
    crowded = []
    for name, (peak, limit) in sorted(peaks.items()):
        measure(f"autoscaling.peak_memory_mib.{name}", round(peak / 2**20))
        if limit:
            measure(f"autoscaling.memory_percent_of_limit.{name}", round(100 * peak / limit, 1))
            if peak >= MEMORY_HEADROOM * limit:
                crowded.append(
                    f"{name} peaked at {peak / 2**20:.0f} MiB, {peak / limit:.0%} of its "
                    f"{limit / 2**20:.0f} MiB limit"
                )
    killed = oom_killed(calibration)
    restarted = [
        f"{name} restarted {count - calibration.restarts_before.get(name, 0)}x"
        for name, count in calibration.restarts_after.items()
        if count > calibration.restarts_before.get(name, 0)
    ]
    assert not killed, f"processes were OOM-killed under load: {'; '.join(killed)}; {MEMORY_ADVICE}"
    assert not restarted, f"replicas restarted under load (OOM kill?): {', '.join(restarted)}"
    assert not crowded, (
        f"replica memory came within {1 - MEMORY_HEADROOM:.0%} of its limit under load: "
        f"{'; '.join(crowded)}; {MEMORY_ADVICE}"
    )


def oom_killed(calibration) -> list[str]:
    """Replicas whose memory cgroup counted OOM kills during the load."""
    before, after = calibration.oom_before, calibration.oom_after
    if before is None or after is None:
        return []  # not readable here; a restart with OOMKilled still shows below
    return [
        f"{name}: {count - before.get(name, 0)} OOM-killed in its memory cgroup"
        for name, count in sorted(after.items())
        if count > before.get(name, 0)
    ]


# What locust logs when one of its processes ran above 90 % CPU (locust/runners.py).
LOCUST_CPU_WARNINGS = ("CPU usage above", "CPU usage was too high", "CPU usage threshold")


def test_load_generator_is_not_the_bottleneck(calibration, deployment, measure):
    """If locust burns as much CPU as the server, the run measured the generator instead;
    and one locust process near a core delays its own users whatever the server does, so
    each process is judged on its own, and locust's own CPU warning fails it too."""
    deployment.require("resources", "the server's CPU is needed for the comparison")
    if not procstat.available():
        pytest.skip("no /proc on this machine: cannot read locust's CPU")
    generator, server = calibration.generator_cores(), calibration.server_cores()
    busiest = calibration.busiest_generator_process_cores()
    measure("autoscaling.generator_cpu_cores", generator and round(generator, 3))
    measure("autoscaling.generator_busiest_process_cores", busiest and round(busiest, 3))
    measure("autoscaling.server_cpu_cores", server and round(server, 3))
    missing = f"at the top stage {calibration.peak_window} ({calibration.sampling_errors[:3]})"
    assert generator is not None, f"no locust CPU readings {missing}"
    assert busiest is not None, f"no per-process locust CPU readings {missing}"
    assert server, f"no server CPU readings {missing}"
    measure("autoscaling.generator_to_server_cpu", round(generator / server, 3))
    assert busiest < GENERATOR_PROCESS_CORES, (
        f"the load generator was the bottleneck: one locust process used {busiest:.2f} cores "
        f"at the top stage (at most {GENERATOR_PROCESS_CORES}: a process is one gevent loop, "
        "saturated near one core); use --processes or separate workers"
    )
    warned = locust_cpu_warnings(calibration.plan.log)
    assert not warned, (
        f"the load generator was the bottleneck: locust warned {warned[0]!r}; use "
        "--processes or separate workers"
    )
    if calibration.result is not None:
        pace = calibration.result.pace
        measure("autoscaling.generator_achieved_of_offered", pace.summary()["achieved_of_offered"])
        measure("autoscaling.generator_late_p95_ms", pace.late_ms(0.95))
        shortfall = pace.shortfall()
        assert shortfall is None, shortfall
    assert generator < GENERATOR_SHARE * server, (
        f"the load generator was the bottleneck: locust used {generator:.2f} cores vs the "
        f"server's {server:.2f} at the top stage (must be < {GENERATOR_SHARE:.0%}); use "
        "--processes or separate workers"
    )


def locust_cpu_warnings(log) -> list[str]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []  # no log: the run's own checks above say why
    return [
        line.strip()[:160]
        for line in text.splitlines()
        if any(w in line for w in LOCUST_CPU_WARNINGS)
    ]


def autoscaler_of(deployment, measure, run_state):
    if deployment.autoscaler is None:
        measure("autoscaling.autoscaler_present", False)
        note = (
            f"autoscaling: {deployment.label} has no autoscaler; the CPU calibration ran, "
            "scale-out and scale-in were not checked"
        )
        if note not in run_state.summary.notes:
            run_state.summary.notes.append(note)
        pytest.skip(f"{deployment.label} has no autoscaler (calibration recorded)")
    measure("autoscaling.autoscaler_present", True)
    return deployment.autoscaler


def test_autoscaler_scales_out(calibration, deployment, measure, run_state):
    """On Kubernetes more than minReplicas pods must be Ready soon after the load starts,
    and the pods added must serve front-door traffic."""
    autoscaler_of(deployment, measure, run_state)
    assert calibration.settle_problem is None, (
        f"the HPA was not back at minReplicas before the load, so no scale-out could be "
        f"shown: {calibration.settle_problem}"
    )
    samples = [r.autoscaler for r in calibration.readings if r.autoscaler]
    assert samples, f"no autoscaler samples (errors: {calibration.sampling_errors[:3]})"
    minimum = samples[0]["min_replicas"]
    measure("autoscaling.min_replicas", minimum)
    measure("autoscaling.max_desired_replicas", max(s["desired_replicas"] for s in samples))
    verdict = evaluate_scale_out(samples, SCALE_OUT_BUDGET)
    measure("autoscaling.peak_ready_replicas", verdict.peak_replicas)
    if verdict.seconds_to_scale is not None:
        measure("autoscaling.seconds_to_more_ready_replicas", verdict.seconds_to_scale)
    assert verdict.scaled_out, (
        f"no scale-out within {SCALE_OUT_BUDGET:g}s of load: {verdict.reason}"
    )
    served = calibration.new_replica_requests
    measure("autoscaling.requests_on_new_replicas", served)
    assert served, (
        f"more pods were Ready under load, but none outside those Ready before it "
        f"({calibration.baseline_replicas}) was still Ready when the load ended"
    )
    assert any(count > 0 for count in served.values()), (
        f"the pods added under load served no front-door request: {served} (not in the "
        "Service's endpoints, or the front door never balances to them?)"
    )


def test_autoscaler_scales_back_in(calibration, deployment, measure, run_state):
    """Once the load stops, the pods go back to minReplicas within the scale-down window."""
    autoscaler_of(deployment, measure, run_state)
    samples = calibration.scale_in
    assert samples, "no autoscaler samples after the load"
    budget = scale_in_budget(samples[0])
    measure("autoscaling.scale_in_budget_seconds", budget)
    back = next((p for p in samples if at_minimum(p)), None)
    if back is not None:
        measure("autoscaling.seconds_to_scale_in", round(back["at"] - samples[0]["at"], 1))
    problem = evaluate_scale_in(samples, budget)
    assert problem is None, f"no scale-in after the load: {problem}"

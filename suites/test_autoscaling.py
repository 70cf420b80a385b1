"""Autoscaling calibration: the step load provably pushes the server above the HPA's target.

The chart's autoscaler adds replicas when their average CPU exceeds 70 % of the request.
One locust run (the step shape, as a subprocess via load/runner.py) is sampled about once
a second (slower when the Docker daemon itself is starved of CPU): each replica's CPU from
its cgroup or the metrics API (CPU time over wall time, divided by its CPU request as the
HPA does, or by its limit where it has no request, as on the local stack) and memory,
the generator's own CPU from /proc, and the autoscaler where there is one.
The checks then read that one run:

- the replicas' average CPU, smoothed over 5 s, stays >= 70 % (of request, else limit)
  for 20 s;
- no replica's memory reaches its limit (and none restarts, e.g. OOM-killed);
- locust used less than half the CPU the server used at the peak stage, so the server,
  not the generator, set the pace;
- with an autoscaler (Kubernetes) it runs more than minReplicas (current, not only
  desired) within 180 s of the load starting; without one (the local stack) that is
  recorded and the check skips.

Before the load, a short warm-up and a wait until the replicas idle: a just-started
server burns its CPU limit for tens of seconds, which must not pass for the load's effect.

Reports: reports/<run-id>/autoscaling.png (replica CPU, RPS, cores, memory over time) and
reports/<run-id>/autoscaling/ (locust HTML, CSVs, log). On the local target the whole file
takes about 3 minutes (stack start-up 40 s, warm-up and settling 20-40 s, load 95 s).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from fixtures import progress
from fixtures.plots import Event, Series, Threshold, timeline
from load import calibration as calc
from load import cleanup, procstat, runner, shapes, slo, warmup

pytestmark = [pytest.mark.load, pytest.mark.disruptive]

TARGET_CPU_PERCENT = 70.0  # the chart's targetCPUUtilizationPercentage
SUSTAIN_SECONDS = 20.0  # the smoothed average must hold the target this long
SMOOTHING_SECONDS = 5.0  # rolling mean over 1 s samples; metrics-server averages similarly
GENERATOR_SHARE = 0.5  # "well below": locust may use at most half the server's CPU
SCALE_OUT_BUDGET = 180.0  # seconds from load start until the HPA runs more replicas
MAX_FAILURE_RATIO = 0.05  # load that mostly fails proves nothing about CPU
# The step shape: 3 stages of 30 s up to --calibration-users (default 60; 1 shows the check
# fail on too light a load); short think time so few users saturate 2 x 0.5 CPU. On
# Kubernetes the load lasts long enough for the HPA's control loop.
SPAWN_RATE, STEPS = 20.0, 3
DURATION, K8S_DURATION = 90, 240
WORKLOAD = runner.Workload(
    writer_weight=3, reader_weight=3, artifact_weight=1, wait_min=0.1, wait_max=0.5
)
PEAK_SETTLE_SECONDS = 5.0  # skip the ramp into the top stage when measuring "at the peak"
# A replica that has just passed its health check still burns its CPU limit for tens of
# seconds (MLflow's job runner starting). Load starts only once they idle, or that start-up
# would be mistaken for the load's effect.
IDLE_CPU_PERCENT, SETTLE_TIMEOUT = 25.0, 150.0


@dataclass
class Calibration:
    """One sampled load run and what was derived from it."""

    plan: runner.LoadPlan
    outcome: runner.LoadOutcome
    result: runner.LoadResult | None
    readings: list[calc.Reading]
    peak_window: tuple[float, float]  # offsets (s) of the top stage, after it settled
    restarts_before: dict[str, int] = field(default_factory=dict)
    restarts_after: dict[str, int] = field(default_factory=dict)
    sampling_errors: list[str] = field(default_factory=list)
    sample_seconds: list[float] = field(default_factory=list)
    idle_cpu_percent: float | None = None
    settle_seconds: float | None = None
    plot: Any = None

    @property
    def cpu(self) -> dict[str, list[calc.Point]]:
        return calc.replica_cpu_percent(self.readings)

    @property
    def smoothed_average(self) -> list[calc.Point]:
        return calc.rolling_mean(calc.average_across(self.cpu), SMOOTHING_SECONDS)

    def generator_cores(self) -> float | None:
        return calc.rate_between(
            self.readings, *self.peak_window, lambda r: r.generator_cpu_seconds
        )

    def server_cores(self) -> float | None:
        return calc.rate_between(self.readings, *self.peak_window, calc.server_cores)

    def describe_load(self) -> str:
        if self.result is None:
            return "locust produced no stats"
        return (
            f"{self.plan.shape.describe()}: {self.result.total.requests} requests, "
            f"peak {self.result.peak_rps:.1f} RPS, failures {self.result.total.failure_ratio:.1%}"
        )


class Sampler:
    """Reads replicas, generator and autoscaler once per call (the runner calls it each second)."""

    def __init__(self, deployment) -> None:
        self.resources = deployment.resources
        self.autoscaler = deployment.autoscaler
        self.readings: list[calc.Reading] = []
        self.errors: list[str] = []
        self.seconds: list[float] = []  # how long each reading took

    def __call__(self, process: runner.LocustProcess) -> None:
        reading = calc.Reading(at=time.monotonic(), wall=time.time())
        began = reading.at
        try:
            if self.resources is not None:
                reading.replicas = self.resources.sample()
                reading.at = max((s.at for s in reading.replicas), default=reading.at)
            if procstat.available():
                reading.generator_cpu_seconds = procstat.session_cpu_seconds(process.pid)
            if self.autoscaler is not None:
                reading.autoscaler = self.autoscaler.sample()
        except Exception as exc:  # one missed second must not end the run
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        finally:
            self.seconds.append(time.monotonic() - began)
        self.readings.append(reading)


def restart_counts(deployment) -> dict[str, int]:
    if deployment.replicas is None:
        return {}
    return {replica.name: replica.restarts for replica in deployment.replicas.list()}


def peak_window(result: runner.LoadResult | None, readings: list[calc.Reading], users: int):
    """Offsets (s, relative to the first reading) while the top stage ran, once settled."""
    if not readings:
        return (0.0, 0.0)
    offset = readings[0].wall
    at_peak = [p.timestamp - offset for p in (result.history if result else []) if p.users >= users]
    if at_peak:
        return (at_peak[0] + PEAK_SETTLE_SECONDS, at_peak[-1])
    span = readings[-1].at - readings[0].at  # never reached the peak: use the last third
    return (span * 2 / 3, span)


@pytest.fixture(scope="module")
def calibration(deployment, run_state) -> Calibration:
    """Run the step load once, sampling every second; always delete what it created."""
    if not deployment.disruptive_allowed:  # module fixtures run before the per-test guard
        pytest.skip(f"{deployment.label} is shared: the load run needs --allow-disruptive")
    say = progress.scoped("autoscaling")
    duration = K8S_DURATION if deployment.autoscaler is not None else DURATION
    users = run_state.options.calibration_users
    plan = runner.LoadPlan(
        host=deployment.tracking_uri,
        out_dir=run_state.run_dir / "autoscaling",
        prefix=deployment.unique_name("load"),
        shape=shapes.Step(users, SPAWN_RATE, duration, min(STEPS, users)),
        ca_bundle=deployment.ca_bundle,
        workload=WORKLOAD,
    )
    restarts_before = restart_counts(deployment)
    sampler = Sampler(deployment)
    settle_seconds = idle = None
    try:
        seconds, failed = warmup.warm_up(deployment.http, f"{plan.prefix}-warm-up", rounds=6)
        say(f"warm-up: {seconds:.1f}s, {failed} failed requests")
        if deployment.resources is not None:
            settle_seconds, idle = warmup.wait_for_idle(
                deployment.resources, say, below=IDLE_CPU_PERCENT, timeout=SETTLE_TIMEOUT
            )
            say(f"replicas idle at {idle:.0f}% of their CPU limit after {settle_seconds:.0f}s")
        say(f"calibration load: {plan.shape.describe()} against {deployment.label}")
        outcome = runner.run(plan, sampler)
    finally:
        _, problems = cleanup.delete_experiments(deployment.http, plan.prefix)
        for problem in problems:
            run_state.summary.notes.append(f"autoscaling cleanup: {problem}")
    try:
        result = runner.collect(plan, slo.SloPolicy(max_failure_ratio=MAX_FAILURE_RATIO))
    except (FileNotFoundError, ValueError) as exc:
        say(f"no locust stats: {exc}")
        result = None
    run = Calibration(
        plan=plan,
        outcome=outcome,
        result=result,
        readings=sampler.readings,
        peak_window=peak_window(result, sampler.readings, users),
        restarts_before=restarts_before,
        restarts_after=restart_counts(deployment),
        sampling_errors=sampler.errors,
        sample_seconds=sampler.seconds,
        idle_cpu_percent=idle,
        settle_seconds=settle_seconds,
    )
    run.plot = write_plot(run, run_state.run_dir / "autoscaling.png")
    say(f"{run.describe_load()}; {len(run.readings)} readings; plot {run.plot}")
    return run


def write_plot(run: Calibration, path):
    if not run.readings:
        return None
    series = [
        Series(name, [p.t for p in points], [p.value for p in points], "CPU % of limit")
        for name, points in sorted(run.cpu.items())
    ]
    average = run.smoothed_average
    if average:
        series.append(
            Series(
                f"average ({SMOOTHING_SECONDS:g} s mean)",
                [p.t for p in average],
                [p.value for p in average],
                "CPU % of limit",
            )
        )
    start_wall = run.readings[0].wall
    if run.result and run.result.history:
        history = run.result.history
        times = [p.timestamp - start_wall for p in history]
        series.append(Series("RPS (10 s mean)", times, [p.rps for p in history], "requests/s"))
        series.append(
            Series("failures/s", times, [p.failures_per_s for p in history], "requests/s")
        )
    start = run.readings[0].at
    times = [r.at - start for r in run.readings]
    for label, pick in (
        ("server", calc.server_cores),
        ("locust", lambda r: r.generator_cpu_seconds),
    ):
        values = [pick(r) for r in run.readings]
        if all(v is not None for v in values) and len(values) > 1:
            rates = [
                (b - a) / (t2 - t1) if t2 > t1 else math.nan
                for a, b, t1, t2 in zip(values, values[1:], times, times[1:], strict=False)
            ]
            series.append(Series(f"{label} CPU", times[1:], rates, "cores"))
    for name, _ in sorted(calc.peak_memory(run.readings).items()):
        memory = [
            next((s.memory_bytes / 2**20 for s in r.replicas if s.replica == name), None)
            for r in run.readings
        ]
        series.append(Series(name, times, memory, "memory MiB"))
    limits = {limit for _, limit in calc.peak_memory(run.readings).values() if limit}
    thresholds = [Threshold("CPU % of limit", TARGET_CPU_PERCENT, "HPA target 70 %")]
    thresholds += [Threshold("memory MiB", limit / 2**20, "limit") for limit in limits]
    events = [Event(run.peak_window[0], "top stage"), Event(run.peak_window[1], "end")]
    sustained = calc.longest_stretch_at_or_above(average, TARGET_CPU_PERCENT)
    if sustained[1] > sustained[0]:
        events.append(Event(sustained[0], "above target"))
        if run.peak_window[1] - sustained[1] > 3:
            events.append(Event(sustained[1], "below target"))
    return timeline(
        path,
        f"Autoscaling calibration: {run.plan.shape.describe()}",
        series,
        thresholds=thresholds,
        events=events,
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
    from fixtures.k8s.autoscaler import evaluate_scale_out

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

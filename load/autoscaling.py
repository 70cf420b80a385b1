"""The autoscaling calibration: one sampled step load, what is derived from it, its plot,
and the scale-out verdict. suites/test_autoscaling.py holds the checks that judge it.

One locust run (the step shape, as a subprocess via load/runner.py) is sampled about once
a second (slower when the Docker daemon itself is starved of CPU): each replica's CPU from
its cgroup or the metrics API (CPU time over wall time, divided by its CPU request as the
HPA does, or by its limit where it has no request, as on the local stack) and memory,
the generator's own CPU from /proc, and the autoscaler where there is one.

Before the load, a short warm-up and a wait until the replicas idle: a just-started
server burns its CPU limit for tens of seconds, which must not pass for the load's effect.
``evaluate_scale_out`` judges an HPA timeline the way Kubernetes' own e2e test does (poll,
deadline); the budget has to cover metrics-server's resolution (15 s), the HPA sync
period (15 s), pod scheduling, image pull and the readiness probe.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_acceptance.fixtures.core import progress
from mlflow_acceptance.fixtures.core.janitor import Janitor
from mlflow_acceptance.fixtures.core.plots import Event, Series, Threshold, timeline
from mlflow_acceptance.fixtures.core.waiting import Observation, WaitTimeout, wait_until
from mlflow_acceptance.load import calibration as calc
from mlflow_acceptance.load import procstat, runner, shapes, slo, warmup

TARGET_CPU_PERCENT = 70.0  # the chart's targetCPUUtilizationPercentage
SUSTAIN_SECONDS = 20.0  # the smoothed average must hold the target this long
SMOOTHING_SECONDS = 5.0  # rolling mean over 1 s samples; metrics-server averages similarly
GENERATOR_SHARE = 0.5  # "well below": locust may use at most half the server's CPU
# A locust process is one gevent loop: near one core it delays its own users' requests and
# reports the server slower than it is (locust warns at 90 %). Judged per process.
GENERATOR_PROCESS_CORES = 0.8
SCALE_OUT_BUDGET = 180.0  # seconds from load start until more pods are Ready
# Beyond the HPA's scale-down window: two syncs (15 s each), the metrics resolution (15 s)
# and a pod's termination grace period (30 s).
SCALE_IN_MARGIN = 90.0
AUTOSCALER_POLL_SECONDS = 5.0
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
    # processes OOM-killed per replica before and after the load (None: not readable)
    oom_before: dict[str, int] | None = None
    oom_after: dict[str, int] | None = None
    sampling_errors: list[str] = field(default_factory=list)
    sample_seconds: list[float] = field(default_factory=list)
    idle_cpu_percent: float | None = None
    settle_seconds: float | None = None
    plot: Any = None
    # With an autoscaler: whether it was back at minReplicas before the load (None: it was),
    # the Ready pods then, the requests each pod that became Ready under load served, and
    # the autoscaler's samples after the load (the scale-in).
    settle_problem: str | None = None
    baseline_replicas: list[str] = field(default_factory=list)
    new_replica_requests: dict[str, int] = field(default_factory=dict)
    scale_in: list[dict[str, Any]] = field(default_factory=list)

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

    def busiest_generator_process_cores(self) -> float | None:
        return calc.busiest_process_cores(self.readings, *self.peak_window)

    def server_cores(self) -> float | None:
        return calc.server_cores_between(self.readings, *self.peak_window)

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
                by_process = procstat.session_cpu_by_process(process.pid)
                reading.generator_process_seconds = by_process
                reading.generator_cpu_seconds = sum(by_process.values())
            if self.autoscaler is not None:
                reading.autoscaler = self.autoscaler.sample()
        except Exception as exc:  # one missed second must not end the run
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        finally:
            self.seconds.append(time.monotonic() - began)
        self.readings.append(reading)


def restart_counts(deployment) -> dict[str, int]:
    if deployment.replica_controller is None:
        return {}
    return {replica.name: replica.restarts for replica in deployment.replica_controller.list()}


def oom_kills(deployment) -> dict[str, int] | None:
    return deployment.resources.oom_kills() if deployment.resources is not None else None


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


def ready_names(deployment) -> list[str]:
    controller = deployment.replica_controller
    return [] if controller is None else [r.name for r in controller.list() if r.ready]


def settle_at_minimum(autoscaler, say) -> str | None:
    """Wait until the autoscaler is back at minReplicas with that many pods Ready (a scale-out
    can only be shown from there); None, or what was seen when it never came back."""
    first = autoscaler.sample()
    budget = scale_in_budget(first)

    def probe() -> Observation:
        point = autoscaler.sample()
        seen = (
            f"desired {point['desired_replicas']}, Ready {point['ready_replicas']}, "
            f"minReplicas {point['min_replicas']}"
        )
        return Observation(at_minimum(point), seen)

    try:
        seen = wait_until(
            probe, timeout=budget, interval=AUTOSCALER_POLL_SECONDS, what="the HPA at minReplicas"
        )
    except WaitTimeout as exc:
        return str(exc)
    say(f"autoscaler at minReplicas before the load: {seen.seen}")
    return None


def watch_scale_in(autoscaler) -> list[dict[str, Any]]:
    """The autoscaler's samples from the end of the load until it is back at minReplicas
    (or its scale-in budget is spent)."""
    samples = [autoscaler.sample()]

    def probe() -> Observation:
        samples.append(autoscaler.sample())
        return Observation(at_minimum(samples[-1]), f"{samples[-1]}")

    # A scale-in that never comes is not an error here: evaluate_scale_in judges the samples.
    with contextlib.suppress(WaitTimeout):
        wait_until(
            probe,
            timeout=scale_in_budget(samples[0]),
            interval=AUTOSCALER_POLL_SECONDS,
            what="the HPA back at minReplicas",
        )
    return samples


def calibrate(deployment, run_dir: Path, users: int, notes: list[str]) -> Calibration:
    """Run the step load once, sampling every second; always delete what it created."""
    say = progress.scoped("autoscaling")
    autoscaler = deployment.autoscaler
    duration = K8S_DURATION if autoscaler is not None else DURATION
    plan = runner.LoadPlan(
        host=deployment.tracking_uri,
        out_dir=run_dir / "autoscaling",
        prefix=deployment.unique_name("load"),
        shape=shapes.Step(users, SPAWN_RATE, duration, min(STEPS, users)),
        ca_bundle=deployment.ca_bundle,
        workload=WORKLOAD,
    )
    settle_problem = settle_at_minimum(autoscaler, say) if autoscaler is not None else None
    restarts_before = restart_counts(deployment)
    oom_before = oom_kills(deployment)
    baseline = ready_names(deployment)
    sampler = Sampler(deployment)
    settle_seconds = idle = None
    new_requests: dict[str, int] = {}
    scale_in: list[dict[str, Any]] = []
    try:
        seconds, failed = warmup.warm_up(deployment.http, f"{plan.prefix}-warm-up", rounds=6)
        say(f"warm-up: {seconds:.1f}s, {failed} failed requests")
        if deployment.resources is not None:
            settle_seconds, idle = warmup.wait_for_idle(
                deployment.resources, say, below=IDLE_CPU_PERCENT, timeout=SETTLE_TIMEOUT
            )
            say(f"replicas idle at {idle:.0f}% of their CPU limit after {settle_seconds:.0f}s")
        say(f"calibration load: {plan.shape.describe()} against {deployment.label}")
        load_started = time.time()
        outcome = runner.run(plan, sampler)
        if autoscaler is not None:
            # Before the scale-in removes them: did the pods added under load serve?
            for name in set(ready_names(deployment)) - set(baseline):
                new_requests[name] = deployment.replica_controller.served(name, load_started)
            say(f"requests served by pods Ready only under load: {new_requests}")
            scale_in = watch_scale_in(autoscaler)
    finally:
        janitor = Janitor(deployment.http, plan.prefix)
        janitor.sweep(registered_models=False)
        notes.extend(f"autoscaling cleanup: {problem}" for problem in janitor.problems)
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
        oom_before=oom_before,
        oom_after=oom_kills(deployment),
        sampling_errors=sampler.errors,
        sample_seconds=sampler.seconds,
        idle_cpu_percent=idle,
        settle_seconds=settle_seconds,
        settle_problem=settle_problem,
        baseline_replicas=baseline,
        new_replica_requests=new_requests,
        scale_in=scale_in,
    )
    run.plot = write_plot(run, run_dir / "autoscaling.png")
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
    server = calc.server_cpu_rates(run.readings)
    if server:
        series.append(
            Series("server CPU", [p.t for p in server], [p.value for p in server], "cores")
        )
    start = run.readings[0].at
    times = [r.at - start for r in run.readings]
    values = [r.generator_cpu_seconds for r in run.readings]
    if all(v is not None for v in values) and len(values) > 1:
        rates = [
            (b - a) / (t2 - t1) if t2 > t1 else math.nan
            for a, b, t1, t2 in zip(values, values[1:], times, times[1:], strict=False)
        ]
        series.append(Series("locust CPU", times[1:], rates, "cores"))
    for name, _ in sorted(calc.peak_memory(run.readings).items()):
        memory = [
            next((s.memory_bytes / 2**20 for s in r.replicas if s.replica == name), None)
            for r in run.readings
        ]
        series.append(Series(name, times, memory, "memory MiB"))
    scaled = [r for r in run.readings if r.autoscaler]
    if scaled:
        hpa_times = [r.at - start for r in scaled]
        for key, label in (("desired_replicas", "HPA desired"), ("ready_replicas", "Ready pods")):
            values = [r.autoscaler[key] for r in scaled]
            series.append(Series(label, hpa_times, values, "replicas", steps=True))
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


@dataclass(frozen=True)
class ScaleOutVerdict:
    scaled_out: bool
    seconds_to_scale: float | None  # from the first sample to the first with more Ready
    peak_replicas: int  # the most Ready pods seen
    peak_cpu_utilization: int | None
    reason: str


def evaluate_scale_out(timeline: list[dict[str, Any]], budget_seconds: float) -> ScaleOutVerdict:
    """Did more than minReplicas pods become Ready within the budget, and if not, why not?

    Ready pods, not the HPA's currentReplicas: that is the Deployment's spec count, which
    follows desiredReplicas one sync later whether or not a new pod ever starts.
    """
    if not timeline:
        return ScaleOutVerdict(False, None, 0, None, "no HPA samples were taken")
    start = timeline[0]["at"]
    minimum = timeline[0]["min_replicas"]
    peak = max(point["ready_replicas"] for point in timeline)
    cpus = [p["cpu_utilization"] for p in timeline if p["cpu_utilization"] is not None]
    peak_cpu = max(cpus) if cpus else None
    for point in timeline:
        elapsed = point["at"] - start
        if point["ready_replicas"] > minimum and elapsed <= budget_seconds:
            return ScaleOutVerdict(
                True,
                round(elapsed, 1),
                peak,
                peak_cpu,
                f"{point['ready_replicas']} Ready replicas after {elapsed:.0f}s "
                f"(CPU {point['cpu_utilization']}% of request, "
                f"target {point['target_cpu_utilization']}%)",
            )
    late = next((p for p in timeline if p["ready_replicas"] > minimum), None)
    if late is not None:
        reason = (
            f"reached {late['ready_replicas']} Ready replicas only after "
            f"{late['at'] - start:.0f}s, beyond the {budget_seconds:.0f}s budget"
        )
    else:
        reason = _why_not(timeline, budget_seconds)
    return ScaleOutVerdict(False, None, peak, peak_cpu, reason)


def _why_not(timeline: list[dict[str, Any]], budget_seconds: float) -> str:
    last = timeline[-1]
    inactive = [p for p in timeline if p["conditions"].get("ScalingActive") != "True"]
    if len(inactive) == len(timeline):
        reason = last["reasons"].get("ScalingActive", "no reason given")
        return f"the HPA never had a usable CPU metric (ScalingActive: {reason})"
    if last["conditions"].get("AbleToScale") != "True":
        return f"the HPA was not able to scale ({last['reasons'].get('AbleToScale', '')})"
    wanted = max(p["desired_replicas"] for p in timeline)
    if wanted > last["min_replicas"]:
        return (
            f"the HPA asked for {wanted} replicas (the Deployment's spec is at "
            f"{last['spec_replicas']}) but only {last['ready_replicas']} were Ready within "
            f"{budget_seconds:.0f}s: the new pods did not start (Pending, image pull, crash?)"
        )
    cpus = [p["cpu_utilization"] for p in timeline if p["cpu_utilization"] is not None]
    peak = max(cpus) if cpus else None
    return (
        f"CPU peaked at {peak}% of request against a {last['target_cpu_utilization']}% target "
        f"within {budget_seconds:.0f}s: the load did not push the server hard enough"
    )


def at_minimum(point: dict[str, Any]) -> bool:
    """The autoscaler wants its minimum, and exactly that many pods are Ready."""
    minimum = point["min_replicas"]
    return point["desired_replicas"] == minimum and point["ready_replicas"] == minimum


def scale_in_budget(point: dict[str, Any]) -> float:
    """How long a scale-in back to minReplicas may take once the load stops: the HPA's
    scale-down stabilization window, plus syncs, metrics resolution and pod termination."""
    return point["scale_down_window"] + SCALE_IN_MARGIN


def evaluate_scale_in(timeline: list[dict[str, Any]], budget_seconds: float) -> str | None:
    """None when the pods came back to minReplicas within the budget, else why not."""
    if not timeline:
        return "no HPA samples were taken after the load"
    start = timeline[0]["at"]
    back = next((p for p in timeline if at_minimum(p)), None)
    if back is not None and back["at"] - start <= budget_seconds:
        return None
    last = timeline[-1]
    if back is not None:
        return f"back at minReplicas only after {back['at'] - start:.0f}s ({budget_seconds:.0f}s)"
    return (
        f"{budget_seconds:.0f}s after the load the HPA wanted {last['desired_replicas']} and "
        f"{last['ready_replicas']} were Ready, not minReplicas={last['min_replicas']} "
        f"(CPU {last['cpu_utilization']}% of request; scale-down window "
        f"{last['scale_down_window']}s)"
    )

"""Run locust headless as a subprocess with a hard time bound, and collect what it wrote.

Locust runs in its own process (and session) because importing it monkey-patches the
interpreter with gevent; the caller (pytest, or ``mlflow-acceptance load``) stays unpatched and
may sample the deployment while the load runs. The locust process writes into the run's
reports folder: ``locust_stats.csv``, ``locust_stats_history.csv``, ``locust_failures.csv``,
``locust_exceptions.csv``, ``locust.html`` and ``locust.log``.

Stopping: at the deadline, or on Ctrl-C, locust gets SIGINT (it then writes its HTML
report and final CSVs); whatever is still alive after a grace period is killed with its
whole process group, so ``--processes`` workers never outlive the run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlflow_acceptance.fixtures.core.interrupts import default_sigint
from mlflow_acceptance.load import shapes, slo
from mlflow_acceptance.load.pace import Pace
from mlflow_acceptance.load.pace import read as read_pace

from mlflow_acceptance import IMPORT_ROOT, ROOT

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STARTUP_ALLOWANCE = 60  # seconds for locust to start, stop users and write its reports
WORKER_WAIT = 120  # seconds a master waits for separately started workers
STOP_GRACE = 20  # seconds between SIGINT and SIGKILL


@dataclass(frozen=True)
class Workload:
    """The user mix: class weights, think time between tasks, artifact size."""

    writer_weight: int = 3
    reader_weight: int = 3
    artifact_weight: int = 1
    wait_min: float = 0.5
    wait_max: float = 2.0
    artifact_bytes: int = 4096

    def __post_init__(self) -> None:
        weights = (self.writer_weight, self.reader_weight, self.artifact_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError("user weights must be 0 or more, and not all 0")
        if self.wait_min < 0 or self.wait_max < self.wait_min:
            raise ValueError(
                f"wait times must satisfy 0 <= min <= max (got {self.wait_min}, {self.wait_max})"
            )
        if self.artifact_bytes < 1:
            raise ValueError(f"artifact size must be at least 1 byte (got {self.artifact_bytes})")

    def user_classes(self) -> list[str]:
        """Classes to run: those with a weight above 0 (locust takes them as arguments)."""
        weights = {
            "TrackingWriter": self.writer_weight,
            "Reader": self.reader_weight,
            "ArtifactUser": self.artifact_weight,
        }
        return [name for name, weight in weights.items() if weight > 0]


@dataclass(frozen=True)
class LoadPlan:
    """Everything one locust run needs; ``out_dir`` receives its files."""

    host: str
    out_dir: Path
    prefix: str
    shape: shapes.Shape
    ca_bundle: Path | None = None
    workload: Workload = field(default_factory=Workload)
    processes: int | None = None  # locust --processes: forked workers on this machine
    expect_workers: int | None = None  # master mode: workers started by hand elsewhere
    master_bind_port: int = 5557
    time_limit: float | None = None  # default: shape duration + allowances

    @property
    def shape_name(self) -> str:
        return type(self.shape).__name__.lower()

    @property
    def run_seconds(self) -> int:
        return math.ceil(self.shape.duration)

    @property
    def hard_limit(self) -> float:
        if self.time_limit is not None:
            return self.time_limit
        return self.run_seconds + STARTUP_ALLOWANCE + (WORKER_WAIT if self.expect_workers else 0)

    @property
    def csv_prefix(self) -> Path:
        return self.out_dir / "locust"

    @property
    def html(self) -> Path:
        return self.out_dir / "locust.html"

    @property
    def log(self) -> Path:
        return self.out_dir / "locust.log"


def locust_command(plan: LoadPlan, python: str = sys.executable) -> list[str]:
    """The locust command line for a plan (run from the repository root)."""
    work = plan.workload
    command = [
        python,
        "-m",
        "locust",
        "--locustfile",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        plan.host.rstrip("/"),
        "--users",
        str(plan.shape.users),
        "--spawn-rate",
        f"{plan.shape.spawn_rate:g}",
        "--run-time",
        f"{plan.run_seconds}s",
        "--csv",
        str(plan.csv_prefix),
        "--csv-full-history",
        "--html",
        str(plan.html),
        "--only-summary",
        "--exit-code-on-error",
        "0",  # failures are judged by the SLO gate, not by locust's exit code
        "--stop-timeout",
        "5",
        "--mlflow-prefix",
        plan.prefix,
        "--mlflow-shape",
        plan.shape_name,
        "--mlflow-writer-weight",
        str(work.writer_weight),
        "--mlflow-reader-weight",
        str(work.reader_weight),
        "--mlflow-artifact-weight",
        str(work.artifact_weight),
        "--mlflow-wait-min",
        f"{work.wait_min:g}",
        "--mlflow-wait-max",
        f"{work.wait_max:g}",
        "--mlflow-artifact-bytes",
        str(work.artifact_bytes),
    ]
    if isinstance(plan.shape, shapes.Step):
        command += ["--mlflow-steps", str(plan.shape.steps)]
    if plan.ca_bundle is not None:
        command += ["--mlflow-ca-bundle", str(Path(plan.ca_bundle).resolve())]
    if plan.processes:
        command += ["--processes", str(plan.processes)]
    if plan.expect_workers:
        command += [
            "--master",
            "--expect-workers",
            str(plan.expect_workers),
            "--expect-workers-max-wait",
            str(WORKER_WAIT),
            "--master-bind-port",
            str(plan.master_bind_port),
        ]
    return command + work.user_classes()


def locust_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment, with this package importable (load.shapes)."""
    env = dict(os.environ if base is None else base)
    paths = (str(IMPORT_ROOT), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class LoadOutcome:
    """How the locust process ended."""

    returncode: int | None
    seconds: float
    timed_out: bool = False
    interrupted: bool = False

    def problem(self, log: Path) -> str | None:
        """One line when the process did not end normally, else None."""
        if self.timed_out:
            return f"locust did not finish within its {self.seconds:.0f}s bound (see {log})"
        if self.returncode not in (0, None):
            return f"locust exited with code {self.returncode}: {last_error(log)} (see {log})"
        return None


def last_error(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    for line in reversed(lines):
        if "ERROR" in line or "Error" in line or "error:" in line:
            return line[:200]
    return next((line[:200] for line in reversed(lines) if line), "empty log")


class LocustProcess:
    """One locust subprocess: started in its own session, always stopped."""

    def __init__(self, plan: LoadPlan, python: str = sys.executable) -> None:
        self.plan = plan
        self.command = locust_command(plan, python)
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "locust was not started"
        return self.proc.pid

    def start(self) -> None:
        self.plan.out_dir.mkdir(parents=True, exist_ok=True)
        with self.plan.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=locust_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C reaches us, not it
                preexec_fn=default_sigint,  # else locust may ignore our stop (nohup'd CI)
            )
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait(self, seconds: float) -> int | None:
        """Wait up to ``seconds`` for locust to exit; its exit code, or None if still running."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=max(seconds, 0))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float | None = None) -> int | None:
        """SIGINT (locust saves its reports), then SIGKILL to the whole group after ``grace``."""
        if self.proc is None:
            return None
        grace = STOP_GRACE if grace is None else grace
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            if self.wait(grace) is None:
                self._kill_group()
                self.wait(10)
        self._kill_group()  # forked workers the leader left behind
        return self.proc.poll()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


def run(
    plan: LoadPlan,
    every_second: Callable[[LocustProcess], None] | None = None,
    python: str = sys.executable,
) -> LoadOutcome:
    """Run locust to completion or to its hard bound, calling ``every_second`` meanwhile.

    Ctrl-C stops locust (reports still written) and is then re-raised to the caller.
    """
    process = LocustProcess(plan, python)
    process.start()
    deadline = process.started + plan.hard_limit
    code: int | None = None
    try:
        while time.monotonic() < deadline:
            next_tick = time.monotonic() + 1.0
            if every_second is not None:
                every_second(process)
            code = process.wait(min(next_tick, deadline) - time.monotonic())
            if code is not None:
                break
        timed_out = code is None
        if timed_out:
            code = process.stop()
    except BaseException:
        process.stop()
        raise
    return LoadOutcome(code, round(time.monotonic() - process.started, 1), timed_out=timed_out)


@dataclass
class LoadResult:
    """What the CSVs say about one run, and its SLO verdict."""

    stats: list[slo.RequestStats]
    history: list[slo.HistoryPoint]
    exceptions: list[tuple[int, str]]
    breaches: list[str]
    verdict: str
    pace: Pace = field(default_factory=Pace)  # achieved against offered rate

    @property
    def total(self) -> slo.RequestStats:
        return slo.aggregated(self.stats)

    @property
    def peak_rps(self) -> float:
        return max((point.rps for point in self.history), default=self.total.rps)


def collect(plan: LoadPlan, policy: slo.SloPolicy) -> LoadResult:
    """Read locust's CSVs from ``plan.out_dir`` and judge them; write slo.json beside them."""
    stats_file = Path(f"{plan.csv_prefix}_stats.csv")
    if not stats_file.is_file():
        raise FileNotFoundError(f"locust wrote no {stats_file.name}: {last_error(plan.log)}")
    stats = slo.read_stats(stats_file)
    history_file = Path(f"{plan.csv_prefix}_stats_history.csv")
    history = slo.read_history(history_file) if history_file.is_file() else []
    exceptions = slo.read_exceptions(Path(f"{plan.csv_prefix}_exceptions.csv"))
    breaches = slo.evaluate(stats, policy, exceptions)
    generator = read_pace(plan.csv_prefix)
    result = LoadResult(stats, history, exceptions, breaches, slo.verdict(breaches), generator)
    summary = {
        "verdict": result.verdict,
        "breaches": breaches,
        "policy": asdict(policy),
        "shape": plan.shape.describe(),
        "requests": result.total.requests,
        "failures": result.total.failures,
        "rps": round(result.total.rps, 2),
        "peak_rps": round(result.peak_rps, 2),
        "p95_ms": result.total.p95_ms,
        "p99_ms": result.total.p99_ms,
        "per_request": [asdict(row) for row in stats],
        "pace": generator.summary(),
    }
    (plan.out_dir / "slo.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return result

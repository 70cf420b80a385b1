"""`mlflow-acceptance load` (`nox -s load --`): a locust run with SLO gates against any deployment.

    nox -s load -- --host https://mlflow.staging.example.com --ca-bundle ca.pem \\
        --shape step --users 60 --duration 5m --p95-ms 800 --min-rps 20
    nox -s load -- --target local --offline          # stand up the local stack, run, remove it

Reports go to reports/<run-id>/load/: locust.html, locust_*.csv, locust.log, slo.json and
load.png. Every experiment the run creates is named acc-<run-id>-load and deleted at the
end (also after Ctrl-C). Exit status: 0 SLOs met, 1 SLO breach or failed run, 2 bad input
or unreachable deployment, 130 interrupted.

Distributed: `--processes N` forks N locust workers on this machine (locust's own
option). When one machine is not enough, run the master here with `--expect-workers N`
and start each worker elsewhere from a checkout of this repository:

    PYTHONPATH=. locust -f load/locustfile.py --worker --master-host <this machine>

Workers receive the host, shape and --mlflow-* options from the master; the CA bundle
must exist at the same path on every worker.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from mlflow_acceptance.fixtures.core import html_report, progress
from mlflow_acceptance.fixtures.core.errors import SetupError, TargetError
from mlflow_acceptance.fixtures.core.options import (
    CA_BUNDLE,
    MLFLOW_VERSION,
    REPORTS_DIR,
    OptionSpec,
    add_arguments,
    check_pem_file,
    check_url,
)
from mlflow_acceptance.fixtures.core.replica_watch import ReplicaWatch
from mlflow_acceptance.fixtures.core.reporting import make_run_dir, new_run_id
from mlflow_acceptance.fixtures.core.waiting import WaitTimeout
from mlflow_acceptance.fixtures.registry import TARGETS, resolve
from mlflow_acceptance.load import shapes, slo
from mlflow_acceptance.load.runner import Workload

EXIT_OK, EXIT_BREACH, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_USERS = 20
# The default of 20 users is sized for the reference deployment's servers: at most 2
# replicas with a 1 CPU limit each (values/base.yaml). A local stack gets the same load per
# server CPU (10 users for its default 2 x 0.5 CPU), so its SLO verdict judges latency at
# the load it is sized for, not queueing on a saturated half-size stack.
USERS_PER_SERVER_CPU = 10
LOCAL = TARGETS["local"]
DEFAULT_WORKLOAD = Workload()


def local_specs() -> list[OptionSpec]:
    """The local target's own options, and the server version its image installs."""
    return [*LOCAL.options.SPECS, MLFLOW_VERSION]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and --help still shows everything)."""

    def error(self, message: str):
        self.exit(EXIT_INPUT, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mlflow-acceptance load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_argument_group("deployment")
    where.add_argument("--host", "--tracking-uri", dest="host", metavar="URL")
    where.add_argument("--ca-bundle", metavar="FILE", help="PEM CA that issued its certificate")
    where.add_argument(
        "--target",
        choices=("external", "local"),
        help="local: stand up the local stack for this run (default: external with --host)",
    )
    where.add_argument("--reports-dir", default=REPORTS_DIR.default, metavar="DIR")

    local = parser.add_argument_group("local stack (with --target local)")
    add_arguments(local.add_argument, local_specs())

    shape = parser.add_argument_group("load shape")
    shape.add_argument("--shape", default="steady", help="steady, step or spike")
    shape.add_argument(
        "--users",
        type=int,
        help=f"peak users (default {DEFAULT_USERS}; with --target local, "
        f"{USERS_PER_SERVER_CPU} per server CPU of the stack: 10 for 2 replicas x 0.5 CPU)",
    )
    shape.add_argument("--spawn-rate", type=float, default=5.0, help="users started per second")
    shape.add_argument("--duration", default="60s", help="e.g. 90, 90s, 2m (default 60s)")
    shape.add_argument("--steps", type=int, default=4, help="stages of the step shape")

    mix = parser.add_argument_group("user mix")
    mix.add_argument("--writer-weight", type=int, default=DEFAULT_WORKLOAD.writer_weight)
    mix.add_argument("--reader-weight", type=int, default=DEFAULT_WORKLOAD.reader_weight)
    mix.add_argument("--artifact-weight", type=int, default=DEFAULT_WORKLOAD.artifact_weight)
    mix.add_argument(
        "--wait-min", type=float, default=DEFAULT_WORKLOAD.wait_min, help="seconds between tasks"
    )
    mix.add_argument("--wait-max", type=float, default=DEFAULT_WORKLOAD.wait_max)
    mix.add_argument("--artifact-bytes", type=int, default=DEFAULT_WORKLOAD.artifact_bytes)

    gates = parser.add_argument_group("SLO gates")
    gates.add_argument("--max-fail-ratio", type=float, default=0.01, metavar="RATIO")
    gates.add_argument(
        "--p95-ms",
        action="append",
        metavar="MS|NAME=MS",
        help='p95 limit of every request type, or of one: "PUT artifact=2000" (default 1000)',
    )
    gates.add_argument("--p99-ms", action="append", metavar="MS|NAME=MS", help="(default 2500)")
    gates.add_argument("--min-rps", type=float, default=0.0, help="minimum mean RPS")

    scale = parser.add_argument_group("distributed and limits")
    scale.add_argument("--processes", type=int, help="fork N locust workers on this machine")
    scale.add_argument("--expect-workers", type=int, help="run as master for N remote workers")
    scale.add_argument("--master-bind-port", type=int, default=5557)
    scale.add_argument(
        "--warm-up-rounds",
        type=int,
        default=12,
        metavar="N",
        help="rounds of each request before the measured run (0: none; default 12)",
    )
    scale.add_argument(
        "--time-limit", type=float, help="hard bound in seconds (default: duration + 60)"
    )
    return parser


def policy_from(args: argparse.Namespace) -> slo.SloPolicy:
    if not 0 <= args.max_fail_ratio <= 1:
        raise SetupError(
            f"--max-fail-ratio {args.max_fail_ratio} is not a ratio", "use 0..1, e.g. 0.01"
        )
    try:
        p95, p95_names = slo.latency_option(args.p95_ms, "p95_ms")
        p99, p99_names = slo.latency_option(args.p99_ms, "p99_ms")
    except slo.SloConfigError as exc:
        raise SetupError(str(exc)) from None
    overrides: dict[str, dict[str, float]] = {}
    for which, names in (("p95_ms", p95_names), ("p99_ms", p99_names)):
        for name, limit in names.items():
            overrides.setdefault(name, {})[which] = limit
    return slo.SloPolicy(
        max_failure_ratio=args.max_fail_ratio,
        p95_ms=p95 or slo.SloPolicy.p95_ms,
        p99_ms=p99 or slo.SloPolicy.p99_ms,
        min_rps=args.min_rps,
        overrides=overrides,
    )


def default_users(options) -> int:
    """Peak users when --users is not given: per server CPU for a local stack."""
    if options is None:
        return DEFAULT_USERS
    return max(1, round(USERS_PER_SERVER_CPU * options.replicas * options.replica_cpus))


def shape_from(args: argparse.Namespace, options=None) -> shapes.Shape:
    users = args.users if args.users is not None else default_users(options)
    try:
        duration = shapes.parse_duration(args.duration)
        return shapes.make_shape(args.shape, users, args.spawn_rate, duration, args.steps)
    except shapes.ShapeError as exc:
        raise SetupError(f"--shape {args.shape}: {exc}") from None


def workload_from(args: argparse.Namespace) -> Workload:
    try:
        return Workload(
            args.writer_weight,
            args.reader_weight,
            args.artifact_weight,
            args.wait_min,
            args.wait_max,
            args.artifact_bytes,
        )
    except ValueError as exc:
        raise SetupError(str(exc), "check --*-weight, --wait-min/--wait-max") from None


def check_input(args: argparse.Namespace) -> str:
    """Validate everything that needs no network; return the target."""
    target = args.target or ("external" if args.host else None)
    if target is None:
        raise SetupError(
            "no deployment given", "pass --host https://mlflow.example.com or --target local"
        )
    if target == "local" and args.host:
        raise SetupError("--host and --target local exclude each other", "drop one of them")
    if target == "external":
        if not args.host:
            raise SetupError("--target external needs --host URL")
        check_url(args.host, "--host")
    if args.ca_bundle and target == "local":
        raise SetupError("--ca-bundle is for --host; the local stack makes its own CA")
    check_pem_file(args.ca_bundle and Path(args.ca_bundle), CA_BUNDLE.flag)
    given = [spec.flag for spec in local_specs() if getattr(args, spec.name) is not None]
    if target != "local" and given:
        raise SetupError(
            f"{given[0]} applies to --target local only", "drop it, or add --target local"
        )
    if args.processes is not None and args.processes < 1:
        raise SetupError(f"--processes {args.processes} must be at least 1")
    if args.expect_workers is not None and args.expect_workers < 1:
        raise SetupError(f"--expect-workers {args.expect_workers} must be at least 1")
    if args.processes and args.expect_workers:
        raise SetupError("--processes and --expect-workers exclude each other", "pick one")
    if args.warm_up_rounds < 0:
        raise SetupError(f"--warm-up-rounds {args.warm_up_rounds} must be 0 or more")
    if args.time_limit is not None and args.time_limit <= 0:
        raise SetupError(f"--time-limit {args.time_limit} must be above 0 seconds")
    return target


def local_options(args: argparse.Namespace):
    """The local target's options, resolved by the same rules as `nox -s local`."""
    flags = {spec.name: getattr(args, spec.name) for spec in local_specs()}
    return resolve({**flags, "target": "local", "reports_dir": args.reports_dir})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        target = check_input(args)
        options = local_options(args) if target == "local" else None
        shape, workload, policy = shape_from(args, options), workload_from(args), policy_from(args)
    except SetupError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return EXIT_INPUT

    host = args.host.rstrip("/") if args.host else ""
    ca_bundle = Path(args.ca_bundle) if args.ca_bundle else None
    if options is None:
        from mlflow_acceptance.fixtures.core.frontdoor import check_reachable

        try:
            check_reachable(host, ca_bundle)
        except SetupError as exc:
            print(f"error: {exc.line()}", file=sys.stderr)
            return EXIT_INPUT

    run_id = new_run_id()
    run_dir = make_run_dir(Path(args.reports_dir), run_id)
    progress.install(None, run_dir / "run.log")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if options is None:
            return run_load(args, run_id, run_dir, host, ca_bundle, shape, workload, policy)
        with LOCAL.load()(options, run_id, run_dir) as deployment:
            return run_load(
                args,
                run_id,
                run_dir,
                deployment.tracking_uri,
                deployment.ca_bundle,
                shape,
                workload,
                policy,
                deployment,
            )
    except SetupError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return EXIT_INPUT
    except TargetError as exc:
        print(f"error: could not stand up the local stack: {exc}", file=sys.stderr)
        return EXIT_BREACH
    except WaitTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BREACH
    except KeyboardInterrupt:
        print(f"interrupted; reports so far in {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _on_sigterm(signum, frame):  # pragma: no cover - exercised by nox's escalation
    raise KeyboardInterrupt("SIGTERM")


def run_load(
    args, run_id, run_dir, host, ca_bundle, shape, workload, policy, deployment=None
) -> int:
    """Run locust, judge its CSVs, delete what it created; the exit status. With the
    ``deployment`` started for this run, its replicas are watched beside the load."""
    from mlflow_acceptance.fixtures.core.frontdoor import FrontDoorHttp
    from mlflow_acceptance.fixtures.core.janitor import Janitor
    from mlflow_acceptance.load import report, runner, warmup

    say = progress.scoped("load")
    plan = runner.LoadPlan(
        host=host,
        out_dir=run_dir / "load",
        prefix=f"acc-{run_id}-load",
        shape=shape,
        ca_bundle=ca_bundle,
        workload=workload,
        processes=args.processes,
        expect_workers=args.expect_workers,
        master_bind_port=args.master_bind_port,
        time_limit=args.time_limit,
    )
    say(f"{shape.describe()} against {host}; SLOs: {policy.describe()}")
    if plan.expect_workers:
        say(
            f"waiting up to {runner.WORKER_WAIT}s for {plan.expect_workers} workers: "
            "PYTHONPATH=. locust -f load/locustfile.py --worker --master-host <this host>"
        )
    history_file = Path(f"{plan.csv_prefix}_stats_history.csv")

    next_report = [15.0]

    def every_second(process: runner.LocustProcess) -> None:
        elapsed = process.elapsed()
        if elapsed >= next_report[0]:
            next_report[0] += 15
            say(report.progress_line(history_file, elapsed, plan.run_seconds))

    watch = ReplicaWatch(deployment)  # sees nothing of a deployment it was not given
    http = FrontDoorHttp(host, ca_bundle)
    try:
        if args.warm_up_rounds:
            seconds, failed = warmup.warm_up(http, f"{plan.prefix}-warm-up", args.warm_up_rounds)
            say(f"warm-up: {args.warm_up_rounds} rounds in {seconds:.1f}s, {failed} failed")
        if deployment is not None and deployment.resources is not None:
            # a stack started for this run: wait out its start-up
            seconds, idle = warmup.wait_for_idle(deployment.resources, say)
            say(f"replicas idle at {idle:.0f}% of their CPU limit after {seconds:.0f}s")
        watch.start()
        outcome = runner.run(plan, every_second)
    finally:
        watch.stop()
        janitor = Janitor(http, plan.prefix)
        deleted = janitor.sweep(registered_models=False)["experiments"]
        say(f"deleted {deleted} experiments named {plan.prefix}*")
        for problem in janitor.problems:
            say(f"cleanup problem: {problem}")
        http.close()
    problem = outcome.problem(plan.log)
    try:
        result = runner.collect(plan, policy)
    except (FileNotFoundError, ValueError) as exc:
        print(f"load run failed: {problem or exc}", file=sys.stderr)
        return EXIT_BREACH
    report.plot(result, plan.out_dir / "load.png", f"load {run_id}: {shape.describe()}", watch)
    page = html_report.write_report(plan.out_dir.parent)
    say(report.summary_line(result))
    say(f"reports: {plan.out_dir}/ (locust.html, locust_stats.csv, slo.json, load.png); {page}")
    if problem:
        print(f"load run failed: {problem}", file=sys.stderr)
        return EXIT_BREACH
    if shortfall := result.pace.shortfall():
        print(f"load run measured the generator, not the server: {shortfall}", file=sys.stderr)
        return EXIT_BREACH
    if result.breaches:
        print(result.verdict, file=sys.stderr)
        return EXIT_BREACH
    print(f"{result.verdict}: {report.summary_line(result)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

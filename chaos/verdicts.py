"""The judgements every experiment makes, each with a message that says what went wrong."""

from __future__ import annotations

from mlflow_acceptance.chaos.audit import AuditResult
from mlflow_acceptance.chaos.experiment import Journal
from mlflow_acceptance.chaos.run import ChaosRun


def steady_state_came_back(journal: Journal, result: AuditResult) -> None:
    """The experiment ran to its end and the hypothesis held again afterwards."""
    assert journal.status == "completed", f"{journal.explain()}\naudit: {result.summary()}"
    assert not journal.deviated, f"steady state did not come back:\n{journal.explain()}"


def recovered_within(seconds: float, bound: float, what: str) -> None:
    """``what`` names the recovery, e.g. "replicas were Ready again"; ``seconds`` is one
    fault's recovery (``run.values["recovery_seconds"]`` spans the first fault to the last
    recovery, which is one fault's only when there is one)."""
    assert seconds <= bound, f"{what} only {seconds}s after the fault (bound {bound}s)"


def nothing_lost(result: AuditResult) -> None:
    assert not result.lost, (
        f"{len(result.lost)} acknowledged writes were lost: {result.lost[:5]} ({result.summary()})"
    )


def nothing_hung(run: ChaosRun) -> None:
    """A call still unanswered when the writers stopped (after recovery and the settle) is
    a hang, whatever the bounds on the calls that did end."""
    assert not run.hung, (
        f"{len(run.hung)} client calls were still unanswered when the writers stopped: "
        + "; ".join(f"{op.kind} {op.id}: {op.error}" for op in run.hung[:5])
    )


def duplicates_within(result: AuditResult, create_budget: int) -> None:
    """A create whose answer a fault swallowed after the commit is retried by the client and
    lands twice: at most ``create_budget`` of those. Anything else written twice is a defect
    (params and tags are keyed; the server ignores an identical metric retry)."""
    others = {kind: n for kind, n in result.duplicate_kinds.items() if kind != "create_run"}
    assert not others, f"writes landed twice: {others}: {result.duplicates[:5]}"
    creates = result.duplicate_kinds.get("create_run", 0)
    assert creates <= create_budget, (
        f"{creates} runs were created twice (budget {create_budget}, one per writer per "
        f"fault): {result.duplicates[:5]}"
    )


def writes_accounted_for(run: ChaosRun, result: AuditResult, faults: int) -> None:
    """Every acknowledged write there once (creates doubled by a fault within a budget of
    one per writer per fault) and no call left hanging."""
    nothing_lost(result)
    duplicates_within(result, run.writers * faults)
    nothing_hung(run)


# The raw prober's p95 once the service has settled after recovery, against its p95 before
# the fault: the writers keep the replicas busy, so latency is judged against the same
# load's steady state, not an absolute that measures the machine. Reported as a hardening
# finding, not a failure: on the local target one raw call 12 s after the only replica was
# Ready again took 13 s while none failed, most likely its own start still running (MLflow
# 3's job runner and huey consumers import mlflow, ~34 CPU-s, a minute at 0.5 CPU).
SETTLED_P95_FACTOR = 3.0
SETTLED_P95_SLACK_MS = 2000.0


def prober_held(run: ChaosRun, during_errors: int | None) -> None:
    """What a client with no retries saw, phase by phase: no error before the fault or
    after recovery, at most ``during_errors`` during it (None: an outage, only measured),
    and latency back near its steady state once settled (else a hardening finding)."""
    assert run.prober_stopped, "the raw prober's last call was unanswered past its timeout"
    by_name = {phase.name: phase for phase in run.probe_phases}
    for name in ("before", "after", "settled"):
        assert by_name[name].calls, f"the raw prober made no call in the {name} phase"
    for name in ("before", "after"):
        phase = by_name[name]
        assert not phase.errors, (
            f"{len(phase.errors)} of {len(phase.calls)} raw calls (no retries) failed {name} "
            f"the fault: {[call.outcome() for call in phase.errors[:5]]}"
        )
    during = by_name["during"]
    if during_errors is not None:
        assert len(during.errors) <= during_errors, (
            f"{len(during.errors)} of {len(during.calls)} raw calls (no retries) failed during "
            f"the fault (at most {during_errors}): "
            f"{[call.outcome() for call in during.errors[:5]]}"
        )
    before, settled = by_name["before"].p95_ms, by_name["settled"].p95_ms
    bound = max(SETTLED_P95_FACTOR * before, before + SETTLED_P95_SLACK_MS)
    if settled > bound:
        run.hardening(
            f"{run.name}: latency did not come back: raw calls had a p95 of {settled:.0f} ms "
            f"once settled after recovery, {before:.0f} ms before the fault (bound "
            f"{bound:.0f} ms)",
            "a replacement's start competes with its traffic: give replicas CPU for MLflow's "
            "start (or turn its job runner off where no jobs run: "
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false), and gate readiness on an API path",
        )


def no_call_longer_than(run: ChaosRun, bound: float) -> None:
    longest = run.values["max_op_seconds"]
    assert longest <= bound, f"a client call took {longest}s (bound {bound}s)"


# A raw call waiting longer than this while another replica was Ready all along is a stall
# users feel: reported as a hardening finding (measured 15 s on the local target).
STALL_REPORT_MS = 5000


def report_stall(run: ChaosRun, hardening, while_what: str) -> None:
    """The longest raw call during the fault, as a hardening finding when users would have
    waited for it although another replica was Ready (``while_what``: when it happened)."""
    during = {phase.name: phase for phase in run.probe_phases}["during"]
    if during.max_ms is not None and during.max_ms > STALL_REPORT_MS:
        hardening(
            f"{run.name}: a raw call waited {during.max_ms / 1000:.1f}s {while_what}, "
            "although another replica was Ready",
            "find what stalls: a replacement taking traffic before its workers have loaded "
            "the tracking store (readiness on /health only: probe an API path, e.g. "
            "/api/2.0/mlflow/experiments/search?max_results=1), or database locks taken "
            "at its start",
        )

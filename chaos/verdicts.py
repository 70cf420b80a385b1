"""The judgements every experiment makes, each with a message that says what went wrong."""

from __future__ import annotations

from chaos.audit import AuditResult
from chaos.experiment import Journal
from chaos.run import ChaosRun


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


def no_call_longer_than(run: ChaosRun, bound: float) -> None:
    longest = run.values["max_op_seconds"]
    assert longest <= bound, f"a client call took {longest}s (bound {bound}s)"

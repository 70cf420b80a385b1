"""The writer pool journals a call that never answers, and the verdicts judge hangs and
duplicates that the old checks only counted (audit weaknesses 3 and 12)."""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pytest
from mlflow_acceptance.chaos.audit import AuditResult
from mlflow_acceptance.chaos.verdicts import duplicates_within, no_call_longer_than, nothing_hung
from mlflow_acceptance.chaos.workload import Op, WriterPool


class StuckClient:
    """create_run answers; every later call waits until released (a server that hangs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = threading.Event()

    def create_run(self, experiment_id, tags):
        return SimpleNamespace(info=SimpleNamespace(run_id="r1"))

    def _stuck(self, *args, **kwargs):
        self.waiting.set()
        self.release.wait(30)

    log_metric = log_param = set_tag = log_artifact = set_terminated = _stuck


def test_a_call_unanswered_at_stop_is_journaled_as_hung_and_counts_in_the_longest_call():
    client = StuckClient()
    pool = WriterPool(client, "1", writers=1).start()
    assert client.waiting.wait(10), "the writer never reached its stuck call"
    hung = pool.stop(join_timeout=0.3)
    client.release.set()  # the late answer must not turn the hung call into an ack
    pool._threads[0].join(5)
    assert [op.hung for op in hung] == [True]
    assert "no answer" in hung[0].error
    journal = pool.snapshot()
    assert hung[0] in journal
    assert not hung[0].ok
    assert journal.count(hung[0]) == 1
    run = SimpleNamespace(hung=hung, values={"max_op_seconds": max(o.seconds for o in journal)})
    with pytest.raises(AssertionError, match="still unanswered when the writers stopped"):
        nothing_hung(run)
    # The old snapshot dropped the hung call, so max_op_seconds missed the worst hang.
    assert run.values["max_op_seconds"] >= hung[0].seconds > 0
    with pytest.raises(AssertionError, match="a client call took"):
        no_call_longer_than(run, hung[0].seconds / 2)


def test_a_pool_that_stops_cleanly_reports_nothing_hung():
    class Quick(StuckClient):
        def _quick(self, *args, **kwargs):
            return None

        log_metric = log_param = set_tag = log_batch = log_artifact = set_terminated = _quick

    pool = WriterPool(Quick(), "1", writers=2).start()
    hung = pool.stop(join_timeout=10)
    assert hung == []
    assert all(op.ok and op.ended for op in pool.snapshot())
    nothing_hung(SimpleNamespace(hung=hung))


def result_with(**kinds: int) -> AuditResult:
    return AuditResult(
        duplicates=[f"{k} twice" for k, n in kinds.items() for _ in range(n)],
        duplicate_kinds=Counter(kinds),
    )


def test_duplicates_other_than_creates_fail_and_creates_are_bounded():
    duplicates_within(result_with(create_run=2), create_budget=2)
    with pytest.raises(AssertionError, match="runs were created twice"):
        duplicates_within(result_with(create_run=3), create_budget=2)
    with pytest.raises(AssertionError, match="writes landed twice"):
        duplicates_within(result_with(log_metric=1), create_budget=8)


def test_op_seconds_of_a_hung_call_is_from_its_start_to_the_stop():
    op = Op("w0-1", 0, "log_param", started=1.0, ended=91.0, hung=True)
    assert op.seconds == 90.0

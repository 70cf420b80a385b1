"""Waiting: polls until the condition holds, and a timeout says what was last seen."""

from __future__ import annotations

import itertools

import pytest
from mlflow_acceptance.fixtures.core.waiting import (
    Observation,
    WaitTimeout,
    wait_for_value,
    wait_until,
)


def test_returns_the_first_good_observation():
    counter = itertools.count()
    result = wait_until(
        lambda: Observation(next(counter) >= 2, "n"), timeout=5, interval=0.01, what="the counter"
    )
    assert result.ok


def test_timeout_reports_what_was_last_seen():
    with pytest.raises(WaitTimeout) as caught:
        wait_until(
            lambda: Observation(False, "replica-2: restarting"),
            timeout=0.2,
            interval=0.05,
            what="replicas to be Ready",
        )
    message = str(caught.value)
    assert "waiting for replicas to be Ready" in message
    assert "last seen: replica-2: restarting" in message


def test_exceptions_count_as_not_yet_and_are_reported():
    def probe():
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(WaitTimeout, match="ConnectionRefusedError: connection refused"):
        wait_until(probe, timeout=0.2, interval=0.05, what="the server")


def test_wait_for_value():
    values = iter([None, None, 42])
    assert wait_for_value(lambda: next(values), timeout=5, interval=0.01, what="x") == 42

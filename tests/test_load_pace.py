"""Achieved against offered rate: the users' own schedule, merged across locust processes."""

from __future__ import annotations

import pytest
from mlflow_acceptance.load import pace
from mlflow_acceptance.load.pace import Pace


def loops(count: int, asked: float, late: float, busy: float) -> Pace:
    timed = Pace()
    for _ in range(count):
        timed.note_wait(asked, late)
        timed.note_task(busy)
    return timed


def test_on_time_users_keep_the_offered_rate():
    timed = loops(50, asked=1.0, late=0.0, busy=0.5)
    assert timed.kept == 1.0
    assert timed.shortfall() is None
    assert "100.0% of the rate they offered over 50 loops" in timed.describe()


def test_late_wake_ups_lower_the_achieved_rate_and_fail_below_ninety_percent():
    timed = loops(10, asked=0.5, late=0.5, busy=0.5)  # 1 s offered, 1.5 s taken
    assert timed.kept == pytest.approx(2 / 3)
    assert timed.late_ms(0.95) == 500.0
    assert "fell behind its own schedule" in timed.shortfall()
    assert loops(10, asked=0.5, late=0.05, busy=0.5).shortfall() is None  # 95 % kept


def test_an_early_wake_up_counts_as_on_time():
    assert loops(3, asked=1.0, late=-0.001, busy=0.0).kept == 1.0


def test_processes_are_merged_from_their_files(tmp_path):
    prefix = tmp_path / "locust"
    loops(10, asked=1.0, late=0.0, busy=0.0).write(tmp_path / "locust_pace_101.json")
    loops(10, asked=1.0, late=1.0, busy=0.0).write(tmp_path / "locust_pace_102.json")
    (tmp_path / "other_pace_103.json").write_text("not ours")
    merged = pace.read(prefix)
    assert merged.loops == 20
    assert merged.kept == pytest.approx(20 / 30)


def test_no_timed_loop_is_said_and_never_a_shortfall(tmp_path):
    nothing = pace.read(tmp_path / "locust")
    assert nothing.kept is None
    assert nothing.shortfall() is None
    assert nothing.describe() == "no user loop was timed"
    assert nothing.summary()["achieved_of_offered"] is None

"""Load shapes: the (users, spawn rate) each second, when they stop, and what they reject."""

from __future__ import annotations

import pytest
from mlflow_acceptance.load import shapes


def ticks(shape: shapes.Shape, seconds: list[float]):
    return [shape.tick(t) for t in seconds]


def test_steady_holds_users_then_stops():
    shape = shapes.Steady(users=10, spawn_rate=5, duration=30)
    assert ticks(shape, [0, 15, 29.9, 30, 45]) == [(10, 5), (10, 5), (10, 5), None, None]


def test_step_climbs_in_equal_stages_and_holds_the_peak_last():
    shape = shapes.Step(users=30, spawn_rate=10, duration=90, steps=3)
    assert shape.stages() == [(30, 10), (60, 20), (90, 30)]
    assert ticks(shape, [0, 29.9, 30, 59.9, 60, 89.9, 90]) == [
        (10, 10),
        (10, 10),
        (20, 10),
        (20, 10),
        (30, 10),
        (30, 10),
        None,
    ]
    assert shape.peak_starts_at() == 60


def test_step_rounds_users_up_so_the_last_stage_is_the_peak():
    shape = shapes.Step(users=10, spawn_rate=5, duration=40, steps=4)
    assert [users for _, users in shape.stages()] == [3, 5, 8, 10]


def test_spike_is_baseline_burst_baseline():
    shape = shapes.Spike(users=50, spawn_rate=50, duration=60)
    assert ticks(shape, [0, 19.9, 20, 39.9, 40, 59.9, 60]) == [
        (10, 50),
        (10, 50),
        (50, 50),
        (50, 50),
        (10, 50),
        (10, 50),
        None,
    ]


def test_make_shape_by_name():
    assert isinstance(shapes.make_shape("step", 8, 4, 40, steps=2), shapes.Step)
    assert isinstance(shapes.make_shape("spike", 8, 8, 30), shapes.Spike)
    assert isinstance(shapes.make_shape("steady", 8, 4, 30), shapes.Steady)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: shapes.make_shape("ramp", 10, 1, 60), "unknown shape 'ramp'; use one of"),
        (lambda: shapes.Steady(0, 1, 60), "users must be at least 1"),
        (lambda: shapes.Steady(10, 0, 60), "spawn rate must be above 0"),
        (lambda: shapes.Steady(10, 1, 0), "duration must be above 0"),
        (lambda: shapes.Step(2, 1, 60, steps=3), "3 steps need at least 3 users"),
        # 100 users at 1/s need 100 s, but the steady stage lasts 30 s
        (lambda: shapes.Steady(100, 1, 30), "spawn rate 1/s is too low"),
        # the spike adds 40 users in a 10 s third at 2/s: 20 s
        (lambda: shapes.Spike(50, 2, 30), "going from 10 to 50 users takes 20s"),
    ],
)
def test_bad_parameters_are_one_clear_message(make, message):
    with pytest.raises(shapes.ShapeError, match=message.replace("(", r"\(")):
        make()


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("2m", 120), ("1m30s", 90), ("1h", 3600)]
)
def test_parse_duration(text, seconds):
    assert shapes.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1.5m", "-5", "0", "5 minutes"])
def test_parse_duration_rejects(text):
    with pytest.raises(shapes.ShapeError, match=r"time span|above 0"):
        shapes.parse_duration(text)


def test_describe_names_every_stage():
    text = shapes.Step(30, 10, 90, 3).describe()
    assert text == (
        "step (10 users until 30s, 20 users until 60s, 30 users until 90s; spawn rate 10/s)"
    )

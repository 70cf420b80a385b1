"""Load shapes: steady, step ramp and spike, as schedules of (users, spawn rate) over time.

They follow the contract of locust's ``LoadTestShape.tick()`` (a tuple, or None to stop)
but take the run time as an argument and never import locust: importing locust
monkey-patches sockets and threads (gevent), which must not happen in the pytest process
that also drives Docker and Kubernetes. ``load/locustfile.py`` wraps the chosen shape in a
real ``LoadTestShape``.

Locust's shape worker blocks until a ramp is complete, so a shape whose spawn rate cannot
reach a stage's user count within that stage is rejected as bad input instead of silently
skipping stages.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

Tick = tuple[int, float] | None


class ShapeError(ValueError):
    """Shape parameters that cannot produce the load they describe."""


@dataclass(frozen=True)
class Shape:
    """Common parameters: peak users, users started per second, total seconds."""

    users: int
    spawn_rate: float
    duration: float

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ShapeError(f"users must be at least 1 (got {self.users})")
        if not self.spawn_rate > 0:
            raise ShapeError(f"spawn rate must be above 0 (got {self.spawn_rate})")
        if not self.duration > 0:
            raise ShapeError(f"duration must be above 0 seconds (got {self.duration})")

    def tick(self, run_time: float) -> Tick:
        """locust's contract: (users, spawn rate) of the stage under way, None after the last."""
        for end, users in self.stages():
            if run_time < end:
                return users, self.spawn_rate
        return None

    def stages(self) -> list[tuple[float, int]]:
        """(end second, users) of each stage, for ticks, reports and the ramp check."""
        raise NotImplementedError

    def describe(self) -> str:
        stages = ", ".join(f"{users} users until {end:g}s" for end, users in self.stages())
        return f"{type(self).__name__.lower()} ({stages}; spawn rate {self.spawn_rate:g}/s)"

    def _check_ramps(self) -> None:
        previous_end, previous_users = 0.0, 0
        for end, users in self.stages():
            ramp = abs(users - previous_users) / self.spawn_rate
            if ramp > end - previous_end:
                raise ShapeError(
                    f"spawn rate {self.spawn_rate:g}/s is too low: going from "
                    f"{previous_users} to {users} users takes {ramp:.0f}s, longer than the "
                    f"{end - previous_end:.0f}s stage"
                )
            previous_end, previous_users = end, users


@dataclass(frozen=True)
class Steady(Shape):
    """``users`` for the whole duration: a soak or a fixed-rate comparison."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_ramps()

    def stages(self) -> list[tuple[float, int]]:
        return [(self.duration, self.users)]


@dataclass(frozen=True)
class Step(Shape):
    """``steps`` equal stages of users/steps more users each; the last holds the peak.

    Stage k (1-based) runs ceil(users*k/steps) users for duration/steps seconds, so
    throughput and CPU can be read at each level (the calibration reads the top one).
    """

    steps: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1:
            raise ShapeError(f"steps must be at least 1 (got {self.steps})")
        if self.steps > self.users:
            raise ShapeError(f"{self.steps} steps need at least {self.steps} users")
        self._check_ramps()

    @property
    def step_seconds(self) -> float:
        return self.duration / self.steps

    def stages(self) -> list[tuple[float, int]]:
        return [
            (self.step_seconds * k, math.ceil(self.users * k / self.steps))
            for k in range(1, self.steps + 1)
        ]

    def peak_starts_at(self) -> float:
        """Second at which the top stage begins (its users are spawned by then + ramp)."""
        return self.step_seconds * (self.steps - 1)


@dataclass(frozen=True)
class Spike(Shape):
    """A baseline (``base_fraction`` of users), a sudden spike to ``users``, then baseline.

    The spike occupies the middle third of the duration; ``spawn_rate`` is the spike's
    ramp, so set it high to model a burst.
    """

    base_fraction: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.base_fraction < 1:
            raise ShapeError(f"base fraction must be between 0 and 1 (got {self.base_fraction})")
        self._check_ramps()

    @property
    def base_users(self) -> int:
        return max(1, round(self.users * self.base_fraction))

    def stages(self) -> list[tuple[float, int]]:
        third = self.duration / 3
        return [(third, self.base_users), (2 * third, self.users), (self.duration, self.base_users)]


SHAPES: dict[str, type[Shape]] = {"steady": Steady, "step": Step, "spike": Spike}


def make_shape(name: str, users: int, spawn_rate: float, duration: float, steps: int = 4) -> Shape:
    """Build a shape by name, or raise ShapeError saying what is wrong."""
    if name not in SHAPES:
        raise ShapeError(f"unknown shape {name!r}; use one of {', '.join(SHAPES)}")
    if name == "step":
        return Step(users, spawn_rate, duration, steps)
    return SHAPES[name](users, spawn_rate, duration)


_SPAN = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_duration(text: str) -> int:
    """Whole seconds from "90", "90s", "2m", "1m30s" or "1h", as locust's --run-time reads them."""
    match = _SPAN.match(str(text).strip())
    if not match or not any(match.groups()):
        raise ShapeError(f"duration {text!r} is not a time span; use e.g. 90, 90s, 2m or 1m30s")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ShapeError(f"duration {text!r} must be above 0 seconds")
    return total

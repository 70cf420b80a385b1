"""Chaos experiments in the Chaos Toolkit shape: steady-state hypothesis, method, rollbacks.

The hypothesis is checked before the fault (if it does not hold, the experiment is aborted:
there is nothing to learn from breaking a broken system), the method injects the fault and
observes, the hypothesis is checked again after, and the rollbacks always run. The journal
has chaostoolkit-lib's shape (``steady_states`` before and after kept apart, ``run`` for
the method's actions, ``rollbacks``), every step with its outcome and timing, as
``chaos run`` writes journal.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow_acceptance.fixtures.core.waiting import Observation, WaitTimeout, wait_until


@dataclass(frozen=True)
class Probe:
    """A tolerance check of the steady state: returns an Observation (ok + what was seen)."""

    name: str
    check: Callable[[], Observation]


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[[], Any]


@dataclass
class JournalStep:
    phase: str  # hypothesis-before | method | hypothesis-after | rollback
    name: str
    ok: bool
    detail: str
    started: float
    seconds: float


@dataclass
class Journal:
    title: str
    status: str = "running"  # completed | aborted | failed
    deviated: bool = False
    steady_states: dict[str, list[JournalStep]] = field(
        default_factory=lambda: {"before": [], "after": []}
    )
    run: list[JournalStep] = field(default_factory=list)
    rollbacks: list[JournalStep] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def steps(self) -> list[JournalStep]:
        """Every step in the order the experiment took them."""
        states = self.steady_states
        return [*states["before"], *self.run, *states["after"], *self.rollbacks]

    def failures(self) -> list[JournalStep]:
        return [s for s in self.steps() if not s.ok]

    def explain(self) -> str:
        lines = [f"{self.title}: {self.status}" + (", deviated" if self.deviated else "")]
        lines += [
            f"  [{s.phase}] {s.name}: {'ok' if s.ok else 'FAILED'} - {s.detail}"
            for s in self.steps()
        ]
        return "\n".join(lines)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=str))
        return path


def timed_step(phase: str, name: str, call: Callable[[], tuple[bool, str]]) -> JournalStep:
    """Run one step; an exception is its failure, with the exception as its detail."""
    started = time.monotonic()
    try:
        ok, detail = call()
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return JournalStep(phase, name, ok, detail, started, time.monotonic() - started)


@dataclass
class Experiment:
    title: str
    steady_state: list[Probe]
    method: list[Action]
    rollbacks: list[Action] = field(default_factory=list)
    # How long the steady state may take to return after the method (recovery budget).
    recovery_timeout: float = 120.0

    def run(self) -> Journal:
        journal = Journal(self.title)
        try:
            if not self._hypothesis(journal, "before", timeout=0):
                journal.status = "aborted"
                return journal
            for action in self.method:

                def act(action: Action = action) -> tuple[bool, str]:
                    journal.outputs[action.name] = action.run()
                    return True, "done"

                step = timed_step("method", action.name, act)
                journal.run.append(step)
                if not step.ok:
                    journal.status = "failed"
                    return journal
            journal.deviated = not self._hypothesis(journal, "after", self.recovery_timeout)
            journal.status = "completed"
            return journal
        finally:
            for rollback in self.rollbacks:

                def undo(rollback: Action = rollback) -> tuple[bool, str]:
                    rollback.run()
                    return True, "done"

                journal.rollbacks.append(timed_step("rollback", rollback.name, undo))

    def _hypothesis(self, journal: Journal, when: str, timeout: float) -> bool:
        """Every probe must hold; after the method, each may take up to ``timeout`` to."""
        held = True
        for probe in self.steady_state:

            def check(probe: Probe = probe) -> tuple[bool, str]:
                if not timeout:
                    observation = probe.check()
                    return observation.ok, observation.seen
                try:
                    seen = wait_until(probe.check, timeout=timeout, interval=1.0, what=probe.name)
                except WaitTimeout as exc:
                    return False, str(exc)
                return True, seen.seen

            step = timed_step(f"hypothesis-{when}", probe.name, check)
            journal.steady_states[when].append(step)
            held = held and step.ok
        return held

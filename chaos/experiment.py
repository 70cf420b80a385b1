"""Chaos experiments in the Chaos Toolkit shape: steady-state hypothesis, method, rollbacks.

The hypothesis is checked before the fault (if it does not hold, the experiment is aborted:
there is nothing to learn from breaking a broken system), the method injects the fault and
observes, the hypothesis is checked again after, and the rollbacks always run. A journal
records every step with its outcome and timing, as ``chaos run`` writes journal.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fixtures.waiting import Observation, WaitTimeout, wait_until


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
class Step:
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
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def failures(self) -> list[Step]:
        return [s for s in self.steps if not s.ok]

    def explain(self) -> str:
        lines = [f"{self.title}: {self.status}" + (", deviated" if self.deviated else "")]
        lines += [
            f"  [{s.phase}] {s.name}: {'ok' if s.ok else 'FAILED'} - {s.detail}" for s in self.steps
        ]
        return "\n".join(lines)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=str))
        return path


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
            if not self._hypothesis(journal, "hypothesis-before", timeout=0):
                journal.status = "aborted"
                return journal
            for action in self.method:
                started = time.monotonic()
                try:
                    journal.outputs[action.name] = action.run()
                    journal.steps.append(
                        Step(
                            "method", action.name, True, "done", started, time.monotonic() - started
                        )
                    )
                except Exception as exc:
                    journal.steps.append(
                        Step(
                            "method",
                            action.name,
                            False,
                            f"{type(exc).__name__}: {exc}",
                            started,
                            time.monotonic() - started,
                        )
                    )
                    journal.status = "failed"
                    return journal
            journal.deviated = not self._hypothesis(
                journal, "hypothesis-after", timeout=self.recovery_timeout
            )
            journal.status = "completed"
            return journal
        finally:
            for rollback in self.rollbacks:
                started = time.monotonic()
                try:
                    rollback.run()
                    journal.steps.append(
                        Step(
                            "rollback",
                            rollback.name,
                            True,
                            "done",
                            started,
                            time.monotonic() - started,
                        )
                    )
                except Exception as exc:
                    journal.steps.append(
                        Step(
                            "rollback",
                            rollback.name,
                            False,
                            str(exc),
                            started,
                            time.monotonic() - started,
                        )
                    )

    def _hypothesis(self, journal: Journal, phase: str, timeout: float) -> bool:
        """Every probe must hold; after the method, each may take up to ``timeout`` to."""
        held = True
        for probe in self.steady_state:
            started = time.monotonic()
            try:
                if timeout:
                    seen = wait_until(
                        probe.check, timeout=timeout, interval=1.0, what=probe.name
                    ).seen
                    ok = True
                else:
                    observation = probe.check()
                    ok, seen = observation.ok, observation.seen
            except WaitTimeout as exc:
                ok, seen = False, str(exc)
            except Exception as exc:
                ok, seen = False, f"{type(exc).__name__}: {exc}"
            journal.steps.append(
                Step(phase, probe.name, ok, seen, started, time.monotonic() - started)
            )
            held = held and ok
        return held

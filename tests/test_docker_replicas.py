"""The local target's Ready is the chart's readiness probe (timeout 3 s, failureThreshold
3), not one sample: one slow /health on a busy replica is not an outage, three in a row
are, and a restarted container is NotReady until its first answer."""

from __future__ import annotations

from types import SimpleNamespace

from mlflow_acceptance.fixtures.docker import replicas as module
from mlflow_acceptance.fixtures.docker.replicas import FAILURE_THRESHOLD, DockerReplicaController


def container(started="t0", status="running", restarts=0):
    attrs = {"State": {"StartedAt": started}, "RestartCount": restarts}
    return SimpleNamespace(id="c1", name="server-1", status=status, attrs=attrs)


def controller(monkeypatch, answers, box):
    """A controller over one container (``box[0]``) whose probes answer from ``answers``."""
    ctl = DockerReplicaController(docker_client=None, run_id="r")
    monkeypatch.setattr(ctl, "_containers", lambda: [box[0]])
    monkeypatch.setattr(ctl, "_probe", lambda c: answers.pop(0))
    return ctl


OK, SLOW = (True, "/health 200"), (False, "/health unreachable (ReadTimeout)")


def test_ready_only_after_its_first_answer(monkeypatch):
    box = [container()]
    ctl = controller(monkeypatch, [SLOW, OK], box)
    assert [r.ready for r in ctl.list()] == [False]
    assert [r.ready for r in ctl.list()] == [True]


def test_one_slow_answer_keeps_it_ready_three_in_a_row_do_not(monkeypatch):
    box = [container()]
    ctl = controller(monkeypatch, [OK, SLOW, OK, SLOW, SLOW, SLOW, OK], box)
    seen = [ctl.list()[0] for _ in range(7)]
    assert [r.ready for r in seen] == [True, True, True, True, True, False, True]
    assert f"1 of {FAILURE_THRESHOLD} failures" in seen[1].detail
    assert f"{FAILURE_THRESHOLD} probes in a row failed" in seen[5].detail


def test_a_restart_or_a_stopped_container_is_not_ready(monkeypatch):
    box = [container()]
    ctl = controller(monkeypatch, [OK, SLOW, OK], box)
    assert ctl.list()[0].ready
    box[0] = container(started="t1", restarts=1)  # killed and started again
    assert not ctl.list()[0].ready, "a new start is NotReady until /health answers"
    assert ctl.list()[0].ready
    box[0] = container(started="t1", status="exited")
    assert not ctl.list()[0].ready


def test_the_probe_uses_the_charts_timeout(monkeypatch):
    calls = []
    ctl = DockerReplicaController(docker_client=None, run_id="r")

    def request(name, path, timeout):
        calls.append((path, timeout))
        return SimpleNamespace(status=200)

    monkeypatch.setattr(ctl, "request", request)
    assert ctl._probe(container()) == (True, "/health 200")
    assert calls == [("/health", module.PROBE_TIMEOUT_SECONDS)]


class Stoppable:
    def __init__(self, name, log):
        self.name, self.log = name, log
        self.attrs = {"State": {"ExitCode": 0}}

    def stop(self, timeout):
        self.log.append(f"stop {self.name} (grace {timeout}s)")

    def reload(self):
        pass

    def start(self):
        self.log.append(f"start {self.name}")


def test_roll_replaces_one_replica_at_a_time_gracefully(monkeypatch):
    """SIGTERM with a pod's default grace period, started again, and every replica Ready
    before the next one goes: never two down at once."""
    log: list[str] = []
    boxes = [Stoppable("server-1", log), Stoppable("server-2", log)]
    ctl = DockerReplicaController(docker_client=None, run_id="r")
    monkeypatch.setattr(ctl, "_containers", lambda: boxes)

    def wait_ready(timeout, expected=None):
        log.append(f"wait for {expected} Ready")
        return 1.0

    monkeypatch.setattr(ctl, "wait_ready", wait_ready)
    rollout = ctl.roll(timeout=60)
    steps = rollout.steps
    assert log == [
        f"stop server-1 (grace {module.GRACE_SECONDS}s)",
        "start server-1",
        "wait for 2 Ready",
        f"stop server-2 (grace {module.GRACE_SECONDS}s)",
        "start server-2",
        "wait for 2 Ready",
    ]
    assert module.GRACE_SECONDS == 30
    assert steps[0].startswith("server-1: stopped in ")
    assert "(exit 0)" in steps[0]
    assert len(rollout.stops) == 2
    assert rollout.stops[0] < rollout.stops[1], "each replica's stop, in order"

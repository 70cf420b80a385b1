"""The raw prober (no retries) judged per phase: errors that MLflow's client retries would
hide are failures before the fault and after recovery (audit weakness 1)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow_acceptance.chaos.prober import Call, Phase, phases, tag_round_trip
from mlflow_acceptance.chaos.verdicts import SETTLED_P95_SLACK_MS, prober_held


def call(started, ms=100.0, status=200, error=None, name="GET runs/get"):
    return Call(name, started, started + ms / 1000, status, error)


def run_with(calls, fault=10.0, recovered=20.0, settled=25.0, stopped=True):
    findings: list[str] = []
    return SimpleNamespace(
        name="exp",
        probe_phases=phases(calls, fault, recovered, settled),
        prober_stopped=stopped,
        findings=findings,
        hardening=lambda finding, advice: findings.append(finding),
    )


def steady(extra=()):
    return [call(t) for t in (1, 2, 3, 12, 15, 21, 26, 27)] + list(extra)


def test_calls_fall_into_the_phase_they_overlap():
    calls = [call(1), call(9.95, ms=200), call(15), call(19.9, ms=500), call(21), call(26)]
    before, during, after, settled = phases(calls, fault=10.0, recovered=20.0, settled=25.0)
    assert [c.started for c in before.calls] == [1]
    assert [c.started for c in during.calls] == [9.95, 15, 19.9]
    assert [c.started for c in after.calls] == [21, 26]
    assert [c.started for c in settled.calls] == [26]


def test_a_sound_run_holds():
    prober_held(run_with(steady()), during_errors=0)


def test_a_503_after_recovery_fails_although_a_retrying_client_would_get_through():
    calls = steady([call(28, status=503)])
    with pytest.raises(AssertionError, match=r"failed after the fault.*HTTP 503"):
        prober_held(run_with(calls), during_errors=None)


def test_an_error_before_the_fault_fails():
    with pytest.raises(AssertionError, match="failed before the fault"):
        prober_held(run_with(steady([call(4, status=None, error="ConnectionError")])), None)


def test_errors_during_the_fault_are_bounded_when_a_bound_is_given():
    calls = steady([call(13, status=502), call(14, status=502)])
    prober_held(run_with(calls), during_errors=None)  # an outage: measured only
    prober_held(run_with(calls), during_errors=2)
    with pytest.raises(AssertionError, match=r"2 of 4 raw calls .* failed during the fault"):
        prober_held(run_with(calls), during_errors=1)


def test_latency_not_back_once_settled_is_a_finding_a_slow_start_right_after_is_not():
    run = run_with(steady([call(21, ms=9000), call(22, ms=8000)]))  # before settled
    prober_held(run, during_errors=None)
    assert run.findings == []
    slow = [call(t, ms=100 + SETTLED_P95_SLACK_MS * 2) for t in (28, 29, 30, 31)]
    run = run_with(steady(slow))
    prober_held(run, during_errors=None)  # no failure: latency is reported apart
    assert len(run.findings) == 1
    assert "exp: latency did not come back: raw calls had a p95 of 4100 ms" in run.findings[0]


def test_the_settled_bound_scales_with_the_steady_state_before_the_fault():
    busy = [call(t, ms=3000) for t in (1, 2, 3)] + [call(t, ms=8500) for t in (26, 27)]
    run = run_with([*busy, call(12), call(21)])
    prober_held(run, during_errors=None)  # 8.5 s <= 3 x 3 s
    assert run.findings == []
    run = run_with([*busy, call(12), call(21), call(28, ms=9500)])
    prober_held(run, None)
    assert "(bound 9000 ms)" in run.findings[0]


def test_no_call_after_recovery_or_a_stuck_prober_fails():
    with pytest.raises(AssertionError, match="no call in the after phase"):
        prober_held(run_with([call(1), call(12)]), during_errors=None)
    with pytest.raises(AssertionError, match="no call in the settled phase"):
        prober_held(run_with([call(1), call(12), call(21)]), during_errors=None)
    with pytest.raises(AssertionError, match="unanswered past its timeout"):
        prober_held(run_with(steady(), stopped=False), during_errors=None)


class FakeHttp:
    """The front door: set-tag stores the value when ``commit`` says so; runs/get reads."""

    def __init__(self) -> None:
        self.tag, self.status, self.commit = None, 200, True

    def post(self, path, json, timeout):
        if self.commit:
            self.tag = json["value"]
        return SimpleNamespace(status_code=self.status)

    def get(self, path, params, timeout):
        tags = [{"key": "acc.probe.seq", "value": self.tag}] if self.tag else []
        body = {"run": {"data": {"tags": tags}}}
        return SimpleNamespace(status_code=200, json=lambda: body)


def test_tag_round_trip_reads_back_what_was_acknowledged():
    send, http = tag_round_trip("r1"), FakeHttp()
    for n in (1, 2):
        c = Call("", 0.0)
        send(http, n, c)
        assert c.error is None
    http.status = 502  # write 3 cut after its commit: reading 3 back is fine
    send(http, 3, Call("", 0.0))
    c = Call("", 0.0)
    send(http, 4, c)
    assert c.error is None
    assert c.name == "GET runs/get"
    http.status, http.commit = 200, False  # write 5 acknowledged but never committed
    send(http, 5, Call("", 0.0))
    c = Call("", 0.0)
    send(http, 6, c)
    assert c.error == "read acc.probe.seq='3' after write 5 was acked"


def test_phase_p95_and_max_are_none_without_calls():
    assert Phase("after", []).p95_ms is None
    assert Phase("after", []).max_ms is None
    assert Phase("during", [call(1, ms=300), call(2, ms=15000)]).max_ms == 15000


def test_a_call_counts_as_cut_only_if_its_replica_had_it_before_the_stop():
    """Judging a rolling restart: a call in flight over a second before a replica was told
    to stop reached it (a graceful replica answers it); one sent later went to a replica
    already stopping (the front door's routing, a hardening finding)."""
    from mlflow_acceptance.chaos.prober import Call
    from mlflow_acceptance.chaos.test_rollout import in_flight_at_a_stop

    stops = [100.0, 150.0]
    assert in_flight_at_a_stop(Call("PUT slow", started=96.0, ended=101.0), stops)
    assert in_flight_at_a_stop(Call("PUT slow", started=148.5, ended=153.0), stops)
    assert not in_flight_at_a_stop(Call("POST sent late", started=100.2, ended=102.0), stops)
    assert not in_flight_at_a_stop(Call("POST just before", started=99.5, ended=101.0), stops)
    assert not in_flight_at_a_stop(Call("GET done before", started=95.0, ended=99.9), stops)

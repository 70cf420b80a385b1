"""SLO gates over locust 2.47's CSV files: what passes, what breaches, and the one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_acceptance.load import slo

DATA = Path(__file__).parent / "data" / "load"


def test_reads_every_row_with_aggregated_last():
    stats = slo.read_stats(DATA / "stats_pass.csv")
    assert [row.name for row in stats][-1] == "Aggregated"
    upload = next(row for row in stats if row.name == "artifact upload")
    assert (upload.method, upload.requests, upload.failures, upload.p95_ms) == ("PUT", 61, 0, 160)
    assert slo.aggregated(stats).rps == pytest.approx(17.15)


def test_healthy_run_meets_default_slos():
    stats = slo.read_stats(DATA / "stats_pass.csv")
    breaches = slo.evaluate(stats, slo.SloPolicy(min_rps=10))
    assert breaches == []
    assert slo.verdict(breaches) == "SLOs met"


def test_setup_requests_are_not_latency_gated():
    # setup: experiments/get-by-name took 1.8 s once; that is not a p95 breach
    stats = slo.read_stats(DATA / "stats_pass.csv")
    assert slo.evaluate(stats, slo.SloPolicy(p95_ms=300, p99_ms=1000)) == []


def test_breaching_run_names_each_breach():
    stats = slo.read_stats(DATA / "stats_breach.csv")
    breaches = slo.evaluate(stats, slo.SloPolicy(min_rps=10))
    assert breaches[0] == ("failure ratio 3.92% > 1.00% (8/204; most in artifact upload: 6)")
    assert "p95 of runs/log-batch 8300 ms > 1000 ms" in breaches
    assert "p99 of runs/create 4500 ms > 2500 ms" in breaches
    assert "p95 of runs/search 910 ms > 1000 ms" not in breaches
    assert breaches[-1] == "throughput 6.8 RPS < 10 RPS"
    line = slo.verdict(breaches)
    assert line.startswith("SLO breach: failure ratio 3.92% > 1.00%")
    assert f"(and {len(breaches) - 1} more: see slo.json)" in line
    assert "\n" not in line


def test_per_name_overrides_relax_one_request_type():
    stats = slo.read_stats(DATA / "stats_breach.csv")
    policy = slo.SloPolicy(
        max_failure_ratio=0.05,
        p95_ms=9000,
        p99_ms=10000,
        overrides={"artifact upload": {"p95_ms": 1000}},
    )
    assert slo.evaluate(stats, policy) == ["p95 of artifact upload 1700 ms > 1000 ms"]


def test_locustfile_errors_are_a_breach():
    stats = slo.read_stats(DATA / "stats_pass.csv")
    exceptions = slo.read_exceptions(DATA / "exceptions.csv")
    assert exceptions == [(3, "KeyError('run')")]
    assert slo.evaluate(stats, slo.SloPolicy(), exceptions) == [
        "the locustfile raised 3 errors (first: KeyError('run'))"
    ]
    assert slo.read_exceptions(DATA / "exceptions_none.csv") == []
    assert slo.read_exceptions(DATA / "missing.csv") == []


def test_no_requests_at_all_is_a_breach(tmp_path):
    header = (DATA / "stats_pass.csv").read_text().splitlines()[0]
    empty = tmp_path / "stats.csv"
    empty.write_text(
        header + "\n,Aggregated,0,0,0,0,0,0,0,0,0" + ",N/A" * 11 + "\n", encoding="utf-8"
    )
    assert slo.evaluate(slo.read_stats(empty), slo.SloPolicy()) == ["no requests were made"]


def test_history_keeps_only_aggregated_rows():
    history = slo.read_history(DATA / "stats_history.csv")
    assert [point.users for point in history] == [0, 5, 10, 10, 20, 20]
    assert max(point.rps for point in history) == pytest.approx(17.9)
    assert history[0].p95_ms is None
    assert history[-1].total_requests == 80


@pytest.mark.parametrize(
    ("values", "default", "per_name"),
    [
        (None, None, {}),
        (["800"], 800.0, {}),
        (["800", "artifact upload=2000"], 800.0, {"artifact upload": 2000.0}),
        (["setup: a=b=300"], None, {"setup: a=b": 300.0}),
    ],
)
def test_latency_option(values, default, per_name):
    assert slo.latency_option(values, "p95_ms") == (default, per_name)


@pytest.mark.parametrize(
    ("value", "message"),
    [("fast", "--p95-ms 'fast' is not milliseconds"), ("x=0", "--p95-ms 'x=0' must be above 0")],
)
def test_latency_option_rejects(value, message):
    with pytest.raises(slo.SloConfigError, match=message):
        slo.latency_option([value], "p95_ms")

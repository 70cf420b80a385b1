"""Reports: every run writes reports/<run-id>/ with JUnit XML and summary.json, and no secret."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from mlflow_acceptance.fixtures.core import redaction
from mlflow_acceptance.fixtures.core.reporting import make_run_dir

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """
import pytest
from mlflow_acceptance.fixtures.core.redaction import register

@pytest.mark.smoke
def test_passes(measure):
    measure("demo.recovery_seconds", 12.5)

def test_fails():
    register("hunter2-secret")
    assert 1 == 2, "expected 1, saw 2 (password hunter2-secret)"

def test_skips():
    pytest.skip("no autoscaler on the local target")

@pytest.mark.xfail(reason="known gap")
def test_xfails():
    assert False

@pytest.mark.hardening
def test_hardening_fails():
    assert False, "no passphrase of its own: set MLFLOW_CRYPTO_KEK_PASSPHRASE"
"""


@pytest.fixture
def finished_run(pytester: pytest.Pytester):
    pytester.makepyfile(test_sample=SAMPLE)
    pytester.makeini("[pytest]\nmarkers =\n    smoke: smoke\n    hardening: hardening\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "mlflow_acceptance.fixtures.plugin",
        "--reports-dir",
        str(pytester.path / "reports"),
    )
    return result, pytester.path / "reports"


@pytest.fixture(autouse=True)
def _pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def test_summary_lists_every_test_with_outcome_reason_and_measurements(finished_run):
    result, reports = finished_run
    assert result.ret == 1
    summary = json.loads((reports / "latest" / "summary.json").read_text())
    by_name = {t["nodeid"].split("::")[1]: t for t in summary["tests"]}
    assert by_name["test_passes"]["outcome"] == "passed"
    assert by_name["test_passes"]["markers"] == ["smoke"]
    assert by_name["test_passes"]["measurements"] == {"demo.recovery_seconds": 12.5}
    assert by_name["test_fails"]["outcome"] == "failed"
    assert "expected 1, saw 2" in by_name["test_fails"]["message"]
    assert by_name["test_skips"]["outcome"] == "skipped"
    assert by_name["test_skips"]["skip_reason"] == "no autoscaler on the local target"
    assert by_name["test_xfails"]["outcome"] == "xfailed"
    assert summary["measurements"] == {"demo.recovery_seconds": 12.5}
    assert summary["counts"]["passed"] == 1
    assert summary["counts"]["failed"] == 2
    assert summary["exit_status"] == 1


def test_hardening_failures_are_reported_apart_from_functional_ones(finished_run):
    result, reports = finished_run
    summary = json.loads((reports / "latest" / "summary.json").read_text())
    assert summary["functional_failures"] == 1
    [entry] = summary["hardening_failures"]
    assert entry["check"].endswith("::test_hardening_fails")
    assert "set MLFLOW_CRYPTO_KEK_PASSPHRASE" in entry["message"]
    result.stdout.fnmatch_lines(
        [
            "*hardening checks failed (choices a stock chart does not make)*",
            "*test_hardening_fails*",
        ]
    )


def test_junit_xml_is_written_next_to_the_summary(finished_run):
    _, reports = finished_run
    suite = ET.parse(reports / "latest" / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "5"
    assert suite.get("failures") == "2"
    assert suite.get("skipped") == "2"


def test_no_secret_reaches_any_report_file(finished_run):
    _, reports = finished_run
    for path in (reports / "latest").rglob("*"):
        if path.is_file():
            assert "hunter2-secret" not in path.read_text(errors="replace"), path


def test_latest_points_at_the_newest_run(tmp_path):
    make_run_dir(tmp_path, "run-1")
    make_run_dir(tmp_path, "run-2")
    assert (tmp_path / "latest").resolve() == (tmp_path / "run-2").resolve()


def test_redaction_covers_url_encoded_forms(tmp_path):
    redaction.register("p@ss w0rd!")
    text = "mysql+pymysql://u:p%40ss%20w0rd%21@db/mlflow and p@ss w0rd! and p%40ss+w0rd%21"
    assert redaction.redact(text) == "mysql+pymysql://u:***@db/mlflow and *** and ***"
    (tmp_path / "log.txt").write_text(text)
    assert redaction.scrub_tree(tmp_path) == [tmp_path / "log.txt"]
    assert "w0rd" not in (tmp_path / "log.txt").read_text()

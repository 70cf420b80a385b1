"""`nox -s prove -- ...`: which arguments name breaks and which go on to pytest, and what
counts as catching a break: a failure whose message names the cause."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from mlflow_acceptance.fixtures import prove
from mlflow_acceptance.fixtures.core.pytest_args import split_positional
from mlflow_acceptance.fixtures.prove import check_line, main
from mlflow_acceptance.fixtures.registry import value_flags
from mlflow_acceptance.fixtures.targets.local.breaks import Catch


@pytest.mark.parametrize(
    ("argv", "names", "extra"),
    [
        ([], [], []),
        (["--offline", "legacy-tls"], ["legacy-tls"], ["--offline"]),
        (
            ["--replicas", "3", "no-hsts", "--object-store", "fake-gcs", "-k", "redirect"],
            ["no-hsts"],
            ["--replicas", "3", "--object-store", "fake-gcs", "-k", "redirect"],
        ),
        (["no-proxy", "-x", "small-db"], ["no-proxy", "small-db"], ["-x"]),
    ],
)
def test_option_values_stay_with_their_options(argv, names, extra):
    assert split_positional(argv, value_flags()) == (names, extra)


def test_an_unknown_break_is_one_line_before_anything_starts(capsys):
    assert main(["--offline", "legacy-tsl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown break legacy-tsl")
    assert "\n" not in err


HSTS = "suites/test_tls.py::test_hsts_is_sent"


class FakePytest:
    """Stands in for the pytest run of a break: writes the summary.json it would have."""

    tests: ClassVar[list[dict]] = []

    def __init__(self, command: list[str], **_: object) -> None:
        reports = Path(command[command.index("--reports-dir") + 1])
        run = reports / "20260101-000000-abcd"
        run.mkdir(parents=True)
        summary = {"run_id": run.name, "tests": self.tests}
        (run / "summary.json").write_text(json.dumps(summary))
        (reports / "latest").symlink_to(run.name)
        self.returncode = 1

    def __enter__(self) -> FakePytest:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode


def record(nodeid: str, outcome: str, message: str | None = None) -> dict:
    """One test as summary.json lists it."""
    return {"nodeid": nodeid, "outcome": outcome, "message": message, "skip_reason": None}


@pytest.mark.parametrize(
    ("tests", "caught", "missed"),
    [
        (
            [record(HSTS, "failed", "AssertionError: no strict-transport-security HEADER | x")],
            "AssertionError: no strict-transport-security HEADER | x",
            None,
        ),
        (
            [record(HSTS, "failed", "requests.exceptions.ConnectTimeout: front door")],
            None,
            "failed for another reason: requests.exceptions.ConnectTimeout: front door",
        ),
        ([record(HSTS, "passed")], None, "did not fail (passed)"),
        (
            [record(HSTS, "error", "TargetError: the stack did not come up")],
            None,
            "errored in setup or teardown: TargetError: the stack did not come up",
        ),
        # Another test whose name starts with the check's is not the check.
        (
            [record(HSTS + "_twice", "failed", "no Strict-Transport-Security header")],
            None,
            "did not fail (not run)",
        ),
    ],
)
def test_a_break_is_caught_only_by_a_failure_naming_its_cause(
    monkeypatch, tmp_path, tests, caught, missed
):
    monkeypatch.setattr(FakePytest, "tests", tests)
    monkeypatch.setattr(prove.subprocess, "Popen", FakePytest)
    outcome = prove.run_break("no-hsts", [], tmp_path)
    json.dumps(outcome)  # what prove.json holds
    if caught:
        assert outcome["missed"] == {}
        assert outcome["caught"][HSTS]["nodeid"] == HSTS
        assert outcome["caught"][HSTS]["message"] == caught
        assert check_line(HSTS, outcome) == f"caught by {HSTS}: {caught}"
    else:
        assert outcome["caught"] == {}
        assert outcome["missed"] == {HSTS: missed}
        assert check_line(HSTS, outcome) == f"MISSED: {HSTS} {missed}"


def test_any_parameter_or_test_of_a_check_may_catch_it_with_any_of_its_words():
    by_file = Catch("chaos/test_pod_kill.py", ("RESOURCE_DOES_NOT_EXIST", "writes were lost"))
    tests = [
        record("chaos/test_pod_kill.py::test_kill_one_replica", "failed", "took 200s"),
        record(
            "chaos/test_pod_kill.py::test_repeated_kills",
            "failed",
            "3 acknowledged writes were lost",
        ),
    ]
    verdict = prove.judge(by_file, tests)
    assert verdict["caught"]
    assert verdict["nodeid"] == "chaos/test_pod_kill.py::test_repeated_kills"
    legacy = Catch("suites/test_tls.py::test_legacy_tls_versions_are_refused", "accepted a TLSv1")
    tests = [
        record(f"{legacy.check}[TLSv1]", "skipped"),
        record(f"{legacy.check}[TLSv1_1]", "failed", "Failed: the front door accepted a TLSv1.1"),
    ]
    assert prove.judge(legacy, tests)["nodeid"] == f"{legacy.check}[TLSv1_1]"


def test_fast_runs_only_the_breaks_marked_fast_and_keeps_the_flag_from_pytest(
    monkeypatch, tmp_path
):
    ran = []

    def run_break(name, extra, reports):
        ran.append((name, extra))
        catches = prove.BREAKS[name].catches
        caught = {c.check: {"nodeid": c.check, "message": "named"} for c in catches}
        return {"break": name, "caught": caught, "missed": {}}

    monkeypatch.setattr(prove, "run_break", run_break)
    monkeypatch.chdir(tmp_path)  # prove.json goes beside the caller
    (tmp_path / "reports" / "prove").mkdir(parents=True)
    assert main(["--offline", "--fast"]) == 0
    fast = sorted(name for name, spec in prove.BREAKS.items() if spec.fast)
    assert fast, "no break is marked fast: CI would prove nothing"
    assert [name for name, _ in ran] == fast
    assert {tuple(extra) for _, extra in ran} == {("--offline",)}
    assert len(json.loads((tmp_path / "reports" / "prove" / "prove.json").read_text())) == len(fast)


def test_fast_with_break_names_is_one_line(capsys):
    assert main(["--fast", "no-hsts"]) == 2
    assert capsys.readouterr().err.strip() == "error: give break names or --fast, not both"


def test_jobs_runs_breaks_side_by_side_each_in_its_own_folder(monkeypatch, tmp_path):
    folders = []
    both = threading.Barrier(2, timeout=10)  # the first two breaks must run at once

    def run_break(name, extra, reports):
        folders.append(reports)
        if len(folders) <= 2:
            both.wait()  # BrokenBarrierError, failing the test, if they ran one by one
        caught = {c.check: {"nodeid": c.check, "message": "m"} for c in prove.BREAKS[name].catches}
        return {"break": name, "caught": caught, "missed": {}}

    monkeypatch.setattr(prove, "run_break", run_break)
    monkeypatch.chdir(tmp_path)
    assert main(["--offline", "--fast", "--jobs", "2"]) == 0
    assert len(set(folders)) == len(folders)  # no two breaks share a reports folder
    written = json.loads((tmp_path / "reports" / "prove" / "prove.json").read_text())
    assert [r["break"] for r in written] == sorted(r["break"] for r in written)


@pytest.mark.parametrize("jobs", ["0", "two", ""])
def test_a_bad_jobs_value_is_one_line(capsys, jobs):
    assert main(["--fast", "--jobs", jobs]) == 2
    assert capsys.readouterr().err.startswith("error: --jobs")


def test_each_break_runs_in_a_pytest_that_ctrl_c_and_the_deadline_can_stop(tmp_path, monkeypatch):
    """Started by a job without job control (nohup'd CI), prove inherits SIGINT ignored; its
    pytest must not, or the SIGINT it gets at the deadline is lost and the kill that follows
    leaves the break's stack behind."""
    fake = tmp_path / "python"
    fake.write_text(
        f"#!{sys.executable}\nimport signal\nprint('SIGINT:', signal.getsignal(signal.SIGINT))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(prove.sys, "executable", str(fake))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = prove.run_break("no-hsts", [], tmp_path / "reports")
    finally:
        signal.signal(signal.SIGINT, previous)
    seen = (tmp_path / "reports" / "no-hsts.pytest.log").read_text()
    assert "default_int_handler" in seen, f"the break's pytest started with {seen.strip()}"
    assert result["error"].startswith("pytest exited 0 without a run"), result

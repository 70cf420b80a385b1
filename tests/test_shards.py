"""`local --shards N`: files dealt longest first by earlier times, one child per shard, and
one merged run (summary.json, junit.xml, index.html) whose verdict is every shard's."""

from __future__ import annotations

import json
import os
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from mlflow_acceptance.fixtures import cli, shards
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.core.interrupts import stop_children
from mlflow_acceptance.fixtures.core.timings import CpuFloor
from mlflow_acceptance.fixtures.shards import (
    Runner,
    Shard,
    deal,
    exit_code,
    files_under,
    merge_junit,
    merge_summaries,
    module_seconds,
    without_reports_dir,
)

from mlflow_acceptance import ROOT


def test_files_are_dealt_longest_first_to_the_least_loaded_shard():
    seconds = {"chaos/a.py": 300.0, "chaos/b.py": 250.0, "chaos/c.py": 200.0, "suites/d.py": 60.0}
    dealt = deal([*seconds, "suites/new.py"], seconds, 2)
    assert dealt == [["chaos/a.py", "suites/d.py", "suites/new.py"], ["chaos/b.py", "chaos/c.py"]]
    loads = [sum(seconds.get(f, shards.UNKNOWN_SECONDS) for f in shard) for shard in dealt]
    assert loads == [300.0 + 60.0 + shards.UNKNOWN_SECONDS, 450.0]
    assert deal(["suites/d.py"], seconds, 3) == [["suites/d.py"]]  # no shard left empty


def test_folders_expand_to_their_test_files_and_node_ids_are_kept():
    files = files_under(["chaos", "suites/test_tls.py::test_x", "chaos/test_rollout.py"])
    assert "chaos/test_pod_kill.py" in files
    assert "chaos/conftest.py" not in files
    assert "suites/test_tls.py::test_x" in files
    assert files.count("chaos/test_rollout.py") == 1
    assert files == [*sorted(f for f in files if f.startswith("chaos/")), files[-1]][: len(files)]


def _summary(folder: Path, target: str, timings: list[tuple[str, float]], age: float) -> None:
    folder.mkdir(parents=True)
    lines = [{"what": what, "seconds": s} for what, s in timings]
    path = folder / "summary.json"
    path.write_text(json.dumps({"target": target, "timings": lines}))
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def test_each_module_is_timed_by_the_newest_local_run_that_ran_it(tmp_path):
    _summary(tmp_path / "old", "local", [("chaos/test_rollout.py", 100.0)], age=300)
    _summary(tmp_path / "new", "local", [("[2] chaos/test_rollout.py", 150.0)], age=100)
    _summary(tmp_path / "kind", "kind", [("chaos/test_rollout.py", 900.0)], age=10)
    _summary(tmp_path / "partial", "local", [("suites/test_tls.py", 9.0), ("local start", 20)], 50)
    seconds = module_seconds(tmp_path)
    assert seconds["chaos/test_rollout.py"] == 150.0  # the merged run's "[2] " is read through
    assert seconds["suites/test_tls.py"] == 9.0
    assert "local start" not in seconds
    assert seconds["chaos/test_pod_kill.py"] == shards.MEASURED_SECONDS["chaos/test_pod_kill.py"]


def test_each_shard_writes_under_the_merged_run_whatever_reports_dir_was_given():
    given = ["--offline", "--reports-dir", "out", "-m", "smoke", "--reports-dir=x", "-x"]
    assert without_reports_dir(given) == ["--offline", "-m", "smoke", "-x"]


def _shard_run(tmp_path: Path, number: int, summary: dict | None, code: int) -> Shard:
    run_dir = tmp_path / f"shard{number}"
    run_dir.mkdir()
    if summary is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return Shard(str(number), [f"f{number}.py"], 1.0, tmp_path, code, 10.0 * number, run_dir)


def test_the_merged_summary_holds_every_shards_tests_and_names_collisions(tmp_path):
    first = {
        "counts": {"passed": 2, "failed": 1},
        "functional_failures": 1,
        "hardening_failures": [],
        "tests": [{"nodeid": "a::t1"}, {"nodeid": "a::t2"}, {"nodeid": "a::t3"}],
        "measurements": {"local.startup_seconds": 20.0, "pod_kill.recovery_seconds": 19.0},
        "hardening": [{"check": "", "finding": "open", "advice": "auth"}],
        "notes": ["cleanup: one left"],
        "timings": [{"what": "chaos/a.py", "seconds": 300.0, "cpu_s": 410.0}],
    }
    second = {
        "counts": {"passed": 1, "skipped": 2},
        "functional_failures": 0,
        "hardening_failures": [{"check": "b::h", "message": "no HSTS"}],
        "tests": [{"nodeid": "b::t"}],
        "measurements": {"local.startup_seconds": 25.0},
        "hardening": [{"check": "", "finding": "open", "advice": "auth"}],
        "notes": [],
        "timings": [{"what": "chaos/b.py", "seconds": 200.0, "cpu_s": 380.0}],
    }
    runs = [
        _shard_run(tmp_path, 1, first, 1),
        _shard_run(tmp_path, 2, second, 0),
        _shard_run(tmp_path, 3, None, 4),
    ]
    merged = merge_summaries(runs, "run-1", CpuFloor(900.0, 2, 520.0))
    assert merged["counts"]["passed"] == 3
    assert (merged["counts"]["failed"], merged["counts"]["skipped"]) == (1, 2)
    assert merged["functional_failures"] == 1
    assert merged["hardening_failures"] == [{"check": "b::h", "message": "no HSTS"}]
    assert [t["nodeid"] for t in merged["tests"]] == ["a::t1", "a::t2", "a::t3", "b::t"]
    assert merged["measurements"]["local.startup_seconds"] == 20.0
    assert merged["measurements"]["local.startup_seconds (shard 2)"] == 25.0
    assert len(merged["hardening"]) == 1
    assert "shard 1: cleanup: one left" in merged["notes"]
    assert "shard 3 wrote no summary (exit 4)" in merged["notes"]
    # Each shard's CPU is the machine's, both shards' work included: only the total is kept.
    assert merged["timings"][0] == {"what": "[1] chaos/a.py", "seconds": 300.0, "cpu_s": None}
    assert merged["cpu"]["floor_seconds"] == 450.0
    assert [s["exit_code"] for s in merged["shards"]] == [1, 0, 4]


def test_files_marked_exclusive_get_a_shard_of_their_own_that_runs_first():
    """Seen under two shards on 2 cores: the autoscaling calibration could not drive its
    replicas to 70 % of their CPU for the 20 s it needs while another stack ran."""
    assert shards.exclusive("suites/test_autoscaling.py")
    assert not shards.exclusive("chaos/test_pod_kill.py")
    _, planned, _ = shards.plan("local", ["--offline"], 2)
    assert planned[0].name == shards.ALONE
    assert planned[0].files == ["suites/test_autoscaling.py"]
    assert [s.name for s in planned[1:]] == ["1", "2"]
    assert all("suites/test_autoscaling.py" not in s.files for s in planned[1:])
    _, planned, _ = shards.plan("local", ["--offline", "chaos"], 2)
    assert shards.ALONE not in [s.name for s in planned]  # none asked for: no such phase


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([0, 0], 0), ([0, 5], 0), ([5, 5], 5), ([0, 1], 1), ([None, 0], 1), ([1, 2], 2)],
)
def test_the_run_passes_only_when_every_shard_that_ran_tests_did(codes, expected):
    ran = [Shard(str(n), [], 0.0, Path(), code) for n, code in enumerate(codes)]
    assert exit_code(ran) == expected


def test_junit_of_the_shards_merges_into_one_file_with_each_suite_named(tmp_path):
    runs = []
    for number, cases in ((1, 2), (2, 1)):
        run = _shard_run(tmp_path, number, {}, 0)
        body = "".join(f'<testcase classname="m" name="t{i}"/>' for i in range(cases))
        (run.run_dir / "junit.xml").write_text(
            f'<testsuites><testsuite name="pytest" tests="{cases}">{body}</testsuite></testsuites>'
        )
        runs.append(run)
    merge_junit(runs, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert [(s.get("name"), len(s.findall("testcase"))) for s in root] == [
        ("shard 1: pytest", 2),
        ("shard 2: pytest", 1),
    ]


FAKE_CHILD = textwrap.dedent(
    """
    import json, pathlib, sys
    args = sys.argv[1:]
    reports = pathlib.Path(args[args.index("--reports-dir") + 1])
    files = [a for a in args if a.endswith(".py")]
    run = reports / "run"
    run.mkdir(parents=True)
    (reports / "latest").symlink_to("run")
    failed = any("bad" in f for f in files)
    tests = [{"nodeid": f + "::t", "outcome": "failed" if "bad" in f else "passed"} for f in files]
    counts = {"passed": sum(t["outcome"] == "passed" for t in tests), "failed": int(failed)}
    (run / "summary.json").write_text(json.dumps({"target": "local", "tests": tests,
        "counts": counts, "timings": [{"what": f, "seconds": 1.0} for f in files]}))
    print("ran", " ".join(files), "with", args[0], flush=True)
    sys.exit(1 if failed else 0)
    """
)


def test_the_runner_relays_each_shard_and_finds_its_run(tmp_path, monkeypatch, capsys):
    (tmp_path / "fake_child.py").write_text(FAKE_CHILD)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(shards, "CLI", "fake_child")
    runs = [
        Shard("1", ["good.py"], 1.0, tmp_path / "shards" / "1"),
        Shard("2", ["bad.py", "other.py"], 1.0, tmp_path / "shards" / "2"),
    ]
    Runner("local", ["--offline"], runs).run()
    out = capsys.readouterr().out
    assert "[1] ran good.py with local" in out
    assert "[2] ran bad.py other.py with local" in out
    assert [run.exit_code for run in runs] == [0, 1]
    assert runs[1].run_dir == (tmp_path / "shards" / "2" / "run").resolve()
    assert (runs[0].reports / "pytest.log").read_text().startswith("ran good.py")
    assert exit_code(runs) == 1
    merged = merge_summaries(runs, "r", None)
    assert merged["counts"]["failed"] == 1
    assert merged["counts"]["passed"] == 2


def test_shards_are_for_the_local_target_only_and_bad_counts_are_one_line(capsys):
    assert cli.main(["external", "--shards", "2", "--tracking-uri", "https://x"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --shards runs local stacks side by side; the external target")
    assert "\n" not in err
    assert cli.main(["local", "--shards", "two"]) == 4
    assert capsys.readouterr().err.startswith("error: --shards 'two' is not a whole number")


def test_a_path_that_names_no_tests_is_refused_before_anything_starts():
    with pytest.raises(SetupError, match=r"not a test path: suites/test_nothing\.py"):
        shards.plan("local", ["--offline", "suites/test_nothing.py"], 2)
    options, planned, _ = shards.plan("local", ["--offline", "-m", "smoke", "suites"], 2)
    assert options == ["--offline", "-m", "smoke"]
    assert {f for shard in planned for f in shard.files} == set(files_under(["suites"]))
    assert ROOT.joinpath("suites").is_dir()


SLEEPER = """
import signal, sys, time
def stop(*_):
    print("torn down", flush=True)
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
print("up", flush=True)
time.sleep(60)
"""


def test_a_sigterm_is_passed_on_to_the_shards_as_the_ctrl_c_they_tear_down_on(tmp_path):
    """CI cancelling the job signals this process only: without the SIGINT passed on, the
    shards would run on (and their stacks with them) after the merged run was gone."""
    import subprocess
    import sys

    children = [
        subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "up"
    started = time.monotonic()
    stop_children(children, forward=True, timeout=20)
    assert [child.returncode for child in children] == [130, 130]
    assert all(child.stdout.read().strip() == "torn down" for child in children)
    assert time.monotonic() - started < 10


def test_a_shard_that_ignores_the_stop_is_killed_at_the_deadline():
    import subprocess
    import sys

    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    stubborn += "print('up', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "up"
    stop_children([child], forward=True, timeout=1)
    assert child.returncode == -9

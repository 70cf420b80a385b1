"""The run's HTML report: verdict first, every test, and the timelines drawn from recorded
data; opened in headless Chromium to see that a browser draws what the page claims."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.image import imread
from mlflow_acceptance.chaos.timeline import fault_bands
from mlflow_acceptance.fixtures.core import redaction
from mlflow_acceptance.fixtures.core.html_report import INDEX, write_report
from mlflow_acceptance.fixtures.core.plots import Event, Series, Threshold, timeline
from mlflow_acceptance.fixtures.core.reporting import RunSummary, safe_name

SECRET = "s3cr3t-report-password"
FAILED_TEST = "suites/test_artifact_proxy.py::test_large_artifact_streams_both_ways"
CHROMIUM = shutil.which("chromium")
# As the environment notes launch it: root, no sandbox, no network chatter, a fresh profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run as the plugin leaves it: summary.json, diagnostics, a chaos timeline, a load run."""
    redaction.register(SECRET)
    run = tmp_path / "run-1"
    summary = RunSummary("run-1", run, "local")
    summary.measurements["local.startup_seconds"] = 23.1
    records = {
        "suites/test_health.py::test_health": ("passed", None),
        FAILED_TEST: ("failed", f"HTTP 413 from the front door (password {SECRET})"),
        "suites/test_tls.py::test_hsts": ("skipped", "the target has no plain-HTTP entry"),
        "chaos/test_pod_kill.py::test_kill_one_replica": ("passed", None),
        "suites/test_security.py::test_cors": ("failed", "wildcard CORS origin"),
    }
    for nodeid, (outcome, message) in records.items():
        record = summary.record(nodeid)
        record.outcome, record.duration_s = outcome, 1.5
        if outcome == "skipped":
            record.skip_reason = message
        else:
            record.message = message
    summary.record("suites/test_security.py::test_cors").markers = ["hardening"]
    summary.harden(None, "anonymous writes are accepted", "put MLflow's auth app in front")
    run.mkdir(parents=True)
    summary.write(1)
    diagnostics = run / "diagnostics" / safe_name(FAILED_TEST)
    diagnostics.mkdir(parents=True)
    (diagnostics / "server-1.log").write_text("413 Request Entity Too Large\n")
    seconds = list(range(40))
    events = [Event(10, "fault: kill server-1"), Event(22, "recovered")]
    timeline(
        run / "chaos" / "pod_kill_one.png",
        "pod_kill_one: 0 lost",
        [
            Series(
                "acknowledged",
                seconds,
                [5 if 10 <= t < 14 else 20 for t in seconds],
                "operations/s",
            ),
            Series(
                "client failures", seconds, [1 if t == 11 else 0 for t in seconds], "operations/s"
            ),
            Series("p95 latency", seconds, [None if t == 5 else 40.0 for t in seconds], "ms"),
        ],
        thresholds=[Threshold("ms", 1000, "p95 bound")],
        events=events,
        bands=fault_bands(events, 39),
    )
    # The autoscaling suite's calibration saturates replicas on purpose: not a load verdict.
    (run / "autoscaling").mkdir()
    (run / "autoscaling" / "slo.json").write_text(
        json.dumps({"verdict": "SLO breach", "breaches": ["p95 of runs/create 3600 ms > 1000 ms"]})
    )
    (run / "load").mkdir()
    (run / "load" / "slo.json").write_text(
        json.dumps({"verdict": "SLOs met", "breaches": [], "requests": 900, "rps": 15.0})
    )
    return run


class Elements(HTMLParser):
    """Every element's tag and attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def having(self, tag: str, attribute: str) -> dict[str, dict[str, str]]:
        return {a[attribute]: a for t, a in self.elements if t == tag and attribute in a}


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def test_the_verdict_comes_first_with_each_area_green_or_red(run_dir):
    page = write_report(run_dir).read_text()
    cards = parse(page).having("div", "data-area")
    assert {area: attrs["class"] for area, attrs in cards.items()} == {
        "functional": "verdict fail",
        "hardening": "verdict fail",
        "chaos": "verdict pass",
        "load": "verdict pass",
    }
    assert page.index('data-area="functional"') < page.index("<h2>Tests</h2>")
    assert "1 failed, 1 passed, 1 skipped" in page  # functional: the hardening one apart
    assert "1 of 1 load runs met their SLOs" in page


def test_failures_come_with_their_diagnostics_and_no_secret(run_dir):
    page = write_report(run_dir).read_text()
    assert "HTTP 413 from the front door" in page
    assert "413 Request Entity Too Large" in page  # the failed test's diagnostics file
    assert "the target has no plain-HTTP entry" in page  # a skip says why
    assert SECRET not in page
    assert "put MLflow&#x27;s auth app in front" in page


def test_each_timeline_draws_its_series_thresholds_events_and_fault_bands(run_dir):
    parsed = parse(write_report(run_dir).read_text())
    paths = parsed.having("path", "data-series")
    assert set(paths) == {"acknowledged", "client failures", "p95 latency"}
    assert all(attrs["d"].startswith("M") for attrs in paths.values())
    assert paths["p95 latency"]["d"].count("M") == 2, "a missing value must break the line"
    assert set(parsed.having("rect", "data-band")) == {"kill server-1"}
    assert set(parsed.having("line", "data-event")) == {"fault: kill server-1", "recovered"}
    assert set(parsed.having("g", "data-panel")) == {"operations/s", "ms"}
    assert any(t == "line" and a.get("class") == "threshold" for t, a in parsed.elements)


def test_a_count_is_drawn_as_steps_held_until_the_next_reading(tmp_path):
    """2 Ready replicas, then 3 at t=10: the path stays at 2 until t=10 and rises there,
    never a slope through 2.5 replicas that never existed."""
    series = [
        Series("Ready replicas", [0.0, 10.0, 20.0], [2, 3, 3], "replicas", steps=True),
        Series("CPU", [0.0, 10.0, 20.0], [10.0, 50.0, 30.0], "CPU % of limit"),
    ]
    png = tmp_path / "run" / "t.png"
    png.parent.mkdir()
    timeline(png, "counts", series)
    parsed = parse(write_report(png.parent).read_text())
    paths = parsed.having("path", "data-series")

    def points(d: str) -> list[tuple[float, float]]:
        return [tuple(map(float, c[1:].split(","))) for c in d.split()]

    steps = points(paths["Ready replicas"]["d"])
    assert len(steps) == 5  # each change: along at the old count, then up
    assert steps[1][0] == steps[2][0]  # the rise is vertical, at t=10
    assert steps[1][1] == steps[0][1]  # reached at the old count
    assert len(points(paths["CPU"]["d"])) == 3  # a measurement stays a line


def test_the_page_needs_nothing_from_outside(run_dir):
    parsed = parse(write_report(run_dir).read_text())
    external = [
        (tag, attrs)
        for tag, attrs in parsed.elements
        if tag in ("script", "link", "img", "iframe") or attrs.get("src")
    ]
    assert external == []


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_chromium_draws_the_verdict_and_the_timeline(run_dir, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("MLFLOW_ACC_REQUIRE_CHROMIUM"):  # CI installs it: a skip would hide
            pytest.fail("chromium is not on PATH, though this run requires it (.ci/run)")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    page = write_report(run_dir)
    url = page.resolve().as_uri()
    dom = chromium("--dump-dom", url, cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = parse(dom.stdout)
    assert set(parsed.having("div", "data-area")) == {"functional", "hardening", "chaos", "load"}
    assert {"acknowledged", "client failures", "p95 latency"} <= set(
        parsed.having("path", "data-series")
    )
    shot = tmp_path / "shot.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1100,900", url, cwd=tmp_path)
    assert shot.is_file(), taken.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    drawn = (pixels.sum(axis=2) < 2.9).mean()  # not white
    red_card = ((pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)).mean()
    assert drawn > 0.02, f"only {drawn:.1%} of the screenshot is drawn on"
    assert red_card > 0.001, "the red verdict cards are not on the screen"


def test_the_page_is_named_index_html_in_the_run_folder(run_dir):
    assert write_report(run_dir) == run_dir / INDEX

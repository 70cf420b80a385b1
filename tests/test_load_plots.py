"""The timeline plot writes a PNG with panels per unit, thresholds and event markers."""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core.plots import Event, Series, Threshold, label_rows, timeline

PNG = b"\x89PNG\r\n\x1a\n"


def test_timeline_writes_a_png(tmp_path):
    times = list(range(30))
    path = timeline(
        tmp_path / "nested" / "cpu.png",
        "calibration",
        [
            Series("server-1", times, [60 + t for t in times], "CPU % of limit"),
            Series("server-2", times, [50 + t for t in times], "CPU % of limit"),
            Series("RPS", times, [2.0 * t for t in times], "requests/s"),
            Series("p95", times, [None, *[100.0] * 29], "ms"),
        ],
        thresholds=[Threshold("CPU % of limit", 70, "HPA target 70 %")],
        events=[Event(10, "fault"), Event(20, "recovered")],
    )
    assert path == tmp_path / "nested" / "cpu.png"
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 10_000


def test_timeline_rejects_empty_or_ragged_series(tmp_path):
    with pytest.raises(ValueError, match="at least one series"):
        timeline(tmp_path / "x.png", "t", [])
    with pytest.raises(ValueError, match="has 2 times but 1 values"):
        timeline(tmp_path / "x.png", "t", [Series("a", [0, 1], [1], "u")])


def test_labels_of_events_close_in_time_go_to_separate_rows():
    series = [Series("ops", [0.0, 100.0], [1.0, 1.0], panel="operations/s")]
    events = [
        Event(3.4, "fault: repeated kills start"),
        Event(4.1, "kill server-1"),
        Event(38.0, "kill server-2"),
        Event(4.5, "third close one"),
        Event(67.0, "recovered"),
    ]
    assert label_rows(events, series) == [0, 1, 0, 2, 0]
    assert label_rows([], series) == []

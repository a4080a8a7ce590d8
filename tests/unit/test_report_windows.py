"""Report windows: tiling (DST days), watermarks with grace, the processing-time timeout,
late beliefs, and result records split into runs of consecutive bins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from schemas.beliefs import Sensor
from schemas.report_definition import build_definition
from schemas.reporters import load_parameters
from streams.reports.compute import (
    compute_windows,
    frame_from_arrow,
    frame_from_rows,
    prepare,
    result_records,
)
from streams.reports.windows import ReportWindows, WindowSpec, from_us, to_us

H = 3_600_000_000
T0 = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _hourly(grace=timedelta(minutes=15), timeout=timedelta(minutes=10)) -> ReportWindows:
    return ReportWindows(WindowSpec(timedelta(hours=1), anchor=T0), ("a", "b"), grace, timeout)


def _obs(w: ReportWindows, alias: str, hours: list[float], now=NOW, res_h: float = 0.25):
    starts = np.array([to_us(T0) + int(h * H) for h in hours], dtype=np.int64)
    return w.observe(alias, starts, starts + int(res_h * H), now)


def test_daily_windows_are_local_days_of_23_and_25_hours():
    spec = WindowSpec(timedelta(days=1), "Europe/Amsterdam")
    for day, hours in (("2026-03-29T12:00Z", 23), ("2026-10-25T12:00Z", 25)):
        t = to_us(datetime.fromisoformat(day))
        a, b = spec.bounds(spec.index_of(np.array([t]))[0])
        assert (b - a) / H == hours
        assert from_us(a).astimezone(spec_tz()).hour == 0


def spec_tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Amsterdam")


def test_events_mark_every_window_they_overlap():
    spec = WindowSpec(timedelta(hours=1))
    starts = np.array([0, 5 * H], dtype=np.int64)
    assert spec.overlapping(starts, starts + np.array([2 * H + 1, 0])).tolist() == [0, 1, 2, 5]


def test_a_window_closes_when_every_watermark_passed_its_end_plus_grace():
    w = _hourly()
    _obs(w, "a", [0, 0.25, 0.5, 0.75])
    _obs(w, "b", [0, 0.25, 0.5, 0.75])
    assert w.due(NOW) == []  # watermarks at 01:00 < 01:15
    _obs(w, "a", [1.0])
    assert w.due(NOW) == []  # b still at 01:00
    _obs(w, "b", [1.0])
    assert w.due(NOW) == [0]  # both at 01:15


def test_a_dead_input_closes_the_window_after_the_processing_time_timeout():
    w = _hourly()
    _obs(w, "a", [0, 0.25, 0.5, 0.75, 1.0])  # b never sends
    assert w.due(NOW + timedelta(minutes=9)) == []
    assert w.due(NOW + timedelta(minutes=10)) == [0]
    # no input moved past the window at all: the timeout alone does not close it
    assert _hourly().due(NOW + timedelta(days=1)) == []


def test_a_late_belief_reopens_a_computed_window_which_is_due_at_once_with_a_newer_time():
    w = _hourly(grace=timedelta(0))
    _obs(w, "a", [0, 0.75])
    _obs(w, "b", [0, 0.75])
    assert w.due(NOW) == [0]
    bt1 = w.belief_time(0, NOW)
    w.done(0, bt1)
    assert w.due(NOW) == [] and not w.pending
    _obs(w, "b", [0.25])  # late
    assert w.due(NOW) == [0] and w.late == 1
    bt2 = w.belief_time(0, NOW)  # the clock did not move: still a newer belief
    assert bt2 > bt1


def test_input_arriving_during_a_computation_keeps_the_window_pending():
    w = _hourly(grace=timedelta(0))
    _obs(w, "a", [0.75])
    _obs(w, "b", [0.75])
    version = w.windows[0].version
    _obs(w, "a", [0.5])  # arrives while window 0 is being computed
    w.done(0, NOW, version)
    assert w.due(NOW) == [0]


def test_state_round_trips_through_json_and_continues_where_it_was():
    import json

    w = _hourly(grace=timedelta(0))
    _obs(w, "a", [0, 0.75, 1.0])
    _obs(w, "b", [0, 0.75])
    bt1 = w.belief_time(0, NOW)
    w.done(0, bt1)
    _obs(w, "b", [1.25])  # window 1 open: b's watermark 01:30 < 02:00
    spec, aliases = w.spec, w.aliases
    back = ReportWindows.from_state(
        json.loads(json.dumps(w.to_state())), spec, aliases, w.grace, w.timeout
    )
    assert back.to_state() == w.to_state()
    assert back.watermarks == w.watermarks and back.pending == {1} and back.due(NOW) == []
    assert back.windows[0].last_belief_time == bt1 and back.windows[1].last_input == NOW
    # the open window keeps its progress: the rest of its input closes it
    _obs(back, "a", [2.0])
    _obs(back, "b", [2.0])
    assert back.due(NOW) == [1]
    # a late belief for the computed window is due at once, as a newer belief
    _obs(back, "a", [0.25])
    assert 0 in back.due(NOW) and back.late == 1
    assert back.belief_time(0, NOW) > bt1
    # the processing-time timeout counts from the restored last input
    idle = ReportWindows.from_state(w.to_state(), spec, aliases, w.grace, w.timeout)
    _obs(idle, "a", [2.0])
    assert idle.due(NOW + timedelta(minutes=9)) == []
    assert idle.due(NOW + timedelta(minutes=10)) == [1]


def test_windows_outside_the_reports_start_and_end_are_ignored():
    w = _hourly()
    w.start, w.end = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    assert _obs(w, "a", [0.5, 1.5, 2.5]) == [1]


def test_results_become_one_batch_per_run_of_consecutive_bins():
    sensors = {
        "pv": Sensor(name="pv", unit="kW", event_resolution="PT15M"),
        "out": Sensor(name="out", unit="kWh", event_resolution="P1D", timezone="Europe/Amsterdam"),
    }
    params = load_parameters(
        {"input": [{"name": "pv", "sensor": "pv"}], "output": [{"name": "o", "sensor": "out"}],
         "window": "P1D"}
    )  # fmt: skip
    prep = prepare(build_definition("r", "AggregatorReporter", {}, params), sensors)
    assert prep.parameters.timezone == "Europe/Amsterdam"  # the output sensor's
    idx = pd.DatetimeIndex(
        ["2026-03-28T23:00Z", "2026-03-29T22:00Z", "2026-03-31T22:00Z"], name="event_start"
    )
    recs = result_records(prep, {"out": pd.Series([1.0, 2.0, 3.0], index=idx)}, NOW)
    assert [(r["start"].isoformat(), r["values"]) for r in recs] == [
        ("2026-03-28T23:00:00+00:00", [1.0, 2.0]),
        ("2026-03-31T22:00:00+00:00", [3.0]),
    ]
    assert {r["source"] for r in recs} == {"flexstream-reporter:r"}
    assert {r["resolution_ms"] for r in recs} == {86_400_000}


def test_computing_windows_reports_its_progress_up_to_every_window():
    sensors = {
        "pv": Sensor(name="pv", unit="kW", event_resolution="PT15M"),
        "out": Sensor(name="out", unit="kWh", event_resolution="P1D", timezone="Europe/Amsterdam"),
    }
    start, end = datetime(2026, 3, 27, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)
    idx = pd.date_range(start, end, freq="15min", inclusive="left")
    frame = pd.DataFrame(
        {
            "event_start": idx,
            "event_resolution": pd.Timedelta("15min"),
            "belief_time": idx + pd.Timedelta("15min"),
            "source": "meter",
            "cumulative_probability": 0.5,
            "event_value": 1.0,
        }
    )
    for reporter, config in (("AggregatorReporter", {}), ("PandasReporter", _PANDAS_CLIP)):
        params = load_parameters(
            {"input": [{"name": "pv", "sensor": "pv"}], "output": [{"name": "o", "sensor": "out"}],
             "window": "P1D"}
        )  # fmt: skip
        prep = prepare(build_definition("r", reporter, config, params), sensors)
        windows = prep.spec.between(start, end)  # four local days, one of 23 hours
        calls: list[tuple[int, int]] = []
        results = compute_windows(prep, {"pv": frame}, windows, lambda *a, c=calls: c.append(a))
        assert len(windows) == 4
        assert sorted(w for run in results for w in run.windows if run.series) == windows
        assert calls[0] == (0, 4) and calls[-1] == (4, 4), reporter
        if reporter == "PandasReporter":  # one call per window, one report each
            assert calls == [(i, 4) for i in range(5)]
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)
        assert {n for _, n in calls} == {4}


_PANDAS_CLIP = {
    "required_input": [{"name": "pv", "unit": "kWh"}],
    "required_output": [{"name": "o", "unit": "kWh"}],
    "transformations": [
        {"df_input": "pv", "df_output": "o", "method": "clip", "kwargs": {"lower": 0}}
    ],
}


def test_arrow_results_read_as_the_same_frame_as_json_rows():
    import pyarrow as pa

    rows = [
        ["2026-03-29T00:45:00.000000Z", 900, "2026-03-29T01:00:00.123456Z", "meter", 0.5, 1.5],
        ["2026-03-29T01:00:00.000000Z", 0, "2026-03-29T02:00:00.000000Z", "fc", 0.9, -2.0],
    ]
    table = pa.table(
        {
            "event_start": pa.array(
                pd.to_datetime([r[0] for r in rows], utc=True), pa.timestamp("us", "UTC")
            ),
            "event_resolution": pa.array([r[1] for r in rows], pa.uint32()),
            "belief_time": pa.array(
                pd.to_datetime([r[2] for r in rows], utc=True), pa.timestamp("us", "UTC")
            ),
            "source": pa.array([r[3] for r in rows]).dictionary_encode(),
            "cumulative_probability": pa.array([r[4] for r in rows], pa.float64()),
            "event_value": pa.array([r[5] for r in rows], pa.float64()),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    got = frame_from_arrow(sink.getvalue().to_pybytes())
    pd.testing.assert_frame_equal(got, frame_from_rows(rows))
    pd.testing.assert_frame_equal(frame_from_arrow(b""), frame_from_rows([]))

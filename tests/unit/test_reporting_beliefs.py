"""Belief selection and the time grid: most recent belief, source rule, DST days, resampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reporting_frames import AMS, beliefs, day_hours, local_day

from schemas.errors import InputError
from streams.reports.reporters.beliefs import check_frame, current_values, ranked_values
from streams.reports.reporters.grid import Grid, convert, is_extensive, output_edges


def test_most_recent_belief_per_event_wins_whatever_the_row_order():
    old = beliefs("2026-01-01T00:00Z", [1.0, 2.0], belief_lag="0h")
    new = beliefs("2026-01-01T00:00Z", [10.0], belief_lag="5h")
    frame = pd.concat([new, old]).sample(frac=1.0, random_state=3)
    cur = current_values(frame, "inputs.x")
    assert cur["event_value"].tolist() == [10.0, 2.0]
    assert cur["event_start"].dt.tz is not None


def test_probabilistic_belief_contributes_its_median_and_duplicates_average():
    lo = beliefs("2026-01-01T00:00Z", [1.0], cumulative_probability=0.1)
    mid = beliefs("2026-01-01T00:00Z", [5.0], cumulative_probability=0.5)
    hi = beliefs("2026-01-01T00:00Z", [9.0], cumulative_probability=0.9)
    assert current_values(pd.concat([hi, lo, mid]), "x")["event_value"].tolist() == [5.0]
    dup_a = beliefs("2026-01-01T00:00Z", [4.0])
    dup_b = beliefs("2026-01-01T00:00Z", [6.0])
    assert current_values(pd.concat([dup_a, dup_b]), "x")["event_value"].tolist() == [5.0]


def test_without_chosen_sources_the_most_recent_source_wins_ties_by_name():
    meter = beliefs("2026-01-01T00:00Z", [1.0, 1.0], source="meter", belief_lag="1h")
    fc = beliefs("2026-01-01T00:00Z", [7.0, 7.0], source="forecast", belief_lag="1h")
    fc.loc[1, "belief_time"] += pd.Timedelta("1h")
    cur = current_values(pd.concat([meter, fc]), "x")
    # event 0: same belief time, 'forecast' < 'meter'; event 1: forecast is newer
    assert cur["source"].tolist() == ["forecast", "forecast"]
    meter.loc[0, "belief_time"] += pd.Timedelta("1s")
    cur = current_values(pd.concat([fc, meter]), "x")
    assert cur["source"].tolist() == ["meter", "forecast"]


def test_chosen_sources_are_a_preference_order():
    meter = beliefs("2026-01-01T00:00Z", [1.0], source="meter")
    fc = beliefs("2026-01-01T00:00Z", [7.0, 8.0], source="forecast", belief_lag="9h")
    other = beliefs("2026-01-01T00:00Z", [3.0, 3.0, 3.0], source="other")
    frame = pd.concat([meter, fc, other])
    cur = current_values(frame, "x", sources=["meter", "forecast"])
    assert cur["event_value"].tolist() == [1.0, 8.0]
    assert cur["source"].tolist() == ["meter", "forecast"]


def test_naive_times_and_missing_columns_are_refused_naming_the_input():
    frame = beliefs("2026-01-01T00:00Z", [1.0])
    naive = frame.assign(event_start=frame["event_start"].dt.tz_localize(None))
    with pytest.raises(InputError, match="timezone-aware") as err:
        current_values(naive, "inputs.pv")
    assert err.value.field == "inputs.pv.event_start"
    with pytest.raises(InputError, match="source") as err:
        current_values(frame.drop(columns="source"), "inputs.pv")
    assert err.value.field == "inputs.pv"


@pytest.mark.parametrize(("day", "hours"), [((2026, 3, 29), 23), ((2026, 10, 25), 25)])
def test_daily_bins_follow_local_days_around_dst(day, hours):
    start, end = local_day(*day)
    edges = output_edges(start, end, timedelta(days=1), "Europe/Amsterdam")
    assert (edges[1] - edges[0]) // 3_600_000_000_000 == hours == day_hours(*day)
    grid = Grid.build(start, end, timedelta(days=1), "Europe/Amsterdam", timedelta(minutes=15))
    assert len(grid.slots) - 1 == hours * 4
    assert grid.bin_hours.tolist() == [float(hours)]


def test_daily_windows_must_start_at_local_midnight():
    with pytest.raises(InputError) as err:
        output_edges(
            datetime(2026, 3, 29, tzinfo=UTC),
            datetime(2026, 3, 30, tzinfo=UTC),
            timedelta(days=1),
            "Europe/Amsterdam",
        )
    assert err.value.field == "window_start"


def test_resampling_sums_amounts_and_averages_rates():
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 2, tzinfo=UTC)
    grid = Grid.build(start, end, timedelta(hours=1), "UTC", timedelta(minutes=30))
    frame = current_values(beliefs(start, [1.0, 2.0, 3.0, 5.0], freq="30min"), "x")
    starts = frame["event_start"].astype("int64").to_numpy()
    ends = frame["event_end"].astype("int64").to_numpy()
    values = frame["event_value"].to_numpy()
    slots_sum = grid.resample(starts, ends, values, extensive=True)
    assert grid.to_bins(slots_sum, extensive=True).tolist() == [1 + 2, 3 + 5]
    slots_mean = grid.resample(starts, ends, values, extensive=False)
    assert grid.to_bins(slots_mean, extensive=False).tolist() == [(1 + 2) / 2, (3 + 5) / 2]


def test_upsampling_splits_amounts_and_repeats_rates():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    grid = Grid.build(start, start + timedelta(hours=1), timedelta(hours=1), "UTC", None)
    fine = Grid(
        slots=grid.slots[:1] + np.arange(5) * 900_000_000_000, bins=grid.bins, timezone="UTC"
    )
    s, e = np.array([grid.slots[0]]), np.array([grid.slots[1]])
    assert fine.resample(s, e, np.array([4.0]), extensive=True).tolist() == [1.0] * 4
    assert fine.resample(s, e, np.array([4.0]), extensive=False).tolist() == [4.0] * 4


def test_a_gap_or_nan_makes_the_slot_incomplete():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    grid = Grid.build(start, start + timedelta(hours=2), timedelta(hours=1), "UTC", None)
    frame = current_values(beliefs(start, [1.0, np.nan], freq="30min"), "x")
    starts = frame["event_start"].astype("int64").to_numpy()
    ends = frame["event_end"].astype("int64").to_numpy()
    got = grid.resample(starts, ends, frame["event_value"].to_numpy(), extensive=False)
    assert np.isnan(got).all()  # first hour half NaN, second hour not covered


def test_units_and_flow_conversion():
    hours = np.array([0.25, 1.0])
    assert convert(np.array([2.0, 2.0]), "MW", "kW", hours, "f").tolist() == [2000.0, 2000.0]
    assert convert(np.array([4.0, 4.0]), "kW", "kWh", hours, "f").tolist() == [1.0, 4.0]
    assert convert(np.array([1.0, 1.0]), "MWh", "kW", hours, "f").tolist() == [4000.0, 1000.0]
    with pytest.raises(InputError) as err:
        convert(np.array([1.0]), "kW", "EUR", hours[:1], "output_units.cost")
    assert err.value.field == "output_units.cost"
    assert is_extensive("kWh") and is_extensive("EUR") and not is_extensive("kW")
    assert not is_extensive("EUR/MWh") and not is_extensive("%")


def test_local_day_helper_matches_zoneinfo():
    start, end = local_day(2026, 10, 25)
    assert start.tzinfo is AMS and (end - start) == timedelta(days=1)
    assert (end.astimezone(UTC) - start.astimezone(UTC)) == timedelta(hours=25)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 200),  # quarter-hour of the event
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from(["meter", "forecast"]),
            st.sampled_from([0.1, 0.5, 0.9]),
        ),
        max_size=40,
        unique_by=lambda t: t[0],
    ),
    st.sampled_from([None, ["meter"], ["forecast", "meter"]]),
)
def test_one_belief_per_event_gives_what_the_full_rule_gives(rows, sources):
    t0 = pd.Timestamp("2026-03-29T00:00Z")
    frame = pd.DataFrame(
        {
            "event_start": pd.to_datetime(
                [t0 + pd.Timedelta(minutes=15 * q) for q, *_ in rows], utc=True
            ),
            "event_resolution": pd.Timedelta(minutes=15),
            "belief_time": pd.to_datetime(
                [t0 + pd.Timedelta(minutes=15 * q + 15) for q, *_ in rows], utc=True
            ),
            "source": [s for *_, s, _ in rows],
            "cumulative_probability": [p for *_, p in rows],
            "event_value": [v for _, v, *_ in rows],
        }
    )
    checked = check_frame(frame, "x")
    if sources is not None:
        checked = checked[checked["source"].isin(sources)]
    pd.testing.assert_frame_equal(
        current_values(frame, "x", sources), ranked_values(checked, sources)
    )

"""Long segment lists, point lists and series read as arrays give what a per-item reader gives.

The reference readers below take one segment or point at a time, the plain way;
``SeriesReader`` must agree with them value for value (``nan`` included) and
raise the same message naming the same field.
"""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from schemas.errors import InputError
from schemas.flex_problem import TimeGrid
from schemas.flex_request import parse_site_problem
from schemas.flex_series import SeriesReader, magnitude, magnitudes, step_times
from schemas.segments import paint

START = datetime(2024, 5, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def reference_steps(reader, segments, field, target, default=np.nan, overlap="first", bare=None):
    """One segment at a time: the first listed wins, or the running min/max."""
    grid = reader.grid
    n = grid.n
    out = np.full(n, np.nan)
    starts = np.array([(grid.step_start(k) - grid.start).total_seconds() for k in range(n)])
    for i, seg in enumerate(segments):
        f = f"{field}[{i}]"
        lo, hi = reader.segment_bounds(seg, f)
        v = magnitude(seg.get("value"), target, f"{f}.value", bare)
        a = (lo - grid.start).total_seconds()
        b = (hi - grid.start).total_seconds()
        hit = (starts >= a) & (starts < b)
        out[hit & np.isnan(out)] = v
        if overlap == "min":
            out[hit] = np.minimum(out[hit], v)
        elif overlap == "max":
            out[hit] = np.maximum(out[hit], v)
    return np.where(np.isnan(out), default, out)


def reference_soc_points(reader, points, field, target, combine, off_grid=None):
    """One point at a time onto the boundaries; points between them go to ``off_grid``."""
    grid = reader.grid
    out = np.full(grid.n + 1, np.nan)
    res = grid.resolution.total_seconds()
    for i, point in enumerate(points):
        f = f"{field}[{i}]"
        v = magnitude(point.get("value"), target, f"{f}.value")
        when = datetime.fromisoformat(point["datetime"].replace("Z", "+00:00"))
        pos = (when - grid.start).total_seconds() / res
        if abs(pos - round(pos)) > 1e-6:
            if off_grid is None:
                raise AssertionError("reference: off-grid point without off_grid")
            if 0 < pos < grid.n:
                off_grid.append((pos, v))
            continue
        k = int(round(pos))
        if not 0 <= k <= grid.n:
            continue
        old = out[k]
        if np.isnan(old):
            out[k] = v
        elif combine == "max":
            out[k] = max(old, v)
        elif combine == "min":
            out[k] = min(old, v)
        elif abs(old - v) > 1e-9:
            raise InputError("two different targets", f)
    return out


def random_segments(rng, n, count, units=("EUR/MWh",), nan_share=0.0):
    """Overlapping segments with starts on and off the grid, ends or durations, mixed offsets."""
    tz = timezone(timedelta(hours=2))
    segs = []
    for _ in range(count):
        start = START + timedelta(minutes=int(rng.integers(-60, n * 15 + 60)))
        if rng.random() < 0.3:
            start += timedelta(seconds=int(rng.integers(1, 60)))
        length = timedelta(minutes=int(rng.integers(0, 6 * 60)))
        seg = {"start": (start.astimezone(tz) if rng.random() < 0.5 else start).isoformat()}
        if rng.random() < 0.5:
            seg["end"] = (start + length).isoformat()
        else:
            seg["duration"] = f"PT{max(length.total_seconds() // 60, 1):.0f}M"
        value = float(np.round(rng.normal(50, 40), 3))
        unit = units[int(rng.integers(len(units)))]
        seg["value"] = "nan kW" if rng.random() < nan_share else f"{value} {unit}"
        segs.append(seg)
    return segs


def per_step_segments(prices, fmt="{:.3f} EUR/MWh"):
    return [
        {"start": (START + k * QUARTER).isoformat(), "duration": "PT15M", "value": fmt.format(p)}
        for k, p in enumerate(prices)
    ]


def assert_same(a, b):
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


def test_a_year_of_quarter_hour_prices_reads_as_before(no_per_segment_reading):
    rng = np.random.default_rng(1)
    n = 35040
    prices = rng.normal(80, 30, n)
    reader = SeriesReader(TimeGrid(START, QUARTER, n))
    segs = per_step_segments(prices)
    got = reader.steps(segs, "consumption-price", "EUR/kWh")
    assert_same(got, reference_steps(reader, segs, "consumption-price", "EUR/kWh"))
    np.testing.assert_allclose(got, np.round(prices, 3) / 1000)


@pytest.fixture
def no_per_segment_reading(monkeypatch):
    """Fail if a segment list of the usual forms is read one segment at a time."""

    def refuse(*args):
        raise AssertionError("read one segment at a time")

    monkeypatch.setattr(SeriesReader, "_segments", refuse)


@pytest.mark.parametrize("overlap", ["first", "min", "max"])
@pytest.mark.parametrize("seed", range(6))
def test_overlapping_segments_settle_as_the_per_segment_reader(
    overlap, seed, no_per_segment_reading
):
    rng = np.random.default_rng(seed)
    n = 96
    reader = SeriesReader(TimeGrid(START, QUARTER, n))
    units = ("kW", "MW", "W") if overlap != "first" else ("kW", "MW")
    segs = random_segments(rng, n, 60, units, nan_share=0.1 if seed % 2 else 0.0)
    got = reader.steps(segs, "site-power-capacity", "kW", overlap=overlap)
    want = reference_steps(reader, segs, "site-power-capacity", "kW", overlap=overlap)
    assert_same(got, want)


def test_prices_in_several_units_and_a_default_where_no_segment_applies(
    no_per_segment_reading,
):
    rng = np.random.default_rng(7)
    n = 200
    reader = SeriesReader(TimeGrid(START, QUARTER, n))
    segs = random_segments(rng, n, 30, ("EUR/MWh", "EUR/kWh", "ct/kWh"))
    got = reader.steps(segs, "consumption-price", "EUR/kWh", default=-1.0)
    assert_same(got, reference_steps(reader, segs, "consumption-price", "EUR/kWh", -1.0))


def test_percentages_and_bare_numbers_per_step():
    n = 500
    reader = SeriesReader(TimeGrid(START, QUARTER, n))
    eff = np.linspace(0.8, 1.0, n)
    for fmt in ("{:.2%}", "{:.4f}"):
        segs = per_step_segments(eff, fmt)
        assert_same(
            reader.steps(segs, "charging-efficiency", ""),
            reference_steps(reader, segs, "charging-efficiency", ""),
        )
    numbers = [
        dict(seg, value=float(e)) for seg, e in zip(per_step_segments(eff), eff, strict=True)
    ]
    np.testing.assert_array_equal(reader.steps(numbers, "charging-efficiency", ""), eff)


def test_magnitudes_match_magnitude_value_for_value():
    values = ["2 MW", "2MW", " 3.5e1  kW ", "95%", "0.5", 7, 2.5, "-1.5 W", "1 kW*h/h", ".5 kW"]
    want = np.array([magnitude(v, "kW" if "%" not in str(v) else "", "x") for v in values[:3]])
    np.testing.assert_array_equal(magnitudes(values[:3], "kW", lambda i: "x"), want)
    dimensionless = ["95%", "0.5", 7, 2.5, "50 %"]
    np.testing.assert_array_equal(
        magnitudes(dimensionless, "", lambda i: "x"),
        [magnitude(v, "", "x") for v in dimensionless],
    )
    powers = ["2 MW", "-1.5 W", "1 kW*h/h", ".5 kW", 3]
    np.testing.assert_array_equal(
        magnitudes(powers, "kW", lambda i: "x", bare="kW"),
        [magnitude(v, "kW", "x", "kW") for v in powers],
    )


def test_numbers_written_as_text_are_read_as_arrays(monkeypatch):
    """Plain numbers as text ("3.5", a COP per step) take the array path, not one parse each."""
    values = [f"{v:.3f}" for v in np.linspace(2.0, 4.0, 500)] + [" 1e-2 ", "+.5", "-7."]
    want = [magnitude(v, "", "x") for v in values]

    def refuse(*args):
        raise AssertionError("read one value at a time")

    monkeypatch.setattr("schemas.flex_series.magnitude", refuse)
    np.testing.assert_array_equal(magnitudes(values, "", lambda i: "x"), want)


@pytest.mark.parametrize(
    ("index", "segment", "field"),
    [
        (3, {"start": "2024-05-01T01:00", "duration": "PT1H", "value": "1 kW"}, "[3].start"),
        (4, {"start": "2024-05-01T01:00Z", "duration": "P1M", "value": "1 kW"}, "[4].duration"),
        (5, {"start": "2024-05-01T01:00Z", "value": "1 kW"}, "[5]"),
        (6, {"start": "2024-05-01T01:00Z", "end": "2024-05-01T00:00Z", "value": "1"}, "[6]"),
        (7, {"start": "2024-05-01T01:00Z", "duration": "PT1H", "value": "1 EUR"}, "[7].value"),
        (8, {"start": "2024-05-01T01:00Z", "duration": "PT1H"}, "[8].value"),
        (9, ["2024-05-01T01:00Z"], "[9]"),
    ],
)
def test_the_first_bad_segment_is_named_as_before(index, segment, field):
    n = 2000
    reader = SeriesReader(TimeGrid(START, QUARTER, n))
    segs = per_step_segments(np.arange(n), "{} kW")
    segs[index] = segment
    segs[index + 100] = {"start": "nonsense", "duration": "PT1H", "value": "1 kW"}
    with pytest.raises(InputError) as got:
        reader.steps(segs, "site-power-capacity", "kW", overlap="min")
    with pytest.raises(InputError) as want:
        reference_steps(reader, segs, "site-power-capacity", "kW", overlap="min")
    assert str(got.value) == str(want.value)
    assert f"site-power-capacity{field}" in str(got.value)


@pytest.mark.parametrize("combine", ["max", "min", "equal"])
def test_long_soc_point_lists_and_off_grid_points_read_as_before(combine):
    rng = np.random.default_rng(3)
    n = 3000
    reader = SeriesReader(TimeGrid(START, QUARTER, n))
    minutes = rng.integers(-100, n * 15 + 100, 4000)
    if combine == "equal":
        minutes = np.unique(minutes)
    points = [
        {
            "datetime": (START + timedelta(minutes=int(m))).isoformat(),
            "value": f"{float(m) / 10 if combine == 'equal' else rng.normal(40, 10):.3f} kWh",
        }
        for m in minutes
    ]
    got_off, want_off = [], []
    got = reader.soc_points(points, "soc-minima", "kWh", combine, None, got_off)
    want = reference_soc_points(reader, points, "soc-minima", "kWh", combine, want_off)
    assert_same(got, want)
    assert got_off == want_off and len(got_off) > 0


def test_conflicting_targets_in_a_long_list_are_reported_as_before():
    n = 1000
    reader = SeriesReader(TimeGrid(START, QUARTER, n))
    points = [{"datetime": (START + k * QUARTER).isoformat(), "value": "10 kWh"} for k in range(n)]
    points.append({"datetime": (START + 5 * QUARTER).isoformat(), "value": "11 kWh"})
    with pytest.raises(InputError, match=r"soc-targets\[1000\]: two different targets"):
        reader.soc_points(points, "soc-targets", "kWh", "equal")


def test_a_long_sensor_series_and_a_list_of_quantities():
    n = 5000
    grid = TimeGrid(START, QUARTER, n)
    values = np.arange(n + 3, dtype=float)
    series = pd.Series(values, index=pd.date_range(START - QUARTER, periods=n + 3, freq=QUARTER))
    series.attrs["unit"] = "MW"
    reader = SeriesReader(grid, lambda ref, field: series)
    np.testing.assert_array_equal(
        reader.steps({"sensor": 1}, "inflexible-consumption", "kW"), values[1 : n + 1] * 1000
    )
    as_list = [f"{v} MW" for v in values]
    reader = SeriesReader(grid, lambda ref, field: as_list)
    np.testing.assert_array_equal(
        reader.steps({"sensor": 1}, "inflexible-consumption", "kW"),
        [magnitude(v, "kW", "x") for v in as_list[:n]],
    )


@pytest.mark.parametrize(
    "start",
    [
        START,
        datetime(2024, 5, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 3, 30, tzinfo=ZoneInfo("Europe/Amsterdam")),
    ],
)
def test_step_times_are_the_grid_step_starts(start):
    grid = TimeGrid(start, QUARTER, 400)
    want = pd.DatetimeIndex([grid.step_start(k) for k in range(400)])
    assert (step_times(grid, 400) == want).all()


def test_paint_chunks_long_overlapping_lists():
    n = 3000
    lo = np.zeros(900, dtype=np.int64)
    hi = np.full(900, n * 60_000_000, dtype=np.int64)
    values = np.arange(900, 0, -1, dtype=float)
    np.testing.assert_array_equal(paint(lo, hi, values, n, 60_000_000, "first"), 900.0)
    np.testing.assert_array_equal(paint(lo, hi, values, n, 60_000_000, "min"), 1.0)


def test_a_year_json_request_parses_to_the_same_problem_as_stated_per_step():
    n = 8760
    prices = np.round(np.random.default_rng(0).normal(80, 30, n), 3)
    ctx = {"consumption-price": per_step_segments(prices)}
    fm = {"sensor": "b", "soc-at-start": "1 kWh", "soc-max": "9 kWh", "power-capacity": "3 kW"}
    p = parse_site_problem(fm, ctx, START, f"PT{n * 15}M", "PT15M")
    reader = SeriesReader(p.grid)
    want = reference_steps(reader, ctx["consumption-price"], "consumption-price", "EUR/kWh")
    np.testing.assert_array_equal(p.consumption_price, want)
    np.testing.assert_allclose(p.consumption_price, prices / 1000, rtol=1e-12)

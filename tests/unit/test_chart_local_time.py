"""Charts in the sensors' timezone: wall-clock text, DST days, ticks, zone choice, bars per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from reporting_frames import beliefs

from schemas.errors import InputError
from streams.cli import main
from streams.cli.chart_html import page
from streams.cli.chart_time import MAX_TICKS, chart_zone, label_expr, local_ticks
from streams.cli.charts import IMAGE_WIDTH, _fixed_width, build_chart, chart_data

AMS = "Europe/Amsterdam"
#: Local days of Amsterdam around the DST changes of 2026, as UTC instants.
AUTUMN_DAY = "2026-10-24T22:00Z"  # Sun 25 Oct: 25 hours
SPRING_DAY = "2026-03-28T23:00Z"  # Sun 29 Mar: 23 hours


def _hours(data: pd.DataFrame) -> list[str]:
    return [t[11:13] for t in data["local_start"]]


def test_the_25_hour_day_keeps_every_hour_once_in_order():
    data = chart_data({"pv": beliefs(AUTUMN_DAY, range(26))}, {"pv": "kW"}, timezone=AMS)
    assert list(data["event_value"]) == list(range(26))  # nothing dropped or doubled
    starts = pd.to_datetime(data["event_start"], utc=True)
    assert starts.is_monotonic_increasing and starts.is_unique
    assert (starts.diff().dropna() == pd.Timedelta("1h")).all()  # true instants, no gap
    assert _hours(data) == ["00", "01", "02", "02", *(f"{h:02d}" for h in range(3, 24)), "00"]
    assert data["local_start"][2] == "2026-10-25 02:00 CEST"
    assert data["local_start"][3] == "2026-10-25 02:00 CET"  # the repeated hour, told apart
    assert data["local_start"].is_unique


def test_the_23_hour_day_has_no_2_oclock_and_no_gap():
    data = chart_data({"pv": beliefs(SPRING_DAY, range(24))}, {"pv": "kW"}, timezone=AMS)
    assert list(data["event_value"]) == list(range(24))
    starts = pd.to_datetime(data["event_start"], utc=True)
    assert (starts.diff().dropna() == pd.Timedelta("1h")).all()
    assert _hours(data) == ["00", "01", *(f"{h:02d}" for h in range(3, 24)), "00"]
    assert data["local_start"].iloc[-1] == "2026-03-30 00:00 CEST"


def test_daily_bars_span_their_local_day_of_23_24_or_25_hours():
    days = beliefs("2026-10-23T22:00Z", [1.0, 2.0, 3.0], freq="1D", source="kpi-report")
    data = chart_data({"cost": days}, {"cost": "EUR"}, timezone=AMS)
    assert set(data["mark"]) == {"bar"}
    spans = pd.to_datetime(data["event_end"], utc=True) - pd.to_datetime(
        data["event_start"], utc=True
    )
    assert list(spans) == [pd.Timedelta(hours=h) for h in (24, 25, 24)]
    spring = beliefs(SPRING_DAY, [1.0], freq="1D", source="kpi-report")
    data = chart_data({"cost": spring}, zones={"cost": AMS})  # the sensor's day, in UTC
    assert data["event_end"][0] == "2026-03-29T22:00:00Z"
    assert data["local_start"][0] == "2026-03-28 23:00 UTC"


def test_ticks_over_a_dst_change_are_ordered_round_local_times():
    start = datetime(2026, 10, 24, 22, tzinfo=UTC)
    ticks = local_ticks(start, start + timedelta(hours=25), AMS)
    labels = [label for _, label in ticks]
    assert labels == ["Sun 25 Oct", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00",
                      "21:00", "Mon 26 Oct"]  # fmt: skip
    instants = [ms for ms, _ in ticks]
    assert instants == sorted(set(instants))
    assert instants[1] - instants[0] == 4 * 3_600_000  # 00:00 CEST to 03:00 CET: four hours
    spring = local_ticks(
        datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 5, tzinfo=UTC), AMS
    )
    assert [label for _, label in spring] == ["Sun 29 Mar", "01:00", "03:00", "04:00", "05:00",
                                              "06:00", "07:00"]  # fmt: skip


ZONES = ["UTC", AMS, "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@given(
    start=st.datetimes(
        datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
        datetime(2030, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    span=st.timedeltas(timedelta(minutes=1), timedelta(days=3000)),
    tz=st.sampled_from(ZONES),
)
def test_ticks_are_within_range_ordered_few_and_labelled_in_local_time(start, span, tz):
    end = start + span
    ticks = local_ticks(start, end, tz)
    instants = [ms for ms, _ in ticks]
    assert instants == sorted(set(instants))
    assert len(ticks) <= MAX_TICKS + 1
    zone = ZoneInfo(tz)
    for ms, label in ticks:
        t = datetime.fromtimestamp(ms / 1000, UTC)
        assert start <= t <= end
        local = t.astimezone(zone)
        if ":" in label:
            assert label == local.strftime("%H:%M")
        else:  # a day, month or year begins here, local time
            assert (local.hour, local.minute) == (0, 0)


def test_label_expression_maps_each_tick_to_its_label():
    expr = label_expr([(1000, "Sun 25 Oct"), (2000, "it's")])
    assert expr == "+datum.value === 1000 ? 'Sun 25 Oct' : +datum.value === 2000 ? 'it\\'s' : ''"


def test_the_zone_is_the_sensors_common_one_else_utc_with_a_note():
    assert chart_zone({"a": AMS, "b": AMS}) == (AMS, None)
    assert chart_zone({}) == ("UTC", None)
    tz, note = chart_zone({"a": AMS, "b": "Asia/Tokyo"})
    assert tz == "UTC" and "Asia/Tokyo" in note and AMS in note
    assert chart_zone({"a": AMS}, "Asia/Tokyo") == ("Asia/Tokyo", None)
    with pytest.raises(InputError) as err:
        chart_zone({"a": AMS}, "Mars/Olympus")
    assert err.value.field == "--timezone" and "IANA" in str(err.value)


def _site() -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    frames = {
        "battery": pd.concat(
            [beliefs(AUTUMN_DAY, [1.0] * 25), beliefs(AUTUMN_DAY, [2.0] * 25, source="scheduler")]
        ),
        "cost": beliefs("2026-10-23T22:00Z", [3.0, 4.0], freq="1D", source="kpi-report"),
        "energy": beliefs("2026-10-23T22:00Z", [5.0, 6.0], freq="1D", source="kpi-report"),
        "self-consumed": beliefs(AUTUMN_DAY, [1.0] * 25, source="report"),
    }
    units = {"battery": "kW", "cost": "EUR", "energy": "kWh", "self-consumed": "kWh"}
    return frames, units


def _rows(spec: dict, panel: dict, layer: dict) -> list[dict]:
    """The rows a layer draws: its own data, else its panel's, else the chart's."""
    return spec["datasets"][(layer.get("data") or panel.get("data") or spec["data"])["name"]]


def _layers(spec: dict) -> list[tuple[str, set[str]]]:
    """(mark type, sensors in its data) of every layer of every panel."""
    return [
        (layer["mark"]["type"], {r["sensor"] for r in _rows(spec, panel, layer)})
        for panel in spec["vconcat"]
        for layer in panel["layer"]
    ]


def test_daily_series_are_bars_and_finer_series_steps():
    frames, units = _site()
    spec = build_chart(frames, units, zones=dict.fromkeys(frames, AMS)).to_dict()
    assert _layers(spec) == [
        ("line", {"battery"}),
        ("point", {"battery"}),
        ("bar", {"cost"}),
        ("line", {"self-consumed"}),
        ("point", {"self-consumed"}),
        ("bar", {"energy"}),
    ]
    line = spec["vconcat"][0]["layer"][0]
    assert line["mark"]["interpolate"] == "step-after"
    bar = spec["vconcat"][1]["layer"][0]
    assert bar["encoding"]["x"]["field"] == "bar_start" and bar["encoding"]["x2"]["field"] == (
        "bar_end"
    )
    assert bar["encoding"]["y2"] == {"datum": 0}  # bars stand on zero


def test_bars_of_several_daily_series_stand_side_by_side_within_their_day():
    days = "2026-10-23T22:00Z"
    frames = {
        "in": beliefs(days, [3.0, 4.0], freq="1D", source="kpi-report"),
        "out": beliefs(days, [1.0, 2.0], freq="1D", source="kpi-report"),
    }
    spec = build_chart(frames, {"in": "kWh", "out": "kWh"}, zones=dict.fromkeys(frames, AMS))
    spec = spec.to_dict()
    panel = spec["vconcat"][0]
    (bar,) = panel["layer"]
    rows = pd.DataFrame(_rows(spec, panel, bar))
    for col in ("event_start", "bar_start", "bar_end"):
        rows[col] = pd.to_datetime(rows[col], utc=True)
    # local days: Sat 24 Oct (24 hours) and Sun 25 Oct (25 hours)
    day_end = rows["event_start"].map(
        {pd.Timestamp(days): pd.Timestamp("2026-10-24T22:00Z"),
         pd.Timestamp("2026-10-24T22:00Z"): pd.Timestamp("2026-10-25T23:00Z")}
    )  # fmt: skip
    assert (rows["event_start"] < rows["bar_start"]).all()
    assert (rows["bar_start"] < rows["bar_end"]).all()
    assert (rows["bar_end"] < day_end).all()
    widths = (rows["bar_end"] - rows["bar_start"]).groupby(rows["event_start"]).first()
    assert widths.iloc[1] / widths.iloc[0] == pytest.approx(25 / 24)
    for _, day in rows.groupby("event_start"):
        first, second = day.sort_values("bar_start").itertuples()
        assert first.bar_end <= second.bar_start and first.sensor != second.sensor


def test_time_axis_names_the_zone_and_is_shared_and_the_html_fills_the_page():
    frames, units = _site()
    spec = build_chart(frames, units, title="site", zones=dict.fromkeys(frames, AMS)).to_dict()
    assert spec["title"] == "site"
    for panel in spec["vconcat"]:
        assert panel["width"] == "container"
        for layer in panel["layer"]:
            x = layer["encoding"]["x"]
            assert x["title"] == "time (Europe/Amsterdam)" and x["scale"]["type"] == "utc"
            assert "'Sun 25 Oct'" in x["axis"]["labelExpr"]
    assert spec["resolve"]["scale"]["x"] == "shared"
    fixed = _fixed_width(spec, IMAGE_WIDTH)
    assert [p["width"] for p in fixed["vconcat"]] == [IMAGE_WIDTH] * 3
    html = page(spec, "/* bundle */", {"actions": False})
    assert '"width": "container"' in html and "#vis" in html and "width: 100%" in html
    assert "<script src" not in html.replace(" ", "") and "http" not in html.replace(
        "http://www.w3.org", ""
    ).replace("https://vega.github.io/schema", "")


def test_mixed_zones_chart_in_utc_and_say_so_in_the_title():
    frames, units = _site()
    zones = {**dict.fromkeys(frames, AMS), "cost": "Asia/Tokyo"}
    spec = build_chart(frames, units, title="site", zones=zones).to_dict()
    assert spec["title"].startswith("site; times in UTC") and "Asia/Tokyo" in spec["title"]
    assert spec["vconcat"][0]["layer"][0]["encoding"]["x"]["title"] == "time (UTC)"
    spec = build_chart(frames, units, zones=zones, timezone="Asia/Tokyo").to_dict()
    assert "title" not in spec
    assert spec["vconcat"][0]["layer"][0]["encoding"]["x"]["title"] == "time (Asia/Tokyo)"


def test_a_sensor_name_cannot_end_the_pages_script():
    frames = {"</script><b>x": beliefs(AUTUMN_DAY, [1.0, 2.0])}
    spec = build_chart(frames, {"</script><b>x": "kW"}, title="<i>t</i>").to_dict()
    html = page(spec, "", {})
    assert html.count("</script>") == 2  # the bundle's and the chart's own
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in html


def test_an_unknown_timezone_option_is_refused_naming_it():
    res = CliRunner().invoke(
        main,
        ["chart", "--sensor", "pv", "--start", "2026-10-25T00:00+02:00",
         "--end", "2026-10-26T00:00+01:00", "--timezone", "Europe/Amsterdamm"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --timezone:") and "Europe/Amsterdamm" in res.stderr
    assert "Traceback" not in res.stderr

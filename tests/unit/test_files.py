"""CSV importer: consecutive evenly spaced rows become one batch; gaps, sensors, sources split."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from connectors.files import read_csv
from schemas.errors import InputError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Q = timedelta(minutes=15)


def csv(text: str, **kw):
    return read_csv(io.StringIO(text.strip() + "\n"), **kw)


def rows(*lines: str) -> str:
    return "\n".join(lines)


def shape(readings):
    """(schema, sensor, start, resolution ms, values) per message."""
    out = []
    for r in readings:
        rec = r.record
        if r.schema == "BeliefBatch":
            out.append((r.schema, rec["sensor"], rec["start"], rec["resolution_ms"], rec["values"]))
        else:
            out.append(
                (
                    r.schema,
                    rec["sensor"],
                    rec["event_start"],
                    rec["event_resolution_ms"],
                    [rec["event_value"]],
                )
            )
    return out


def test_evenly_spaced_rows_become_one_batch():
    readings = csv(
        rows(
            "sensor,event_start,event_value",
            "a,2026-01-01T00:00Z,1",
            "a,2026-01-01T00:15Z,2.5",
            "a,2026-01-01T00:30Z,-3",
        )
    )
    assert shape(readings) == [("BeliefBatch", "a", T0, 900_000, [1.0, 2.5, -3.0])]
    r = readings[0]
    assert r.key == "a" and r.count == 3
    assert r.record["source"] == "csv"
    assert r.record["cumulative_probability"] == 0.5
    assert r.record["belief_time"] is None and r.record["belief_horizon_ms"] is None
    assert r.record["unit"] is None


def test_gap_and_sensor_change_split_batches():
    readings = csv(
        rows(
            "sensor,event_start,event_value",
            "a,2026-01-01T00:00Z,1",
            "a,2026-01-01T00:15Z,2",
            "a,2026-01-01T01:00Z,3",
            "a,2026-01-01T01:15Z,4",
            "b,2026-01-01T01:30Z,5",
            "b,2026-01-01T01:45Z,6",
        )
    )
    assert shape(readings) == [
        ("BeliefBatch", "a", T0, 900_000, [1.0, 2.0]),
        ("BeliefBatch", "a", T0 + 4 * Q, 900_000, [3.0, 4.0]),
        ("BeliefBatch", "b", T0 + 6 * Q, 900_000, [5.0, 6.0]),
    ]


def test_different_sources_split_batches():
    readings = csv(
        rows(
            "event_start,event_value,source",
            "2026-01-01T00:00Z,1,meter",
            "2026-01-01T00:15Z,2,meter",
            "2026-01-01T00:30Z,3,model",
            "2026-01-01T00:45Z,4,model",
        ),
        sensor="s",
    )
    assert [r.record["source"] for r in readings] == ["meter", "model"]
    assert [r.record["values"] for r in readings] == [[1.0, 2.0], [3.0, 4.0]]


def test_blank_source_gets_the_default():
    readings = csv(
        rows("event_start,event_value,source", "2026-01-01T00:00Z,1,", "2026-01-01T00:15Z,2,"),
        sensor="s",
        default_source="import",
    )
    assert [r.record["source"] for r in readings] == ["import"]


def test_max_batch_cuts_a_run_and_the_remainder_keeps_its_step():
    text = rows(
        "event_start,event_value",
        *(f"2026-01-01T0{i // 4}:{i % 4 * 15:02d}Z,{i}" for i in range(5)),
    )
    readings = csv(text, sensor="s", max_batch=2)
    assert shape(readings) == [
        ("BeliefBatch", "s", T0, 900_000, [0.0, 1.0]),
        ("BeliefBatch", "s", T0 + 2 * Q, 900_000, [2.0, 3.0]),
        ("Belief", "s", T0 + 4 * Q, 900_000, [4.0]),
    ]


def test_max_batch_remainder_does_not_inherit_the_step_across_a_gap():
    text = rows(
        "event_start,event_value",
        "2026-01-01T00:00Z,1",
        "2026-01-01T00:15Z,2",
        "2026-01-01T05:00Z,3",
    )
    with pytest.raises(InputError) as info:
        csv(text, sensor="s", max_batch=2)
    assert info.value.field == "event_resolution"


def test_offsets_are_converted_to_utc():
    readings = csv(
        rows("event_start,event_value", "2026-01-01T01:00+01:00,1", "2026-01-01T01:15+0100,2"),
        sensor="s",
    )
    assert shape(readings) == [("BeliefBatch", "s", T0, 900_000, [1.0, 2.0])]


def test_naive_time_is_rejected_naming_the_row():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1", "2026-01-01T00:15,2")
    with pytest.raises(InputError) as info:
        csv(text, sensor="s")
    assert info.value.field == "event_start"
    assert "'2026-01-01T00:15' (row 2) has no UTC offset" in str(info.value)


def test_no_sensor_column_needs_the_sensor_option():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1", "2026-01-01T00:15Z,2")
    with pytest.raises(InputError) as info:
        csv(text)
    assert info.value.field == "sensor"
    assert "--sensor" in str(info.value)
    assert [r.key for r in csv(text, sensor="pv")] == ["pv"]


def test_sensor_column_wins_over_the_option():
    text = rows("sensor,event_start,event_value", "a,2026-01-01T00:00Z,1")
    assert [r.key for r in csv(text, sensor="other", resolution=Q)] == ["a"]


@pytest.mark.parametrize("col", ["event_start", "event_value"])
def test_required_columns(col):
    header = "event_start,event_value".replace(col, "x")
    with pytest.raises(InputError) as info:
        csv(rows(header, "2026-01-01T00:00Z,1"), sensor="s")
    assert info.value.field == col


def test_single_reading_needs_a_resolution():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,4")
    with pytest.raises(InputError) as info:
        csv(text, sensor="s")
    assert info.value.field == "event_resolution"
    assert "--resolution" in str(info.value)
    assert shape(csv(text, sensor="s", resolution=timedelta(minutes=5))) == [
        ("Belief", "s", T0, 300_000, [4.0])
    ]


def test_resolution_option_splits_rows_that_do_not_follow_it():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1", "2026-01-01T00:05Z,2")
    assert shape(csv(text, sensor="s", resolution=Q)) == [
        ("Belief", "s", T0, 900_000, [1.0]),
        ("Belief", "s", T0 + timedelta(minutes=5), 900_000, [2.0]),
    ]


def test_event_resolution_column_per_row():
    text = rows(
        "event_start,event_value,event_resolution",
        "2026-01-01T00:00Z,1,PT15M",
        "2026-01-01T00:15Z,2,PT15M",
        "2026-01-01T00:30Z,50,PT0M",
    )
    assert shape(csv(text, sensor="s")) == [
        ("BeliefBatch", "s", T0, 900_000, [1.0, 2.0]),
        ("Belief", "s", T0 + 2 * Q, 0, [50.0]),
    ]


def test_belief_horizon_is_iso_8601_and_blanks_mean_none():
    text = rows(
        "event_start,event_value,belief_horizon",
        "2026-01-01T00:00Z,1,PT1H",
        "2026-01-01T00:15Z,2,PT1H",
        "2026-01-01T00:30Z,3,P1DT30M",
        "2026-01-01T00:45Z,4,-PT15M",
        "2026-01-01T01:00Z,5,",
        "2026-01-01T01:15Z,6,",
    )
    readings = csv(text, sensor="s", resolution=Q)
    horizons = [(r.record["belief_horizon_ms"], r.count) for r in readings]
    assert horizons == [(3_600_000, 2), (88_200_000, 1), (-900_000, 1), (None, 2)]


def test_bad_belief_horizon_names_the_column():
    text = rows("event_start,event_value,belief_horizon", "2026-01-01T00:00Z,1,1 hour")
    with pytest.raises(InputError) as info:
        csv(text, sensor="s", resolution=Q)
    assert info.value.field == "belief_horizon"


def test_belief_time_column_groups_and_blanks_are_allowed():
    text = rows(
        "event_start,event_value,belief_time,belief_horizon",
        "2026-01-01T00:00Z,1,2025-12-31T12:00Z,",
        "2026-01-01T00:15Z,2,2025-12-31T12:00Z,",
        "2026-01-01T00:30Z,3,2025-12-31T13:00+01:00,",
        "2026-01-01T00:45Z,4,,PT2H",
    )
    readings = csv(text, sensor="s", resolution=Q)
    noon = datetime(2025, 12, 31, 12, tzinfo=UTC)
    got = [(r.record["belief_time"], r.record["belief_horizon_ms"], r.count) for r in readings]
    # 13:00+01:00 is the same instant as 12:00Z, so the first three rows are one batch.
    assert got == [(noon, None, 3), (None, 7_200_000, 1)]


def test_naive_belief_time_is_rejected():
    text = rows("event_start,event_value,belief_time", "2026-01-01T00:00Z,1,2025-12-31T12:00")
    with pytest.raises(InputError) as info:
        csv(text, sensor="s", resolution=Q)
    assert info.value.field == "belief_time"
    assert "row 1" in str(info.value)


def test_unit_and_probability_columns_are_carried_and_split():
    text = rows(
        "event_start,event_value,unit,cumulative_probability",
        "2026-01-01T00:00Z,1,MW,0.1",
        "2026-01-01T00:15Z,2,MW,0.1",
        "2026-01-01T00:30Z,3,MW,0.9",
        "2026-01-01T00:45Z,4,,0.9",
    )
    readings = csv(text, sensor="s", resolution=Q)
    got = [(r.record["unit"], r.record["cumulative_probability"], r.count) for r in readings]
    assert got == [("MW", 0.1, 2), ("MW", 0.9, 1), (None, 0.9, 1)]


def test_unit_option_applies_when_no_unit_column():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1")
    assert csv(text, sensor="s", resolution=Q, unit="kW")[0].record["unit"] == "kW"


def reject(text: str, **kw) -> InputError:
    with pytest.raises(InputError) as info:
        csv(text, **kw)
    return info.value


@pytest.mark.parametrize("cell", ["abc", "n/a", "NaN", "null", '"1,5"'])
def test_a_value_that_is_not_a_number_names_row_and_column(cell):
    err = reject(
        rows("event_start,event_value", "2026-01-01T00:00Z,1", f"2026-01-01T00:15Z,{cell}"),
        sensor="s",
    )
    assert err.field == "event_value"
    assert "(row 2) is not a number" in str(err)


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "1e400"])
def test_an_infinite_value_is_refused(cell):
    err = reject(
        rows("event_start,event_value", "2026-01-01T00:00Z,1", f"2026-01-01T00:15Z,{cell}"),
        sensor="s",
    )
    assert err.field == "event_value"
    assert "(row 2) is not a finite number" in str(err)


@pytest.mark.parametrize("line", ["2026-01-01T00:15Z,", "2026-01-01T00:15Z"])
def test_an_empty_value_is_an_error_never_a_nan_sent_on(line):
    err = reject(rows("event_start,event_value", "2026-01-01T00:00Z,1", line), sensor="s")
    assert err.field == "event_value"
    assert "row 2 has no value" in str(err) and "remove the row" in str(err)


def test_a_row_with_more_values_than_the_header_names_row_and_column():
    text = rows(
        "event_start,event_value",
        "2026-01-01T00:00Z,1",
        "2026-01-01T00:15Z,2",
        "2026-01-01T00:30Z,3,4",
    )
    err = reject(text, sensor="s")
    assert err.field == "column 3"
    assert "row 3 has 3 values but the header names 2 columns" in str(err)
    assert "'4'" in str(err)


def test_every_row_with_one_value_too_many_is_not_read_as_an_index():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1,5", "2026-01-01T00:15Z,2,6")
    err = reject(text, sensor="s")
    assert err.field == "column 3" and "row 1 has 3 values" in str(err)


def test_an_unclosed_quote_names_the_row():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1", '2026-01-01T00:15Z,"2')
    err = reject(text, sensor="s")
    assert err.field == "row 2" and "quote" in str(err)


def test_blank_lines_are_skipped_and_not_counted():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1", "", "2026-01-01T00:15Z,x")
    assert "(row 2)" in str(reject(text, sensor="s"))


def test_an_empty_file_asks_for_a_header():
    err = reject("", sensor="s")
    assert err.field == "file" and "header" in str(err)


def test_a_column_named_twice_is_refused():
    err = reject(rows("event_start,event_value,event_value", "2026-01-01T00:00Z,1,2"), sensor="s")
    assert err.field == "event_value" and "twice" in str(err)


def test_a_missing_or_unreadable_time_names_the_row():
    err = reject(rows("event_start,event_value", "2026-01-01T00:00Z,1", ",2"), sensor="s")
    assert err.field == "event_start" and "row 2 has no time" in str(err)
    err = reject(
        rows("event_start,event_value", "2026-01-01T00:00Z,1", "2026-13-01T00:00Z,2"), sensor="s"
    )
    assert err.field == "event_start"
    assert "'2026-13-01T00:00Z' (row 2) is not an ISO 8601 date and time" in str(err)


def test_a_missing_sensor_names_the_row():
    err = reject(
        rows("sensor,event_start,event_value", "a,2026-01-01T00:00Z,1", ",2026-01-01T00:15Z,2")
    )
    assert err.field == "sensor" and "row 2" in str(err)


def test_probability_is_checked_per_row_and_blank_means_deterministic():
    head = "event_start,event_value,cumulative_probability"
    err = reject(
        rows(head, "2026-01-01T00:00Z,1,0.5", "2026-01-01T00:15Z,2,high"), resolution=Q, sensor="s"
    )
    assert err.field == "cumulative_probability" and "'high' (row 2)" in str(err)
    err = reject(rows(head, "2026-01-01T00:00Z,1,1.5"), resolution=Q, sensor="s")
    assert err.field == "cumulative_probability" and "(row 1) is outside [0, 1]" in str(err)
    readings = csv(rows(head, "2026-01-01T00:00Z,1,", "2026-01-01T00:15Z,2,"), sensor="s")
    assert [(r.record["cumulative_probability"], r.count) for r in readings] == [(0.5, 2)]


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        ("", "row 2 has no event resolution"),
        ("-PT15M", "row 2: the resolution '-PT15M' is negative"),
        ("15 min", "row 2: cannot read"),
    ],
)
def test_event_resolution_cells_are_checked_per_row(cell, says):
    text = rows(
        "event_start,event_value,event_resolution",
        "2026-01-01T00:00Z,1,PT15M",
        f"2026-01-01T00:15Z,2,{cell}",
    )
    err = reject(text, sensor="s")
    assert err.field == "event_resolution" and says in str(err)


def test_a_negative_resolution_argument_is_refused():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,4")
    err = reject(text, sensor="s", resolution=-Q)
    assert err.field == "resolution" and "negative" in str(err)
    # Zero is an instantaneous reading (e.g. a state of charge), not an error.
    assert shape(csv(text, sensor="s", resolution=timedelta(0))) == [("Belief", "s", T0, 0, [4.0])]


def test_repeated_starts_do_not_make_an_instantaneous_reading():
    text = rows("event_start,event_value", "2026-01-01T00:00Z,1", "2026-01-01T00:00Z,2")
    err = reject(text, sensor="s")
    assert err.field == "event_resolution" and "(row 1)" in str(err)
    assert shape(csv(text, sensor="s", resolution=Q)) == [
        ("Belief", "s", T0, 900_000, [1.0]),
        ("Belief", "s", T0, 900_000, [2.0]),
    ]


def test_text_that_only_looks_missing_is_kept_as_written():
    text = rows("sensor,event_start,event_value,source", "NA,2026-01-01T00:00Z,1,null")
    [reading] = csv(text, resolution=Q)
    assert reading.key == "NA" and reading.record["source"] == "null"


def test_a_byte_order_mark_before_the_header_is_ignored():
    text = "\ufeff" + rows("event_start,event_value", "2026-01-01T00:00Z,1")
    assert csv(text, sensor="s", resolution=Q)[0].record["event_value"] == 1.0

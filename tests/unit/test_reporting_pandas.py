"""PandasReporter: transformations, frame references, units, whitelist enforcement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from reporting_frames import beliefs, day_hours, local_day

from schemas.errors import InputError
from schemas.reporters import MAX_RESAMPLE_ROWS, PandasReporterConfig, Transformation
from streams.reports.reporters import PandasReporter

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _config(steps, inputs=("a",), outputs=(("out", None),)):
    return {
        "required_input": [{"name": n} for n in inputs],
        "required_output": [{"name": n, "unit": u} for n, u in outputs],
        "transformations": steps,
    }


def test_steps_chain_in_place_and_refer_to_earlier_frames():
    config = _config(
        [
            {"df_input": "a", "df_output": "x", "method": "mul", "args": [2]},
            {"method": "add", "args": ["@b"]},  # df_input/df_output default to x
            {"df_input": "x", "df_output": "out", "method": "clip", "kwargs": {"upper": 10}},
        ],
        inputs=("a", "b"),
    )
    out = PandasReporter(config).compute(
        {"a": beliefs(T0, [1.0, 3.0, 5.0]), "b": beliefs(T0, [0.5, 0.5, 0.5])},
        T0,
        T0 + timedelta(hours=3),
        "PT1H",
    )
    assert out["out"].tolist() == [1 * 2 + 0.5, 3 * 2 + 0.5, 10.0]


def test_where_with_a_boolean_frame_and_literal_at_strings():
    config = _config(
        [
            {"df_input": "a", "df_output": "positive", "method": "gt", "args": [0]},
            {"df_input": "a", "df_output": "out", "method": "where", "args": ["@positive", 0.0]},
        ]
    )
    out = PandasReporter(config).compute(
        {"a": beliefs(T0, [-1.0, 2.0])}, T0, T0 + timedelta(hours=2), "PT1H"
    )
    assert out["out"].tolist() == [0.0, 2.0]


def test_inputs_are_converted_to_the_required_unit():
    config = _config(
        [{"df_input": "price", "df_output": "out", "method": "add", "args": [0.1]}],
        inputs=("price",),
        outputs=(("out", "EUR/kWh"),),
    )
    config["required_input"][0]["unit"] = "EUR/kWh"
    out = PandasReporter(config).compute(
        {"price": beliefs(T0, [120.0])},
        T0,
        T0 + timedelta(hours=1),
        "PT1H",
        input_units={"price": "EUR/MWh"},
        output_units={"out": "EUR/MWh"},
    )
    assert out["out"].tolist() == pytest.approx([(0.120 + 0.1) * 1000])


def test_frames_are_local_time_so_resample_bins_local_days():
    start, end = local_day(2026, 10, 25)
    hours = day_hours(2026, 10, 25)
    config = _config(
        [
            {"df_input": "a", "df_output": "out", "method": "resample", "args": ["1D"]},
            {"method": "sum"},
        ],
        outputs=(("out", "kWh"),),
    )
    config["required_input"][0]["unit"] = "kWh"
    out = PandasReporter(config).compute(
        {"a": beliefs(start, np.full(hours, 2.0))},
        start,
        end,
        "P1D",
        "Europe/Amsterdam",
        input_units={"a": "kWh"},
    )
    assert out["out"].tolist() == [2.0 * 25]
    assert out["out"].index[0] == pd.Timestamp(start).tz_convert("UTC")


def test_output_on_neither_grid_is_refused():
    config = _config(
        [
            {"df_input": "a", "df_output": "out", "method": "resample", "args": ["2h"]},
            {"method": "mean"},
        ]
    )
    with pytest.raises(InputError, match="report bins") as err:
        PandasReporter(config).compute(
            {"a": beliefs(T0, [1.0] * 4)}, T0, T0 + timedelta(hours=4), "PT1H"
        )
    assert err.value.field == "required_output[0].name"


def test_a_reduction_to_one_number_is_not_an_output():
    config = _config([{"df_input": "a", "df_output": "out", "method": "sum"}])
    with pytest.raises(InputError, match="time series") as err:
        PandasReporter(config).compute(
            {"a": beliefs(T0, [1.0])}, T0, T0 + timedelta(hours=1), "PT1H"
        )
    assert err.value.field == "required_output[0].name"


def test_eval_in_a_config_is_rejected_when_building_the_reporter():
    config = _config([{"df_input": "a", "df_output": "out", "method": "eval", "args": ["a * 2"]}])
    with pytest.raises(InputError, match="not allowed") as err:
        PandasReporter(config)
    assert err.value.field == "transformations[0].method"


def test_a_config_built_around_validation_is_still_refused_at_run_time():
    step = Transformation.model_construct(
        df_input="a", df_output="out", method="pipe", args=[], kwargs={}
    )
    bypass = PandasReporterConfig.model_construct(
        required_input=PandasReporterConfig.model_validate(
            _config([{"df_input": "a", "method": "abs"}], outputs=(("a", None),))
        ).required_input,
        required_output=PandasReporterConfig.model_validate(
            _config([{"df_input": "a", "method": "abs"}], outputs=(("a", None),))
        ).required_output,
        transformations=[step],
    )
    with pytest.raises(InputError, match="not allowed") as err:
        PandasReporter(bypass).compute(
            {"a": beliefs(T0, [1.0])}, T0, T0 + timedelta(hours=1), "PT1H"
        )
    assert err.value.field == "transformations[0].method"
    step_obj = Transformation.model_construct(
        df_input="a", df_output="a", method="add", args=[print], kwargs={}
    )
    bypass_arg = bypass.model_copy(update={"transformations": [step_obj]})
    with pytest.raises(InputError, match="only str") as err:
        PandasReporter(bypass_arg).compute(
            {"a": beliefs(T0, [1.0])}, T0, T0 + timedelta(hours=1), "PT1H"
        )
    assert err.value.field == "transformations[0].args[0]"


def test_failing_pandas_call_names_the_step():
    config = _config([{"df_input": "a", "df_output": "out", "method": "round", "args": ["x"]}])
    with pytest.raises(InputError, match="round") as err:
        PandasReporter(config).compute(
            {"a": beliefs(T0, [1.0])}, T0, T0 + timedelta(hours=1), "PT1H"
        )
    assert err.value.field == "transformations[0]"


def test_missing_required_input_is_named():
    config = _config([{"df_input": "a", "df_output": "out", "method": "abs"}])
    with pytest.raises(InputError) as err:
        PandasReporter(config).compute(
            {"b": beliefs(T0, [1.0])}, T0, T0 + timedelta(hours=1), "PT1H"
        )
    assert err.value.field == "inputs.a"


def test_a_resample_of_more_rows_than_allowed_is_refused_before_it_runs():
    days = 12  # hourly slots from 0:00 to 23:00 on day 12: 1,033,201 seconds
    config = _config(
        [
            {"df_input": "a", "df_output": "fine", "method": "resample", "args": ["1s"]},
            {"method": "ffill"},
            {"df_input": "a", "df_output": "out", "method": "abs"},
        ]
    )
    inputs = {"a": beliefs(T0, np.ones(days * 24))}
    with pytest.raises(InputError) as err:
        PandasReporter(config).compute(inputs, T0, T0 + timedelta(days=days), "PT1H")
    assert err.value.field == "transformations[0].args[0]"
    assert f"1,033,201 rows, more than the {MAX_RESAMPLE_ROWS:,} allowed" in str(err.value)
    # The same rule over a shorter span runs.
    short = {"a": beliefs(T0, np.ones(24))}
    out = PandasReporter(config).compute(short, T0, T0 + timedelta(days=1), "PT1H")
    assert out["out"].tolist() == [1.0] * 24


def test_a_nanosecond_resample_slipped_past_validation_is_refused_at_run_time():
    step = Transformation.model_construct(
        df_input="a", df_output="out", method="resample", args=[], kwargs={"rule": "1ns"}
    )
    valid = PandasReporterConfig.model_validate(
        _config([{"df_input": "a", "df_output": "out", "method": "abs"}])
    )
    bypass = valid.model_copy(update={"transformations": [step]})
    with pytest.raises(InputError, match="finer than the finest allowed") as err:
        PandasReporter(bypass).compute(
            {"a": beliefs(T0, [1.0, 2.0])}, T0, T0 + timedelta(hours=2), "PT1H"
        )
    assert err.value.field == "transformations[0].kwargs.rule"

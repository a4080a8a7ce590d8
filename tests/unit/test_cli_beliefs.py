"""`flexstream show beliefs`: fixed SQL with bound values, times in the sensor's timezone."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connectors.analyst_sql import check_parameters
from schemas.errors import ConnectorError, InputError
from streams.cli import main
from streams.cli.beliefs import belief_query, belief_records, parse_time


def test_values_from_the_command_line_are_parameters_never_sql_text():
    q = belief_query(
        "pv'; DROP TABLE beliefs --",
        parse_time("2026-03-29T03:00+02:00", "--start"),
        parse_time("2026-03-30T00:00Z", "--end"),
        "meter'",
    )
    assert "DROP" not in q.sql and "meter" not in q.sql and "2026" not in q.sql
    assert q.parameters == {
        "sensor": "pv'; DROP TABLE beliefs --",
        "start": "2026-03-29 01:00:00.000000",
        "end": "2026-03-30 00:00:00.000000",
        "source": "meter'",
    }
    assert check_parameters(q.sql, q.parameters) == q.parameters


def test_without_span_or_source_only_the_sensor_is_bound():
    q = belief_query("pv")
    assert q.parameters == {"sensor": "pv"}
    assert q.sql.endswith("WHERE sensor = {sensor:String} ORDER BY event_start, source")


def test_an_end_not_after_the_start_is_refused_naming_end():
    t = parse_time("2026-01-01T00:00Z", "--start")
    with pytest.raises(InputError, match="--end must lie after --start"):
        belief_query("pv", t, t)


@pytest.mark.parametrize(
    ("text", "message"),
    [("yesterday", "cannot read 'yesterday'"), ("2026-01-01T00:00", "has no UTC offset")],
)
def test_a_start_that_is_not_an_aware_time_exits_2_naming_the_option(text, message):
    res = CliRunner().invoke(main, ["show", "beliefs", "--sensor", "pv", "--start", text])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --start: ") and message in res.stderr


def test_times_are_printed_in_the_sensor_timezone_with_their_offset():
    rows = [["2026-03-29 00:45:00.000000", "2026-03-29 01:30:00.000000", "meter", 1]]
    assert belief_records(rows, "pv", "kW", "Europe/Amsterdam") == [
        {
            "sensor": "pv",
            "event_start": "2026-03-29T01:45:00+01:00",
            "belief_time": "2026-03-29T03:30:00+02:00",
            "source": "meter",
            "event_value": 1.0,
            "unit": "kW",
        }
    ]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"x; DROP": "1"}, "is not an identifier"),
        ({"sensor": ["a"]}, "must be a string or a number"),
        ({"sensor": True}, "must be a string or a number"),
        ({"other": "pv"}, "parameter other is not used in the SQL"),
        (["pv"], "must be an object"),
    ],
)
def test_parameters_are_refused_unless_plain_values_of_placeholders(parameters, message):
    with pytest.raises(ConnectorError, match=message):
        check_parameters("SELECT 1 WHERE {sensor:String} = ''", parameters)

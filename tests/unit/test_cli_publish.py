"""`flexstream publish` refuses bad input before contacting the broker: exit 2, no traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from streams.cli import main

HEAD = "event_start,event_value\n"


def publish(stdin: str, *options: str):
    return CliRunner().invoke(main, ["publish", "--topic", "meter", *options], input=stdin)


def test_a_malformed_row_is_an_error_naming_row_and_column():
    res = publish(HEAD + "2026-01-01T00:00Z,1\n2026-01-01T00:15Z,2,3\n", "--sensor", "pv")
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.stderr
    assert "error: column 3: row 2 has 3 values" in res.stderr


def test_a_value_that_is_not_a_number_is_an_error_naming_row_and_column():
    res = publish(HEAD + "2026-01-01T00:00Z,1\n2026-01-01T00:15Z,abc\n", "--sensor", "pv")
    assert res.exit_code == 2
    assert "error: event_value: 'abc' (row 2) is not a number" in res.stderr


@pytest.mark.parametrize("value", ["-PT15M", "-P1D"])
def test_a_negative_resolution_is_refused_naming_the_option(value):
    res = publish(HEAD + "2026-01-01T00:00Z,1\n", "--sensor", "pv", "--resolution", value)
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --resolution:") and "negative" in res.stderr

"""The demo prints solver noise around zero as zero, never as -0."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.demo.schedule import _num


def test_noise_below_zero_prints_as_zero():
    assert _num(-1e-9, 1) == "0.0" and _num(-1e-9, 0) == "0" and _num(-0.0, 1) == "0.0"
    assert _num(-0.06, 1) == "-0.1" and _num(2.46, 1) == "2.5"


@given(st.floats(-1e6, 1e6), st.integers(0, 3))
def test_a_number_that_prints_as_zero_has_no_sign(value, digits):
    text = _num(value, digits)
    if float(text) == 0:
        assert not text.startswith("-")
    assert abs(float(text) - value) <= 0.5 * 10**-digits + 1e-9

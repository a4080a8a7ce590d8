"""Scheduling never raises into the answer: remove any inputs of a valid site (property)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from schemas.assets import Asset
from schemas.beliefs import Sensor
from streams.scheduling import problem as scheduling

T0 = datetime(2026, 6, 10, tzinfo=UTC)
HOURS = 6
SENSORS = {
    s.name: s
    for s in [
        Sensor(name="bat", unit="kW", event_resolution="PT15M"),
        Sensor(name="bat-soc", unit="kWh", event_resolution="PT0M"),
        Sensor(name="price", unit="EUR/MWh", event_resolution="PT1H"),
        Sensor(name="pv", unit="kW", event_resolution="PT15M"),
        Sensor(name="load", unit="kW", event_resolution="PT15M"),
    ]
}
SITE = Asset.model_validate(
    {
        "name": "home",
        "flex-context": {
            "consumption-price": {"sensor": "price"},
            "site-power-capacity": "20 kW",
            "inflexible-device-sensors": [{"sensor": "pv"}, {"sensor": "load"}],
        },
        "flex-model": {
            "sensor": "bat",
            "soc-at-start": {"sensor": "bat-soc"},
            "soc-max": "10 kWh",
            "power-capacity": "5 kW",
        },
    }
)
SERIES = ("price", "pv", "load")
#: What is left of a sensor's beliefs.
KEEP = ["all", "none", "past-only", "gap", "first-half", "second-half"]


def full(sensor: str) -> pd.Series:
    res = SENSORS[sensor].event_resolution
    n = int(timedelta(hours=HOURS) / res)
    idx = pd.date_range(T0, periods=n, freq=res, tz=UTC)
    values = {"price": 50.0 + 10 * np.sin(np.arange(n)), "pv": -np.ones(n), "load": np.ones(n)}
    return pd.Series(values[sensor], index=idx)


def cut(s: pd.Series, keep: str) -> pd.Series:
    n = len(s)
    if keep == "none":
        out = s.iloc[:0]
    elif keep == "past-only":
        out = pd.Series([1.0], index=pd.DatetimeIndex([T0 - timedelta(days=1)]))
    elif keep == "gap":
        out = pd.concat([s.iloc[: n // 3], s.iloc[2 * n // 3 :]])
    elif keep == "first-half":
        out = s.iloc[: n // 2]
    elif keep == "second-half":
        out = s.iloc[n // 2 :]
    else:
        out = s
    return out


class Lookup:
    def __init__(self, series: dict[str, pd.Series], soc: float | None) -> None:
        self.data, self.soc = series, soc

    def series(self, sensor, start, end):
        s = self.data[sensor]
        s = s[(s.index >= start - SENSORS[sensor].event_resolution) & (s.index < end)]
        s = s.copy()
        s.attrs["resolution"] = SENSORS[sensor].event_resolution
        return s

    def latest_at(self, sensor, at):
        return (T0, self.soc) if self.soc is not None else None


@settings(max_examples=examples(150))
@given(
    st.fixed_dictionaries({name: st.sampled_from(KEEP) for name in SERIES}),
    st.booleans(),
)
def test_every_missing_input_is_answered_with_error_naming_the_sensor(keep, soc_known):
    lookup = Lookup({n: cut(full(n), keep[n]) for n in SERIES}, 3.0 if soc_known else None)
    request = {
        "request_id": "r",
        "asset": "home",
        "start": T0,
        "duration_ms": HOURS * 3_600_000,
        "resolution_ms": 900_000,
    }
    prepared, failed = scheduling.prepare_or_fail(request, {"home": SITE}, SENSORS, lookup, T0)
    missing = [n for n in SERIES if keep[n] != "all"] + ([] if soc_known else ["bat-soc"])
    if not missing:
        assert prepared is not None and not failed
        result, _ = scheduling.solve(prepared)
        assert result.status.value == "optimal"
        return
    assert prepared is None
    [answer] = failed
    assert answer.status == "error", answer
    message = answer.message
    assert any(f"'{n}'" in message for n in missing), message
    if "steps" in message:
        assert " from " in message and " to " in message  # the missing span

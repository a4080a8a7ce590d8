"""Operation modes (S2 power bands), from flex-model JSON to schedules, by hand.

Every expected number below is derived in the test's docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from schemas.flex_problem import SiteProblem, StorageDevice, TimeGrid
from schemas.flex_request import parse_site_problem
from solvers import Status, schedule
from solvers.feature_examples import OFF_OR_2_TO_3, heater
from solvers.formulation import build
from solvers.modes import intervals

START = "2024-05-01T00:00+00:00"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def prices(*values: float) -> list[dict[str, str]]:
    """One EUR/kWh price per hour."""
    return [
        {"start": (T0 + k * HOUR).isoformat(), "duration": "PT1H", "value": f"{v} EUR/kWh"}
        for k, v in enumerate(values)
    ]


def problem(fm: Any, fc: dict[str, Any], hours: int) -> SiteProblem:
    return parse_site_problem(fm, fc, START, f"PT{hours}H", "PT1H")


def test_an_on_off_heater_runs_only_between_2_and_3_kw():
    """4.5 kWh by the end of four hours at 0.1, 0.3, 0.2, 0.4 EUR/kWh.

    Freely: 3 kW at 0.1 and 1.5 kW at 0.2 (0.6 EUR). 1.5 kW is no allowed level:
    with ``a + b = 4.5`` at the two cheapest hours, ``a <= 3`` forces ``b >= 1.5``,
    so ``b`` is in [2, 3] and the cheapest is b = 2, a = 2.5:
    [2.5, 0, 2, 0] kW, 0.25 + 0.4 = 0.65 EUR.
    """
    target = {"soc-targets": [{"datetime": "2024-05-01T04:00+00:00", "value": "4.5 kWh"}]}
    fc = {"consumption-price": prices(0.1, 0.3, 0.2, 0.4)}
    result = schedule(problem([heater(**target)], fc, 4))
    assert result.status is Status.OPTIMAL, result.message
    np.testing.assert_allclose(result.schedule_of("heater").power, [2.5, 0, 2, 0], atol=1e-6)
    assert result.costs.total == pytest.approx(0.65, abs=1e-6)
    assert result.used_binaries

    free = schedule(problem([heater(**target, **{"operation-modes": None})], fc, 4))
    np.testing.assert_allclose(free.schedule_of("heater").power, [3, 0, 1.5, 0], atol=1e-6)
    assert free.costs.total == pytest.approx(0.6, abs=1e-6)


def test_a_demand_of_1_kw_forces_the_heater_off_or_to_2_kw():
    """Heat demand 1 kW (``soc-usage``), buffer 0..2 kWh from 1 kWh, prices 0.1, 0.4, 0.2, 0.3.

    Freely it tops up at the cheap hours: 2 kW at 0.1 (SOC 2), off, 1 kW at 0.2,
    off: [2, 0, 1, 0], 0.2 + 0.2 = 0.4 EUR. At 1 kW it cannot run: in hour 2 the
    buffer (1 kWh) has room for 2 kW - 1 kW demand, so it runs at 2 kW (SOC 2)
    and the last hour draws the buffer to 1 kWh: [2, 0, 2, 0], 0.2 + 0.4 = 0.6 EUR
    (off in hour 2 instead would need 2 kW at 0.3 in hour 3: 0.8 EUR).
    SOC 1 -> 2 -> 1 -> 2 -> 1 kWh.
    """
    fm = heater(**{"soc-at-start": "1 kWh", "soc-max": "2 kWh", "soc-usage": "1 kW"})
    fc = {"consumption-price": prices(0.1, 0.4, 0.2, 0.3)}
    result = schedule(problem([fm], fc, 4))
    assert result.status is Status.OPTIMAL, result.message
    s = result.schedule_of("heater")
    np.testing.assert_allclose(s.power, [2, 0, 2, 0], atol=1e-6)
    np.testing.assert_allclose(s.soc, [1, 2, 1, 2, 1], atol=1e-6)
    assert result.costs.total == pytest.approx(0.6, abs=1e-6)

    free = schedule(problem([{**fm, "operation-modes": None}], fc, 4))
    np.testing.assert_allclose(free.schedule_of("heater").power, [2, 0, 1, 0], atol=1e-6)
    assert free.costs.total == pytest.approx(0.4, abs=1e-6)


def test_an_impossible_mode_is_named_in_the_diagnosis():
    """Always on at 2-3 kW, but the buffer holds 1 kWh: one hour at 2 kW overfills it.

    soc-max is hard (elastic weight 10 per kWh), the mode gives way at weight 1
    per kW, so the diagnosis names the mode: 2 - 1 = 1 kW short of its band.
    """
    fm = heater(**{"soc-max": "1 kWh", "operation-modes": OFF_OR_2_TO_3[1:]})
    result = schedule(problem([fm], {"consumption-price": "0.1 EUR/kWh"}, 1))
    assert result.status is Status.INFEASIBLE
    conflicts = [(c.constraint, c.device, c.datetime, c.amount) for c in result.conflicts]
    assert conflicts == [("operation-modes", "heater", T0, pytest.approx(1.0))]
    assert "operation-modes of 'heater'" in result.message


def test_a_mode_gap_only_binaries_reveal_is_named_too():
    """Exactly 2 kWh over one 2-hour step, hard: 1 kW, in the gap between off and 2-3 kW.

    The relaxed LP meets it (half off, half on: 0..1.5 kW), the MILP cannot, so the
    diagnosis solves the elastic MILP: giving the mode 1 kW (2 - 1) costs 1, giving
    the target 2 kWh (off: 0 kWh; on at 2 kW: 4 kWh) costs 2. The mode is named.
    """
    fm = heater()
    fm["soc-targets"] = [{"datetime": "2024-05-01T02:00+00:00", "value": "2 kWh"}]
    fc = {"consumption-price": "0.1 EUR/kWh", "relax-constraints": False}
    result = schedule(parse_site_problem([fm], fc, START, "PT2H", "PT2H"))
    assert result.status is Status.INFEASIBLE and result.used_binaries
    conflicts = [(c.constraint, c.device, c.datetime, c.amount) for c in result.conflicts]
    assert conflicts == [("operation-modes", "heater", T0, pytest.approx(1.0))]


def test_production_and_consumption_ranges_become_signed_bands():
    """A V2G charger: off, or charging 1.5-7.4 kW, or discharging 2-5 kW, or idling -0.5..0.5.

    ``production-range [2, 5]`` is (-5, -2); both ranges from 0 are one band (-0.5, 0.5).
    """
    modes = [
        {"consumption-range": ["1.5 kW", "7.4 kW"]},
        {"production-range": ["2 kW", "5 kW"]},
        {"consumption-range": ["0 kW", "0.5 kW"], "production-range": ["0 kW", "0.5 kW"]},
        {"consumption-range": [0, 0]},
    ]
    fm = heater(**{"operation-modes": modes, "production-capacity": None})
    p = problem([fm], {"consumption-price": "0.1 EUR/kWh"}, 1)
    assert p.devices[0].operation_modes == ((1.5, 7.4), (-5.0, -2.0), (-0.5, 0.5), (0.0, 0.0))


@pytest.mark.parametrize(
    ("bands", "reach", "expected"),
    [
        # 0 in a band contiguous with the others: one interval, no binary.
        ([(0, 1), (1, 3)], (3, 0), [(0, 3)]),
        ([(-2, 0), (0, 2), (1.5, 4)], (5, 5), [(-2, 4)]),
        # Off or 2-3 kW: two intervals, binaries.
        ([(2, 3), (0, 0)], (3, 0), [(0, 0), (2, 3)]),
        # A band the device cannot reach (above 1.5 kW) is dropped: one interval left.
        ([(0, 0), (2, 3)], (1.5, 0), [(0, 0)]),
        # No band reachable: all are kept, so the conflict is named.
        ([(2, 3)], (1, 0), [(2, 3)]),
    ],
)
def test_bands_merge_into_intervals(bands, reach, expected):
    assert intervals(bands, *reach) == expected


def test_binaries_only_where_the_bands_need_them():
    """Bands (0, 1) and (1, 2) are one interval [0, 2]: a row per step, no integer column.

    (0, 1) and (1, 3) span the whole 0-3 kW the device can do: not even a row.

    Off or 2-3 kW needs one binary per interval and step: 2 x 3 steps = 6.
    """
    grid = TimeGrid(T0, HOUR, 3)

    def integers(bands):
        dev = StorageDevice(
            "h", 3, 0.0, soc_max=10.0, production_capacity=0.0, power_capacity=3.0,
            consumption_capacity=3.0, operation_modes=bands,
        )  # fmt: skip
        clp = build(SiteProblem(grid, [dev], np.full(3, 0.1))).lp.compile()
        names = {b.block.name for b in clp.blocks}
        return int(clp.integer.sum()), names

    count, names = integers([(0, 1), (1, 2)])
    assert count == 0 and "h.operation-modes" in names
    count, names = integers([(0, 1), (1, 3)])
    assert count == 0 and not any("operation" in n for n in names)
    count, names = integers([(0, 0), (2, 3)])
    assert count == 6 and "h.operation-mode.choice" in names

"""Multi-commodity scheduling from FlexMeasures JSON: heat pump, heat buffer, CHP, gas.

Every expected number is derived by hand in the test's docstring.
"""

from __future__ import annotations

import numpy as np
import pytest

from schemas.commodities import resolve_commodities
from schemas.errors import InputError
from schemas.flex_problem import TimeGrid
from schemas.flex_request import make_grid, parse_site_problem
from schemas.flex_series import SeriesReader
from solvers import Status, schedule
from solvers.engine import _hard_violations
from solvers.formulation import build
from solvers.result import DeviceSchedule

START = "2024-05-01T00:00+00:00"


def hourly(values: list[float], unit: str) -> list[dict[str, str]]:
    """One segment per hour from START."""
    return [
        {"start": f"2024-05-01T{h:02d}:00+00:00", "duration": "PT1H", "value": f"{v} {unit}"}
        for h, v in enumerate(values)
    ]


def heat_pump(cop: float | list = 3.0, kw: float = 2.0) -> list[dict]:
    """A heat pump as two ports of one coupling: electricity in, heat out."""
    return [
        {"sensor": "hp", "coupling": "hp", "consumption-capacity": f"{kw} kW"},
        {
            "sensor": "hp-heat",
            "commodity": "heat",
            "coupling": "hp",
            "coupling-coefficient": cop,
            "production-capacity": "100 kW",
        },
    ]


def buffer(**fields) -> dict:
    """A heat buffer: a storage on heat that only charges."""
    return {
        "sensor": "buffer",
        "commodity": "heat",
        "soc-at-start": "0 kWh",
        "soc-max": "20 kWh",
        "consumption-capacity": "10 kW",
        "production-capacity": "0 kW",
        **fields,
    }


def run(flex_model, flex_context, hours=4):
    problem = parse_site_problem(flex_model, flex_context, START, f"PT{hours}H", "PT1H")
    return schedule(problem)


def power(result, sensor):
    return np.round(result.schedule_of(sensor).power, 9)


def test_heat_pump_with_cop_3_fills_the_buffer_before_the_price_peak():
    """Prices 50, 100, 300, 300 EUR/MWh; heat use 3 kW every hour, 12 kWh in all.

    The buffer starts empty, so the 12 kWh of heat must come from the heat
    pump: 4 kWh of electricity at COP 3. It can draw 2 kW (6 kW of heat) per
    hour, so the two cheap hours supply all of it: 2 kWh at 50 and 2 kWh at 100
    EUR/MWh = 0.10 + 0.20 = 0.30 EUR. The buffer holds 0, 3, 6, 3, 0 kWh.
    """
    fm = [*heat_pump(), buffer(**{"soc-usage": "3 kW"})]
    result = run(fm, {"consumption-price": hourly([50, 100, 300, 300], "EUR/MWh")})
    assert result.status is Status.OPTIMAL, result.message
    assert power(result, "hp").tolist() == [2, 2, 0, 0]
    assert power(result, "hp-heat").tolist() == [-6, -6, 0, 0]
    assert power(result, "buffer").tolist() == [6, 6, 0, 0]
    assert result.schedule_of("buffer").soc == pytest.approx([0, 3, 6, 3, 0])
    assert result.schedule_of("hp").soc is None  # a port has no state of charge
    assert result.costs.total == pytest.approx(0.30)
    assert result.costs.commodities["electricity"].energy == pytest.approx(0.30)
    assert result.costs.commodities["heat"].energy == pytest.approx(0.0)


def test_a_cop_per_step_moves_the_heat_pump_to_the_efficient_hour():
    """Flat 100 EUR/MWh; COP 2 in hour 0 and 4 in hour 1; 6 kWh of heat used in hour 1.

    At COP 4 the 6 kWh cost 1.5 kWh of electricity (0.15 EUR), at COP 2 they
    would cost 3 kWh (0.30 EUR): the heat pump runs 1.5 kW in hour 1 only.
    """
    cop = [{"start": START, "duration": "PT1H", "value": 2}, {"start": "2024-05-01T01:00+00:00",
           "duration": "PT1H", "value": 4}]  # fmt: skip
    fm = [*heat_pump(cop), buffer(**{"soc-usage": hourly([0, 6], "kW")})]
    result = run(fm, {"consumption-price": "100 EUR/MWh"}, hours=2)
    assert result.status is Status.OPTIMAL, result.message
    assert power(result, "hp").tolist() == [0, 1.5]
    assert power(result, "hp-heat").tolist() == [0, -6]
    assert result.costs.total == pytest.approx(0.15)


def test_storage_losses_make_the_heat_pump_run_just_in_time():
    """Flat 100 EUR/MWh, COP 3, 3 kWh of heat used in hour 3 only.

    Without losses every hour costs the same (1 kWh of electricity, 0.10 EUR)
    and the tie goes to charging sooner: hour 0. A buffer losing 10% per hour
    would lose heat by waiting, so the heat pump runs in hour 3 itself, for the
    same 0.10 EUR.
    """
    usage = {"soc-usage": hourly([0, 0, 0, 3], "kW")}
    context = {"consumption-price": "100 EUR/MWh"}
    lossless = run([*heat_pump(), buffer(**usage)], context)
    assert power(lossless, "hp").tolist() == [1, 0, 0, 0]
    lossy = run([*heat_pump(), buffer(**usage, **{"storage-efficiency": "90%"})], context)
    assert power(lossy, "hp").tolist() == [0, 0, 0, 1]
    assert lossless.costs.total == pytest.approx(0.10)
    assert lossy.costs.total == pytest.approx(0.10)


def chp(gas_price: float) -> tuple[list[dict], dict]:
    """A CHP (10 kW of gas gives 4 kW of electricity and 5 kW of heat) and a heat buffer."""
    fm = [
        {"sensor": "chp-gas", "commodity": "gas", "coupling": "chp",
         "consumption-capacity": "10 kW"},
        {"sensor": "chp-el", "coupling": "chp", "coupling-coefficient": 0.4,
         "production-capacity": "4 kW"},
        {"sensor": "chp-heat", "commodity": "heat", "coupling": "chp",
         "coupling-coefficient": 0.5, "production-capacity": "5 kW"},
        buffer(**{"soc-max": "100 kWh"}),
    ]  # fmt: skip
    context = {
        "consumption-price": hourly([50, 200, 50, 200], "EUR/MWh"),
        "commodities": [{"commodity": "gas", "consumption-price": f"{gas_price} EUR/MWh"}],
    }
    return fm, context


def test_a_chp_runs_when_gas_is_cheap_and_electricity_dear():
    """Gas 30 EUR/MWh; electricity 50, 200, 50, 200 EUR/MWh (sold at the same price).

    One kWh of gas costs 0.03 EUR and gives 0.4 kWh of electricity, worth
    0.4 * 0.05 = 0.02 EUR in the cheap hours (a loss) and 0.4 * 0.2 = 0.08 EUR
    in the dear ones (a gain). So the CHP burns 10 kW of gas in hours 1 and 3:
    gas 2 * 10 kWh * 0.03 = 0.60 EUR, electricity sold 2 * 4 kWh * 0.2 = 1.60 EUR,
    total -1.00 EUR; its 5 kW of heat fill the buffer to 10 kWh.
    """
    result = run(*chp(30))
    assert result.status is Status.OPTIMAL, result.message
    assert power(result, "chp-gas").tolist() == [0, 10, 0, 10]
    assert power(result, "chp-el").tolist() == [0, -4, 0, -4]
    assert power(result, "chp-heat").tolist() == [0, -5, 0, -5]
    assert result.schedule_of("buffer").soc[-1] == pytest.approx(10)
    by = result.costs.commodities
    assert by["gas"].consumption == pytest.approx(0.60)
    assert by["electricity"].production_revenue == pytest.approx(1.60)
    assert result.costs.total == pytest.approx(-1.00)


def test_a_chp_stays_off_when_gas_is_dear():
    """Gas 100 EUR/MWh: 0.10 EUR of gas gives at most 0.08 EUR of electricity: it never runs."""
    result = run(*chp(100))
    assert result.status is Status.OPTIMAL, result.message
    assert power(result, "chp-gas").tolist() == [0, 0, 0, 0]
    assert result.costs.total == pytest.approx(0.0)


def test_unmet_heat_demand_is_a_priced_breach_of_the_heat_balance():
    """A heat demand of 10 kW (heat context) against at most 6 kW from the heat pump, 1 hour.

    Heat has no connection (an internal node), so 4 kW stay unmet: a breach of
    the heat balance at the default 10000 EUR/kW, per step and once more at the
    peak: 40000 + 40000 EUR, plus 2 kWh of electricity at 100 EUR/MWh = 0.20 EUR.
    """
    context = {
        "consumption-price": "100 EUR/MWh",
        "commodities": [{"commodity": "heat", "inflexible-consumption": "10 kW"}],
    }
    result = run(heat_pump(), context, hours=1)
    assert result.status is Status.RELAXED, result.message
    assert [(b.constraint, b.amount, b.cost) for b in result.breaches] == [
        ("heat balance", pytest.approx(4), pytest.approx(40000)),
        ("heat balance (peak)", pytest.approx(4), pytest.approx(40000)),
    ]
    assert result.costs.breaches == pytest.approx(80000)
    assert result.costs.total == pytest.approx(80000.20)


def test_a_hard_heat_balance_that_cannot_hold_is_named_in_the_diagnosis():
    """As above with relax-constraints false for heat: infeasible, the heat balance named (4 kW)."""
    context = {
        "consumption-price": "100 EUR/MWh",
        "commodities": [
            {"commodity": "heat", "inflexible-consumption": "10 kW", "relax-constraints": False}
        ],
    }
    result = run(heat_pump(), context, hours=1)
    assert result.status is Status.INFEASIBLE
    assert not result.schedules
    assert {c.constraint for c in result.conflicts} == {"heat balance"}
    assert sum(c.amount for c in result.conflicts) == pytest.approx(4)


def test_gas_export_is_a_breach_without_a_production_price():
    """Gas with only a consumption price cannot be exported (capacity 0, soft), as FlexMeasures.

    A gas port forced to produce 1 kW for an hour (its SOC must fall by 1 kWh):
    a gas export breach of 1 kW, 10000 EUR per step and at the peak.
    """
    fm = [
        {"sensor": "gas-store", "commodity": "gas", "soc-at-start": "1 kWh", "soc-min": "0 kWh",
         "soc-targets": [{"datetime": "2024-05-01T01:00+00:00", "value": "0 kWh"}],
         "power-capacity": "1 kW"},
    ]  # fmt: skip
    context = {
        "consumption-price": "100 EUR/MWh",
        "soc-minima-breach-price": "1000000 EUR/kWh",
        "soc-maxima-breach-price": "1000000 EUR/kWh",
        "commodities": [{"commodity": "gas", "consumption-price": "30 EUR/MWh"}],
    }
    result = run(fm, context, hours=1)
    assert result.status is Status.RELAXED, result.message
    assert [b.constraint for b in result.breaches] == [
        "gas site-production-capacity",
        "gas site-production-capacity (peak)",
    ]
    assert result.costs.breaches == pytest.approx(20000)


def test_the_flex_context_may_be_the_list_of_commodity_contexts():
    """FlexMeasures' list form: electricity's entry is the site context, gas's its own."""
    fm, context = chp(30)
    as_list = [{"commodity": "electricity", "consumption-price": context["consumption-price"]},
               *context["commodities"]]  # fmt: skip
    result = run(fm, as_list)
    assert result.costs.total == pytest.approx(-1.00)


def commodity(entry: dict, grid: TimeGrid | None = None):
    """One resolved commodity context."""
    grid = grid or make_grid(START, "PT2H", "PT1H")
    entries = [("flex-context.commodities[0]", entry)]
    (out,) = resolve_commodities(entries, [], SeriesReader(grid), "EUR")
    return out


def test_smart_defaults_of_a_commodity_context_follow_flexmeasures():
    """Which grid fields are given decides the connection (FlexMeasures' rules 1-6)."""
    node = commodity({"commodity": "heat"})
    assert node.internal_node
    assert node.site_consumption_capacity.tolist() == [0, 0]
    assert node.site_production_capacity.tolist() == [0, 0]
    assert node.consumption_breach_price.tolist() == [10000, 10000]
    assert node.consumption_price.tolist() == [0, 0]

    gas = commodity({"commodity": "gas", "consumption-price": "30 EUR/MWh"})
    assert not gas.internal_node
    assert np.isnan(gas.site_consumption_capacity).all()
    assert gas.site_production_capacity.tolist() == [0, 0]
    assert gas.consumption_breach_price is None
    assert gas.production_breach_price.tolist() == [10000, 10000]
    assert gas.consumption_price == pytest.approx([0.03, 0.03])

    hard = commodity({"commodity": "steam", "site-power-capacity": "5 kW"})
    assert hard.site_consumption_capacity.tolist() == [5, 5]
    assert hard.site_production_capacity.tolist() == [5, 5]
    assert hard.consumption_breach_price is None and hard.production_breach_price is None

    capped = commodity({"commodity": "h2", "site-consumption-capacity": "7 kW"})
    assert capped.consumption_price.tolist() == [0, 0]
    assert capped.site_consumption_capacity.tolist() == [7, 7]
    assert capped.consumption_breach_price is None
    assert capped.site_production_capacity.tolist() == [0, 0]

    priced = commodity({"commodity": "heat", "site-production-breach-price": "400 EUR/kWh"},
                       make_grid(START, "PT1H", "PT15M"))  # fmt: skip
    assert priced.production_breach_price.tolist() == [100] * 4  # per kWh: times 0.25 h
    assert priced.consumption_breach_price.tolist() == [10000] * 4

    strict = commodity({"commodity": "heat", "relax-constraints": False})
    assert strict.consumption_breach_price is None and strict.production_breach_price is None


@pytest.mark.parametrize(
    ("flex_model", "context", "field", "words"),
    [
        (
            heat_pump(-3),
            {"consumption-price": "1 EUR/MWh"},
            "flex-model[1].coupling-coefficient",
            "must be positive",
        ),
        (
            [{"sensor": "hp", "coupling-coefficient": 3, "power-capacity": "1 kW"}],
            {"consumption-price": "1 EUR/MWh"},
            "flex-model[0].coupling-coefficient",
            "needs a coupling",
        ),
        (
            heat_pump()[:1],
            {"consumption-price": "1 EUR/MWh"},
            "flex-model[0].coupling",
            "one port only",
        ),
        (
            heat_pump(),
            {"consumption-price": "1 EUR/MWh", "commodities": [{"commodity": "heat"},
                                                               {"commodity": "heat"}]},
            "flex-context.commodities[1].commodity",
            "listed once",
        ),
        (
            heat_pump(),
            {"consumption-price": "1 EUR/MWh",
             "commodities": [{"commodity": "heat", "consumption-prise": "1 EUR/MWh"}]},
            "flex-context.commodities[0].consumption-prise",
            "did you mean 'consumption-price'",
        ),
        (
            heat_pump(),
            {"consumption-price": "1 EUR/MWh",
             "commodities": [{"commodity": "gas", "commitments": []}]},
            "flex-context.commodities[0].commitments",
            "electricity context only",
        ),
        (
            heat_pump(),
            {"consumption-price": "1 EUR/MWh",
             "commodities": [{"commodity": "gas", "consumption-price": "30 USD/MWh"}]},
            "flex-context.commodities[0].consumption-price",
            "EUR",
        ),
        (
            heat_pump(),
            {"consumption-price": "1 EUR/MWh",
             "commodities": [{"commodity": "electricity", "consumption-price": "2 EUR/MWh"}]},
            "flex-context.commodities[0].consumption-price",
            "not both",
        ),
        (
            heat_pump(),
            {"commodities": [{"commodity": "electricity", "consumption-price": "2 kW"}]},
            "flex-context.commodities[0].consumption-price",
            "price",
        ),
        (
            heat_pump(),
            {"consumption-price": "1 EUR/MWh", "commodities": {"commodity": "gas"}},
            "flex-context.commodities",
            "one object per commodity",
        ),
        (
            heat_pump(),
            {"consumption-price": "1 EUR/MWh", "commodity": "heat"},
            "flex-context.commodity",
            "commodities list",
        ),
        (
            [*heat_pump(), buffer(group={"sensor": "inv"}),
             {"sensor": "inv", "power-capacity": "5 kW"}],
            {"consumption-price": "1 EUR/MWh"},
            "flex-model[2].group",
            "limits electric power",
        ),
    ],
)  # fmt: skip
def test_errors_name_the_commodity_field_as_written(flex_model, context, field, words):
    with pytest.raises(InputError) as info:
        parse_site_problem(flex_model, context, START, "PT2H", "PT1H")
    assert info.value.field == field
    assert words in str(info.value)


def test_couplings_and_commodity_limits_take_part_in_the_diagnosis():
    """The elastic model gives every coupling row and the heat limits slack; balances none.

    The heat pump's heat port is tied to its electricity port at every one of
    the 2 steps (2 rows, one slack each way); the heat node's two zero
    capacities are hard with relax-constraints false, so they are diagnosable too.
    """
    context = {"consumption-price": "1 EUR/MWh",
               "commodities": [{"commodity": "heat", "relax-constraints": False}]}  # fmt: skip
    problem = parse_site_problem(heat_pump(), context, START, "PT2H", "PT1H")
    elastic = build(problem).lp.compile(elastic=True)
    by_name = {cb.block.constraint: cb for cb in elastic.blocks}
    coupling = by_name["coupling"]
    assert coupling.block.device == "hp"
    assert len(coupling.kept) == 2
    assert coupling.slack_lower is not None and coupling.slack_upper is not None
    assert by_name["heat balance"].slack_upper is not None  # the zero capacities
    balance = next(cb for cb in elastic.blocks if cb.block.name == "heat.balance")
    assert balance.slack_lower is None and balance.slack_upper is None  # definitional


def test_a_schedule_off_its_coupling_is_caught_by_the_hard_checks():
    """Heat 5 kW against 1 kW of electricity at COP 3 is 2 kW off the coupling: named as such."""
    problem = parse_site_problem(heat_pump(), {"consumption-price": "1 EUR/MWh"}, START, "PT1H",
                                 "PT1H")  # fmt: skip
    schedules = [DeviceSchedule("hp", "storage", np.array([1.0])),
                 DeviceSchedule("hp-heat", "storage", np.array([-5.0]))]  # fmt: skip
    nets = {"heat": np.array([-5.0])}
    found = list(_hard_violations(problem, schedules, np.array([1.0]), nets))
    assert [(b.constraint, b.device, b.amount) for b in found] == [("coupling", "hp", 2.0)]

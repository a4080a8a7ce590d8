"""Portfolios (VPP): parsing, a case derived by hand, the CLI, and properties on random ones."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from milp_reference import portfolio_reference_cost

from schemas.errors import InputError
from schemas.flex_problem import BreachPrices, Commitment, SiteProblem, StorageDevice, TimeGrid
from schemas.portfolio import PortfolioProblem, PortfolioSite, parse_portfolio
from solvers import Status, portfolio_decomposition, schedule
from solvers.examples import portfolio_request
from solvers.highs_backend import MIP_REL_GAP
from solvers.portfolio import market_costs, schedule_portfolio
from solvers.portfolio_decomposition import GAP, schedule_decomposed
from solvers.storage import soc_trajectory
from streams.cli.schedule import schedule as schedule_command

START = "2024-01-01T00:00+00:00"

#: Two sites, three hours (see test_joint_position_is_met_by_shifting_the_depot).
DOCUMENT = {
    "sites": [
        {
            "name": "bakery",
            "flex-model": [
                {
                    "sensor": "oven",
                    "power": "20 kW",
                    "duration": "PT1H",
                    "process-type": "INFLEXIBLE",
                }
            ],
            "flex-context": {"inflexible-consumption": "10 kW"},
        },
        {
            "name": "depot",
            "flex-model": [
                {
                    "sensor": "battery",
                    "soc-at-start": "20 kWh",
                    "soc-min": "0 kWh",
                    "soc-max": "40 kWh",
                    "power-capacity": "20 kW",
                }
            ],
            "flex-context": {},
        },
    ],
    "flex-context": {
        "consumption-price": "100 EUR/MWh",
        "commitments": [
            {
                "name": "position",
                "baseline": "10 kW",
                "up-price": "500 EUR/MW",
                "down-price": "-500 EUR/MW",
            }
        ],
    },
    "start": START,
    "duration": "PT3H",
    "resolution": "PT1H",
}


def test_joint_position_is_met_by_shifting_the_depot():
    """The depot's battery covers the bakery's oven hour, so the portfolio holds its position.

    Steps of 1 h; the bakery draws 10 kW plus its oven's 20 kW in the first hour:
    ``[30, 10, 10]`` kW. The depot's battery (20 of 40 kWh, 20 kW) moves ``p``.
    The portfolio's net ``N = [30 + p0, 10 + p1, 10 + p2]`` costs 0.1 EUR/kWh
    both ways and 0.5 EUR per kW per hour away from the 10 kW position (up-price
    500 EUR/MW, down-price -500 EUR/MW: a penalty below it too)::

        cost = 0.1 * (50 + p0 + p1 + p2) + 0.5 * (|20 + p0| + |p1| + |p2|)

    The battery can give at most its 20 kWh (``p0 + p1 + p2 >= -20``), so the
    energy term is at least 0.1 * 30 = 3 EUR, and the deviation term at least 0.
    ``p = [-20, 0, 0]`` attains both, and only it makes every deviation zero:
    the unique optimum, 3 EUR, the battery empty after the first hour.

    Scheduled apart (each site at the portfolio's price, no position), the depot
    is indifferent when to sell its 20 kWh; its tie-break (prefer-charging-sooner:
    discharge late) sells in the last hour: ``N = [30, 10, -10]``, the same 3 EUR
    of energy plus 0.5 * 20 above the position in the first hour and 0.5 * 20
    below it in the last: 23 EUR.
    """
    problem = parse_portfolio(DOCUMENT)
    result = schedule_portfolio(problem)
    assert result.status is Status.OPTIMAL and result.proven_optimal, result.message
    depot = result.sites["depot"].schedule_of("battery")
    np.testing.assert_allclose(depot.power, [-20.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(depot.soc, [20.0, 0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(result.sites["bakery"].schedule_of("oven").power, [20.0, 0.0, 0.0])
    np.testing.assert_allclose(result.net_power, [10.0, 10.0, 10.0], atol=1e-9)
    assert result.costs.consumption == pytest.approx(3.0)
    assert result.costs.commitments == {"position": pytest.approx(0.0, abs=1e-9)}
    assert result.site_costs == {"bakery": 0.0, "depot": pytest.approx(0.0, abs=1e-9)}
    assert result.total == pytest.approx(3.0)

    apart = [
        schedule(
            dataclasses.replace(
                s.problem,
                consumption_price=problem.consumption_price,
                production_price=problem.production_price,
            )
        )
        for s in problem.sites
    ]
    np.testing.assert_allclose(apart[1].schedule_of("battery").power, [0.0, 0.0, -20.0], atol=1e-9)
    net = sum(
        np.sum([d.power for d in r.schedules], axis=0) + s.problem.inflexible_power
        for r, s in zip(apart, problem.sites, strict=True)
    )
    np.testing.assert_allclose(net, [30.0, 10.0, -10.0], atol=1e-9)
    assert market_costs(problem, net).total == pytest.approx(23.0)

    out = result.to_json("kW")
    assert [s["name"] for s in out["sites"]] == ["bakery", "depot"]
    assert out["sites"][1]["schedules"][0]["sensor"] == "battery"
    assert out["costs"]["total"] == pytest.approx(3.0)
    assert out["costs"]["market"]["commitments"]["position"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["sites"][1]["flex-model"][0].update({"soc-max": "40 kW"}),
         "sites[1].flex-model[0].soc-max"),
        (lambda d: d["sites"][0]["flex-context"].update({"site-power-capacitty": "1 kW"}),
         "sites[0].flex-context.site-power-capacitty"),
        (lambda d: d["flex-context"].update({"site-power-capacity": "1 kW"}),
         "flex-context.site-power-capacity"),
        (lambda d: d["flex-context"]["commitments"][0].pop("baseline"),
         "flex-context.commitments[0].baseline"),
        (lambda d: d["sites"][1].update({"name": "bakery"}), "sites[1].name"),
        (lambda d: d["sites"][1].pop("flex-model"), "sites[1].flex-model"),
        (lambda d: d["sites"][1]["flex-context"].update({"consumption-price": "1 kg/MWh"}),
         "sites[1].flex-context.consumption-price"),
        (lambda d: d.pop("start"), "start"),
        (lambda d: d.update({"sites": []}), "sites"),
    ],
)  # fmt: skip
def test_errors_name_the_field_as_written(edit, field):
    doc = copy.deepcopy(DOCUMENT)
    edit(doc)
    with pytest.raises(InputError) as err:
        parse_portfolio(doc)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_site_prices_and_currency_follow_the_portfolio():
    doc = copy.deepcopy(DOCUMENT)
    doc["flex-context"].pop("consumption-price")
    doc["sites"][0]["flex-context"]["consumption-price"] = "30 EUR/MWh"
    problem = parse_portfolio(doc, duration="PT2H")
    assert problem.grid.n == 2 and problem.currency == "EUR"
    np.testing.assert_allclose(problem.consumption_price, 0.0)
    np.testing.assert_allclose(problem.sites[0].problem.consumption_price, 0.03)
    np.testing.assert_allclose(problem.sites[1].problem.consumption_price, 0.0)


def invoke(tmp_path, doc, *extra):
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(doc))
    return CliRunner().invoke(schedule_command, ["--portfolio", str(path), *extra])


def test_cli_prints_each_site_as_the_single_site_command_does(tmp_path):
    res = invoke(tmp_path, DOCUMENT, "--unit", "MW")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "optimal" and out["unit"] == "MW"
    depot = out["sites"][1]
    assert depot["name"] == "depot" and depot["status"] == "optimal"
    assert depot["schedules"][0]["values"] == pytest.approx([-0.02, 0.0, 0.0])
    assert depot["schedules"][0]["state-of-charge-unit"] == "MWh"
    assert out["net-power"] == pytest.approx([0.01, 0.01, 0.01])
    assert out["costs"]["sites"] == {"bakery": 0.0, "depot": pytest.approx(0.0, abs=1e-9)}


def test_cli_bad_input_and_infeasible_site(tmp_path):
    doc = copy.deepcopy(DOCUMENT)
    doc["sites"][1]["flex-model"][0]["soc-max"] = "40 kW"
    res = invoke(tmp_path, doc)
    assert res.exit_code == 2 and "sites[1].flex-model[0].soc-max" in res.stderr
    assert json.loads(res.stdout)["status"] == "invalid"

    doc = copy.deepcopy(DOCUMENT)
    doc["sites"][1]["flex-model"][0]["soc-targets"] = [
        {"datetime": "2024-01-01T01:00+00:00", "value": "0 kWh"}
    ]
    doc["sites"][1]["flex-model"][0]["power-capacity"] = "5 kW"
    doc["sites"][1]["flex-context"]["relax-constraints"] = False
    res = invoke(tmp_path, doc)
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert out["status"] == "infeasible" and "'depot'" in out["message"]
    depot = out["sites"][1]
    assert depot["status"] == "infeasible" and depot["breaches"][0]["device"] == "battery"
    assert out["sites"][0]["schedules"] == []


def test_cli_refuses_both_kinds_of_input(tmp_path):
    res = invoke(tmp_path, DOCUMENT, "--flex-model", "x.json")
    assert res.exit_code == 2 and "--portfolio" in res.stderr


# Random portfolios against the independent reference.

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def portfolios(draw):
    n = draw(st.integers(2, 5))
    dt = draw(st.sampled_from([0.25, 1.0]))
    grid = TimeGrid(T0, timedelta(hours=dt), n)
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 3))  # noqa: E731
    series = lambda lo, hi: np.array(draw(st.lists(floats(lo, hi), min_size=n, max_size=n)))  # noqa: E731
    soft = draw(st.booleans())
    sites = []
    for i in range(draw(st.integers(1, 3))):
        devices = []
        for j in range(draw(st.integers(1, 2))):
            soc_max = draw(floats(5, 40))
            minima = np.full(n + 1, np.nan)
            if draw(st.booleans()):
                minima[n] = draw(floats(0, soc_max))
            devices.append(
                StorageDevice(
                    f"s{i}-d{j}",
                    n,
                    soc_at_start=draw(floats(0, soc_max)),
                    soc_max=soc_max,
                    soc_minima=minima,
                    consumption_capacity=draw(floats(0, 20)),
                    production_capacity=draw(floats(0, 20)),
                    charging_efficiency=draw(floats(0.8, 1.0)),
                    discharging_efficiency=draw(floats(0.8, 1.0)),
                    storage_efficiency=draw(floats(0.95, 1.0)),
                )
            )
        fee = draw(floats(0, 0.05))
        sites.append(
            PortfolioSite(
                f"site-{i}",
                SiteProblem(
                    grid,
                    devices,
                    fee,
                    production_price=0.0,
                    site_power_capacity=draw(st.one_of(st.just(np.nan), floats(10, 40))),
                    inflexible_power=series(-10, 10),
                    breach_prices=BreachPrices(50.0, 50.0) if soft else BreachPrices(),
                ),
            )
        )
    cp = series(-0.1, 0.4)
    pp = cp - series(0, 0.1) if draw(st.booleans()) else series(-0.1, 0.4)
    commitments = []
    if draw(st.booleans()):
        up = series(0, 0.3)
        down = up - series(0, 0.3) if draw(st.booleans()) else series(-0.3, 0.3)
        baseline = series(-20, 20)
        baseline[draw(st.integers(0, n - 1))] = np.nan
        commitments.append(Commitment("position", baseline, up, down))
    return PortfolioProblem(grid, sites, cp, pp, commitments)


def _own_costs_apart(site: PortfolioSite, result) -> tuple[np.ndarray, float]:
    """A site scheduled apart: its net power, and its own costs (fee and breaches)."""
    p = site.problem
    net = np.sum([s.power for s in result.schedules], axis=0) + p.inflexible_power
    dt = p.grid.dt_hours
    own = float(np.sum(dt * (p.consumption_price * np.maximum(net, 0.0))))
    return net, own + result.costs.breaches


SETTINGS = settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(portfolios())
def test_joint_optimum_matches_the_reference_and_beats_scheduling_apart(problem):
    result = schedule_portfolio(problem)
    ref = portfolio_reference_cost(problem)
    event(f"{result.status}, binaries: {result.used_binaries}")
    if ref is None or result.status is Status.INFEASIBLE:
        assert result.status is Status.INFEASIBLE and ref is None
        assert any(r.conflicts for r in result.sites.values())
        return
    assert result.status in (Status.OPTIMAL, Status.RELAXED), result.message
    gap = MIP_REL_GAP if result.used_binaries else 1e-6
    assert result.total == pytest.approx(ref, rel=gap, abs=1e-5)

    dt = problem.grid.dt_hours
    total_net = np.zeros(problem.grid.n)
    for site in problem.sites:
        r = result.sites[site.name]
        net = site.problem.inflexible_power.copy()
        for dev, s in zip(site.problem.devices, r.schedules, strict=True):
            np.testing.assert_allclose(s.soc, soc_trajectory(dev, s.power, dt), atol=1e-9)
            assert np.all(s.soc[1:] >= dev.soc_min[1:] - 1e-6)
            assert np.all(s.soc[1:] <= dev.soc_max[1:] + 1e-6)
            net = net + s.power
        cap = site.problem.site_power_capacity
        assert np.all(np.isnan(cap) | (np.abs(net) <= cap + 1e-6))
        total_net += net
    np.testing.assert_allclose(result.net_power, total_net, atol=1e-9)

    # Apart: each site at the market's prices plus its fee, the market terms evaluated after.
    nets, own = [], 0.0
    for site in problem.sites:
        p = site.problem
        alone = dataclasses.replace(
            p,
            consumption_price=p.consumption_price + problem.consumption_price,
            production_price=p.production_price + problem.production_price,
        )
        r = schedule(alone)
        assert r.ok
        net, cost = _own_costs_apart(site, r)
        nets.append(net)
        own += cost
    apart = own + market_costs(problem, np.sum(nets, axis=0)).total
    assert result.total <= apart + gap * abs(apart) + 1e-6


@SETTINGS
@given(portfolios())
def test_decomposed_bounds_enclose_the_reference(problem):
    """Groups of one site: the schedules' real cost and the Lagrangian bound enclose the optimum."""
    result = schedule_decomposed(problem, group_sites=1)
    ref = portfolio_reference_cost(problem)
    if ref is None or result.status is Status.INFEASIBLE:
        assert result.status is Status.INFEASIBLE and ref is None
        return
    assert result.method == "decomposed" and len(result.sites) == len(problem.sites)
    assert result.status in (Status.OPTIMAL, Status.RELAXED, Status.TIME_LIMIT), result.message
    tol = MIP_REL_GAP * max(1.0, abs(ref)) + 1e-5
    assert result.total >= ref - tol
    event(f"bound: {result.lower_bound is not None}")
    if result.lower_bound is not None:
        assert result.lower_bound <= ref + tol
        assert result.gap == pytest.approx(
            max(0.0, result.total - result.lower_bound) / max(1.0, abs(result.total))
        )
        assert result.proven_optimal == (result.gap <= GAP)
        assert (result.status is Status.TIME_LIMIT) == (result.gap > GAP)


def test_decomposed_is_close_to_the_joint_optimum_and_bounds_it(monkeypatch):
    """Eight varied sites in groups of four: within 1 % of the joint optimum, bound below it."""
    problem = parse_portfolio(portfolio_request(8, seed=3))
    joint = schedule_portfolio(problem, method="joint")
    parts = schedule_decomposed(problem, group_sites=4)
    assert joint.status is Status.OPTIMAL and joint.method == "joint"
    assert parts.lower_bound <= joint.total + 1e-6 <= parts.total + 2e-6
    assert parts.gap < 1e-2
    assert "decomposed into groups of 4 sites" in parts.message
    with pytest.raises(InputError, match="method"):
        schedule_portfolio(problem, method="fastest")
    monkeypatch.setattr(portfolio_decomposition, "DECOMPOSE_MIN_SITES", 8)
    assert schedule_portfolio(problem).method == "decomposed"


def test_cli_decomposed_with_a_gap(tmp_path):
    res = invoke(tmp_path, DOCUMENT, "--method", "decomposed", "--gap", "0.5")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == "decomposed" and out["status"] == "optimal"
    assert out["lower-bound"] == pytest.approx(3.0) and out["gap"] == pytest.approx(0.0, abs=1e-9)
    assert out["costs"]["total"] == pytest.approx(3.0)


def test_decomposed_without_market_terms_is_the_sites_optimum():
    problem = parse_portfolio(portfolio_request(4, n=96, seed=5))
    problem.commitments = []
    problem.consumption_price[:] = 0.0
    problem.production_price[:] = 0.0
    joint = schedule_portfolio(problem)
    parts = schedule_decomposed(problem, group_sites=2)
    assert joint.method == "joint" and parts.method == "decomposed"
    assert parts.gap == 0.0 and parts.lower_bound == parts.total
    assert parts.status is joint.status and parts.proven_optimal
    assert parts.total == pytest.approx(joint.total, abs=1e-6)

"""Property tests on random instances against an independent scipy.optimize.milp model.

The reference gives every storage step a charge/discharge binary and every site
step an import/export binary (no per-instance shortcuts), so it checks the
engine's LP-first strategy as well as its formulation. It also models other
commodities (each its own balance, prices and capacities, priced breaches per
step and at the peak) and converters (ports tied to one flow level), for the
multi-commodity instances: a heat pump with a COP per step, a heat buffer with
losses and usage, and optionally a CHP burning priced gas.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from milp_reference import DenseModel, add_soc_bounds

from schemas.commodities import CommodityGrid, Coupling
from schemas.flex_problem import DeviceGroup
from solvers import BreachPrices, SiteProblem, Status, StorageDevice, TimeGrid, schedule
from solvers.commodities import coupling_mismatch, net_flow
from solvers.highs_backend import MIP_REL_GAP
from solvers.storage import decay_factor, soc_trajectory


def _gap(result) -> float:
    """Relative tolerance of a cost: tight for an LP, HiGHS's MILP gap after binaries."""
    return MIP_REL_GAP if result.used_binaries else 1e-6


T0 = datetime(2024, 1, 1, tzinfo=UTC)
TOL = 1e-6


# Absolute tolerance 1e-5: the reference (scipy/HiGHS defaults) accepts 1e-6 infeasibility.


def reference_cost(problem: SiteProblem) -> float | None:
    """Optimal cost by an independent dense MILP, or None when infeasible."""
    n, dt = problem.grid.n, problem.grid.dt_hours
    bp = problem.breach_prices
    model = DenseModel()
    add, rows = model.add, model.rows
    commodity_terms = {c.commodity: [{} for _ in range(n)] for c in problem.commodities}
    net_terms = commodity_terms["electricity"] = [{} for _ in range(n)]
    flows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for d in problem.devices:
        cc = np.where(np.isfinite(d.consumption_capacity), d.consumption_capacity, 1e4)
        pc_max = np.where(np.isfinite(d.production_capacity), d.production_capacity, 1e4)
        pc = add(n, 0.0, cc)
        pd = add(n, 0.0, pc_max)
        soc = add(n + 1, -np.inf, np.inf)
        z = add(n, 0.0, 1.0, 0.0, 1)
        b = decay_factor(d.storage_efficiency)
        rows.append(({soc[0]: 1.0}, d.soc_at_start, d.soc_at_start))
        for t in range(n):
            rows.append(
                (
                    {
                        soc[t + 1]: 1.0,
                        soc[t]: -d.storage_efficiency[t],
                        pc[t]: -b[t] * dt * d.charging_efficiency[t],
                        pd[t]: b[t] * dt / d.discharging_efficiency[t],
                    },
                    b[t] * dt * (d.soc_gain[t] - d.soc_usage[t]),
                    b[t] * dt * (d.soc_gain[t] - d.soc_usage[t]),
                )
            )
            rows.append(({pc[t]: 1.0, z[t]: -cc[t]}, -np.inf, 0.0))
            rows.append(({pd[t]: 1.0, z[t]: pc_max[t]}, -np.inf, pc_max[t]))
            commodity_terms[d.commodity][t][pc[t]] = 1.0
            commodity_terms[d.commodity][t][pd[t]] = -1.0
        flows[d.name] = (pc, pd)
        for t in range(n):
            if d.operation_modes:
                # One binary per band and step (no merging): exactly one band holds p.
                y = add(len(d.operation_modes), 0.0, 1.0, 0.0, 1)
                rows.append(({int(j): 1.0 for j in y}, 1.0, 1.0))
                for side in (0, 1):
                    row = {pc[t]: 1.0, pd[t]: -1.0}
                    bands = zip(y, d.operation_modes, strict=True)
                    row.update({int(j): -band[side] for j, band in bands})
                    rows.append((row, 0.0, np.inf) if side == 0 else (row, -np.inf, 0.0))
        add_soc_bounds(model, d, soc, bp)
    cap = np.where(np.isnan(problem.site_power_capacity), 1e5, problem.site_power_capacity)
    gc = add(n, 0.0, cap, problem.consumption_price * dt)
    gp = add(n, 0.0, cap, -problem.production_price * dt)
    y = add(n, 0.0, 1.0, 0.0, 1)
    for t in range(n):
        row = dict(net_terms[t])
        row[gc[t]] = -1.0
        row[gp[t]] = 1.0
        rows.append((row, -problem.inflexible_power[t], -problem.inflexible_power[t]))
        rows.append(({gc[t]: 1.0, y[t]: -1e5}, -np.inf, 0.0))
        rows.append(({gp[t]: 1.0, y[t]: 1e5}, -np.inf, 1e5))
    for cg in problem.commodities:
        cap = np.where(np.isnan(cg.site_power_capacity), 1e5, cg.site_power_capacity)
        hc = add(n, 0.0, cap, cg.consumption_price * dt)
        hp = add(n, 0.0, cap, -cg.production_price * dt)
        w = add(n, 0.0, 1.0, 0.0, 1)
        for h, limit, price in (
            (hc, cg.site_consumption_capacity, cg.consumption_breach_price),
            (hp, cg.site_production_capacity, cg.production_breach_price),
        ):
            steps = [t for t in range(n) if np.isfinite(limit[t])]
            if price is None:
                rows.extend(({h[t]: 1.0}, -np.inf, limit[t]) for t in steps)
                continue
            breach = add(n, 0.0, np.inf, price)
            (peak,) = add(1, 0.0, np.inf, 1.0)
            for t in steps:
                rows.append(({h[t]: 1.0, breach[t]: -1.0}, -np.inf, limit[t]))
                rows.append(({breach[t]: price[t], peak: -1.0}, -np.inf, 0.0))
        for t in range(n):
            row = dict(commodity_terms[cg.commodity][t])
            row[hc[t]] = -1.0
            row[hp[t]] = 1.0
            rows.append((row, -cg.inflexible_power[t], -cg.inflexible_power[t]))
            rows.append(({hc[t]: 1.0, w[t]: -1e5}, -np.inf, 0.0))
            rows.append(({hp[t]: 1.0, w[t]: 1e5}, -np.inf, 1e5))
    for coupling in problem.couplings:
        level = add(n, -np.inf, np.inf)
        for name, k in zip(coupling.devices, coupling.coefficients, strict=True):
            pc, pd = flows[name]
            rows.extend(({pc[t]: 1.0, pd[t]: -1.0, level[t]: -k[t]}, 0.0, 0.0) for t in range(n))
    for g in problem.groups:
        hp = add(n, 0.0, np.where(np.isfinite(g.power_capacity), g.power_capacity, 1e5))
        hm = add(n, 0.0, np.where(np.isfinite(g.power_capacity), g.power_capacity, 1e5))
        for t in range(n):
            row = {hp[t]: -1.0, hm[t]: 1.0}
            for m in g.members:
                row[flows[m][0][t]] = 1.0
                row[flows[m][1][t]] = -1.0
            rows.append((row, -g.inflexible_power[t], -g.inflexible_power[t]))
        for flow, cap, price in (
            (hp, g.consumption_capacity, g.consumption_breach_price),
            (hm, g.production_capacity, g.production_breach_price),
        ):
            peak = add(1, 0.0, np.inf, 1.0)[0] if price is not None else None
            for t in np.flatnonzero(np.isfinite(cap)):
                if price is None:
                    rows.append(({flow[t]: 1.0}, -np.inf, cap[t]))
                    continue
                (b,) = add(1, 0.0, np.inf, price[t])
                rows.append(({flow[t]: 1.0, b: -1.0}, -np.inf, cap[t]))
                rows.append(({b: price[t], peak: -1.0}, -np.inf, 0.0))
    return model.solve()


@st.composite
def instances(draw, soft=False):
    n = draw(st.integers(2, 8))
    dt = draw(st.sampled_from([0.25, 1.0]))
    grid = TimeGrid(T0, timedelta(hours=dt), n)
    # Three decimals: values far below the reference's 1e-6 tolerances only test its noise.
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 3))  # noqa: E731
    prices = np.array(draw(st.lists(floats(-0.2, 0.5), min_size=n, max_size=n)))
    spread = draw(st.sampled_from(["equal", "lower", "random"]))
    if spread == "equal":
        pp = prices.copy()
    elif spread == "lower":
        pp = prices - np.array(draw(st.lists(floats(0, 0.2), min_size=n, max_size=n)))
    else:
        pp = np.array(draw(st.lists(floats(-0.2, 0.5), min_size=n, max_size=n)))
    devices = []
    for i in range(draw(st.integers(1, 2))):
        soc_max = draw(floats(5, 50))
        targets = np.full(n + 1, np.nan)
        if draw(st.booleans()):
            targets[draw(st.integers(1, n))] = draw(floats(0, soc_max * 1.1))
        minima = np.full(n + 1, np.nan)
        if draw(st.booleans()):
            minima[draw(st.integers(1, n))] = draw(floats(0, soc_max))
        devices.append(
            StorageDevice(
                f"d{i}",
                n,
                soc_at_start=draw(floats(0, soc_max)),
                soc_min=0.0,
                soc_max=soc_max,
                soc_minima=minima,
                soc_targets=targets,
                consumption_capacity=draw(floats(0, 20)),
                production_capacity=draw(floats(0, 20)),
                charging_efficiency=draw(floats(0.7, 1.2)),
                discharging_efficiency=draw(floats(0.7, 1.0)),
                storage_efficiency=draw(floats(0.9, 1.0)),
                soc_usage=draw(floats(0, 1)),
                prefer_charging_sooner=False,
            )
        )
    cap = draw(st.one_of(st.just(np.nan), floats(5, 40)))
    inflex = np.array(draw(st.lists(floats(-10, 10), min_size=n, max_size=n)))
    breach = BreachPrices(50.0, 50.0) if soft else BreachPrices()
    return SiteProblem(
        grid,
        devices,
        prices,
        production_price=pp,
        site_power_capacity=cap,
        inflexible_power=inflex,
        breach_prices=breach,
    )


def check_schedule(problem, result):
    dt = problem.grid.dt_hours
    net = problem.inflexible_power.copy()
    devices = result.schedules[: len(problem.devices)]
    for dev, s in zip(problem.devices, devices, strict=True):
        assert np.all(s.power <= dev.consumption_capacity + TOL)
        assert np.all(-s.power <= dev.production_capacity + TOL)
        if dev.commodity == "electricity":
            net = net + s.power
        if not dev.has_soc:
            assert s.soc is None
            continue
        np.testing.assert_allclose(s.soc, soc_trajectory(dev, s.power, dt), atol=1e-9)
        assert s.soc[0] == pytest.approx(dev.soc_at_start)
        assert np.all(s.soc[1:] >= dev.soc_min[1:] - TOL)
        assert np.all(s.soc[1:] <= dev.soc_max[1:] + TOL)
        if problem.breach_prices.soc_minima is None:
            ok = np.isnan(dev.soc_targets) | (np.abs(s.soc - dev.soc_targets) <= TOL)
            assert ok.all()
        if dev.operation_modes:
            inside = [
                (lo - TOL <= s.power) & (s.power <= hi + TOL) for lo, hi in dev.operation_modes
            ]
            assert np.any(inside, axis=0).all()
    powers = {s.sensor: s.power for s in devices}
    for g, s in zip(problem.groups, result.schedules[len(devices) :], strict=True):
        expected = g.inflexible_power + sum((powers[m] for m in g.members), np.zeros(len(net)))
        np.testing.assert_allclose(s.power, expected, atol=1e-9)
        assert np.all(np.abs(s.power) <= g.power_capacity + TOL)
    cap = problem.site_power_capacity
    assert np.all(np.isnan(cap) | (np.abs(net) <= cap + TOL))


def matches_reference(problem):
    """Schedule ``problem`` and check it against the reference; the result, None if infeasible."""
    result = schedule(problem)
    ref = reference_cost(problem)
    if ref is None or result.status is Status.INFEASIBLE:
        assert result.status is Status.INFEASIBLE and result.conflicts
        assert ref is None or sum(c.amount for c in result.conflicts) < 1e-5
        return None
    assert result.status in (Status.OPTIMAL, Status.RELAXED), result.message
    check_schedule(problem, result)
    assert result.costs.total == pytest.approx(ref, rel=_gap(result), abs=1e-5)
    return result


SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(instances())
def test_hard_instances_match_the_reference(problem):
    result = schedule(problem)
    ref = reference_cost(problem)
    if ref is None or result.status is Status.INFEASIBLE:
        assert result.status is Status.INFEASIBLE
        assert result.conflicts and not result.schedules
        # The reference's tolerances are looser (1e-6): it may accept a tiny breach.
        assert ref is None or sum(c.amount for c in result.conflicts) < 1e-5
        return
    assert result.status is Status.OPTIMAL, result.message
    check_schedule(problem, result)
    assert result.costs.total == pytest.approx(ref, rel=_gap(result), abs=1e-5)


@SETTINGS
@given(instances(soft=True))
def test_soft_instances_match_the_reference_and_list_breaches(problem):
    result = schedule(problem)
    ref = reference_cost(problem)
    hard = SiteProblem(
        problem.grid,
        problem.devices,
        problem.consumption_price,
        problem.production_price,
        problem.site_power_capacity,
        inflexible_power=problem.inflexible_power,
    )
    if ref is None or result.status is Status.INFEASIBLE:
        assert result.status is Status.INFEASIBLE and result.conflicts
        assert ref is None or sum(c.amount for c in result.conflicts) < 1e-5
        return
    assert result.status in (Status.OPTIMAL, Status.RELAXED), result.message
    check_schedule(problem, result)
    assert result.costs.total == pytest.approx(ref, rel=_gap(result), abs=1e-5)
    if reference_cost(hard) is None:
        assert result.status is Status.RELAXED and result.breaches
    if result.status is Status.RELAXED:
        assert all(b.amount > 0 and b.cost is not None for b in result.breaches)


@st.composite
def grouped_instances(draw):
    """Instances with operation modes on some devices and a group over some of them."""
    problem = draw(instances(soft=True))
    n = problem.grid.n
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 3))  # noqa: E731
    for dev in problem.devices:
        kind = draw(st.sampled_from(["none", "off-or-band", "two-sided", "contiguous"]))
        lo, width = draw(floats(0.5, 6)), draw(floats(0, 6))
        if kind == "off-or-band":
            dev.operation_modes = ((0.0, 0.0), (lo, lo + width))
        elif kind == "two-sided":
            dev.operation_modes = ((-lo - width, -lo), (-0.5, 0.5), (lo + 1, lo + 1 + width))
        elif kind == "contiguous":
            dev.operation_modes = ((0.0, lo), (lo, lo + width))
    names = [d.name for d in problem.devices]
    members = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    price = draw(st.sampled_from([None, 5.0]))
    group = DeviceGroup(
        "g",
        n,
        members,
        power_capacity=draw(st.one_of(st.just(np.inf), floats(4, 30))),
        consumption_capacity=draw(st.one_of(st.just(np.nan), floats(0, 15))),
        production_capacity=draw(st.one_of(st.just(np.nan), floats(0, 15))),
        consumption_breach_price=None if price is None else np.full(n, price),
        production_breach_price=None if price is None else np.full(n, price),
        inflexible_power=np.array(draw(st.lists(floats(-3, 3), min_size=n, max_size=n))),
    )
    problem.groups = [group]
    return problem


@settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(grouped_instances())
def test_groups_and_operation_modes_match_the_reference(problem):
    matches_reference(problem)


@st.composite
def multi_instances(draw):
    """A heat pump (COP per step) and a heat buffer on a heat node; sometimes a CHP on gas."""
    n = draw(st.integers(2, 6))
    dt = draw(st.sampled_from([0.25, 1.0]))
    grid = TimeGrid(T0, timedelta(hours=dt), n)
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 3))  # noqa: E731
    series = lambda lo, hi: np.array(draw(st.lists(floats(lo, hi), min_size=n, max_size=n)))  # noqa: E731
    port = {"soc_at_start": 0.0, "soc_min": -np.inf, "has_soc": False}
    devices = [
        StorageDevice("hp", n, consumption_capacity=draw(floats(0, 5)), production_capacity=0.0,
                      **port),
        StorageDevice("hp-heat", n, consumption_capacity=0.0, production_capacity=1e3,
                      commodity="heat", **port),
    ]  # fmt: skip
    soc_max = draw(floats(5, 30))
    devices.append(
        StorageDevice(
            "buffer",
            n,
            soc_at_start=draw(floats(0, soc_max)),
            soc_max=soc_max,
            consumption_capacity=draw(floats(0, 20)),
            production_capacity=draw(st.sampled_from([0.0, 5.0])),
            storage_efficiency=draw(floats(0.9, 1.0)),
            soc_usage=series(0, 3),
            commodity="heat",
            prefer_charging_sooner=False,
        )
    )
    couplings = [Coupling("hp", ["hp", "hp-heat"], [np.ones(n), -series(1.5, 4.5)])]
    heat_price = draw(st.one_of(st.none(), floats(5, 200)))
    commodities = [
        CommodityGrid(
            "heat",
            n,
            site_consumption_capacity=0.0,
            site_production_capacity=0.0,
            consumption_breach_price=None if heat_price is None else np.full(n, heat_price),
            production_breach_price=None if heat_price is None else np.full(n, heat_price),
            inflexible_power=series(0, 2),
            internal_node=True,
        )
    ]
    if draw(st.booleans()):
        commodities.append(
            CommodityGrid("gas", n, consumption_price=draw(floats(0.01, 0.1)),
                          site_production_capacity=0.0)
        )  # fmt: skip
        devices += [
            StorageDevice("chp-gas", n, consumption_capacity=draw(floats(0, 10)),
                          production_capacity=0.0, commodity="gas", **port),
            StorageDevice("chp-el", n, consumption_capacity=0.0, production_capacity=1e3, **port),
            StorageDevice("chp-heat", n, consumption_capacity=0.0, production_capacity=1e3,
                          commodity="heat", **port),
        ]  # fmt: skip
        k_el, k_heat = draw(floats(0.25, 0.45)), draw(floats(0.4, 0.6))
        couplings.append(
            Coupling("chp", ["chp-gas", "chp-el", "chp-heat"],
                     [np.ones(n), np.full(n, -k_el), np.full(n, -k_heat)])
        )  # fmt: skip
    return SiteProblem(
        grid,
        devices,
        series(-0.1, 0.5),
        site_power_capacity=draw(st.one_of(st.just(np.nan), floats(3, 20))),
        inflexible_power=series(-3, 3),
        commodities=commodities,
        couplings=couplings,
    )


@SETTINGS
@given(multi_instances())
def test_multi_commodity_instances_match_the_reference(problem):
    result = matches_reference(problem)
    if result is None:
        return
    powers = {s.sensor: s.power for s in result.schedules}
    for coupling in problem.couplings:
        assert np.all(coupling_mismatch(coupling, powers) <= TOL)
    heat = net_flow(problem.commodities[0], problem.devices, [s.power for s in result.schedules])
    if problem.commodities[0].consumption_breach_price is None:
        assert np.all(np.abs(heat) <= TOL)  # a hard node balances in every step
    else:
        listed = sum(b.amount for b in result.breaches if b.constraint == "heat balance"
                     and not b.constraint.endswith("(peak)"))  # fmt: skip
        assert listed == pytest.approx(float(np.sum(np.abs(heat))), abs=1e-5)
    by_commodity = result.costs.commodities
    assert sum(c.energy for c in by_commodity.values()) == pytest.approx(result.costs.energy)

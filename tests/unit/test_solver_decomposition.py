"""Proving a fleet's optimum device by device (``solvers.decomposition``).

Checked against the independent dense MILP of ``test_solver_properties``
(every step a charge/discharge binary, gap 1e-10) on fleets of V2G stores
under partly negative prices, where the LP relaxation wastes energy and
binaries are needed: the schedule is valid and optimal within the MILP
tolerance, and the proven bound never exceeds the true optimum.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_solver_properties import T0, check_schedule, reference_cost

import solvers.decomposition as decomposition
import solvers.engine as engine
from solvers import BreachPrices, SiteProblem, Status, StorageDevice, TimeGrid, schedule
from solvers.examples import v2g_negative_evening_problem
from solvers.highs_backend import MIP_REL_GAP
from solvers.storage import waste_candidates


@pytest.fixture
def proofs(monkeypatch):
    """The engine's device-by-device proofs, as attempted: None where it fell back."""
    seen = []

    def spy(*args, **kwargs):
        proof = decomposition.prove_by_devices(*args, **kwargs)
        seen.append(proof)
        return proof

    monkeypatch.setattr(engine, "prove_by_devices", spy)
    return seen


def _lower_bound_on_cost(result, proof) -> float:
    """The proof's bound in the result's cost terms (the LP objective leaves out constants)."""
    return result.costs.total - (proof.raw.objective - proof.bound)


@st.composite
def fleets(draw):
    n = draw(st.integers(3, 8))
    dt = draw(st.sampled_from([0.25, 1.0]))
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 3))  # noqa: E731
    prices = np.array(draw(st.lists(floats(-0.3, 0.4), min_size=n, max_size=n)))
    start = draw(st.integers(0, n - 2))
    prices[start : start + draw(st.integers(1, n - start))] = draw(floats(-0.3, -0.01))
    devices = []
    for i in range(draw(st.integers(2, 4))):
        soc_max = draw(floats(5, 40))
        eff = draw(floats(0.8, 0.97))
        power = draw(floats(2, 15))
        minima = np.full(n + 1, np.nan)
        if draw(st.booleans()):  # a departure target (soft when the site prices breaches)
            minima[draw(st.integers(1, n))] = draw(floats(0, soc_max))
        devices.append(
            StorageDevice(
                f"ev{i}",
                n,
                soc_at_start=draw(floats(0.5, 1.0)) * soc_max,
                soc_min=0.0,
                soc_max=soc_max,
                soc_minima=minima,
                consumption_capacity=power,
                production_capacity=power,
                charging_efficiency=eff,
                discharging_efficiency=eff,
                storage_efficiency=draw(floats(0.95, 1.0)),
            )
        )
    if draw(st.booleans()):  # a connection the fleet competes for
        cap, inflex = (
            draw(floats(5, 40)),
            np.array(draw(st.lists(floats(-5, 10), min_size=n, max_size=n))),
        )
        pp = prices - np.array(draw(st.lists(floats(0, 0.1), min_size=n, max_size=n)))
    else:  # one price both ways, no limit: the site is its price
        cap, inflex, pp = np.nan, 0.0, prices.copy()
    grid = TimeGrid(T0, timedelta(hours=dt), n)
    soft = BreachPrices(0.5, 0.5) if draw(st.booleans()) else BreachPrices()
    return SiteProblem(
        grid,
        devices,
        prices,
        production_price=pp,
        site_power_capacity=cap,
        inflexible_power=inflex,
        breach_prices=soft,
    )


@settings(
    max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(fleets())
def test_fleets_match_the_reference_and_bounds_never_exceed_the_optimum(problem):
    seen = []
    original = engine.prove_by_devices

    def spy(*args, **kwargs):
        proof = original(*args, **kwargs)
        seen.append(proof)
        return proof

    engine.prove_by_devices = spy
    try:
        result = schedule(problem)
    finally:
        engine.prove_by_devices = original
    ref = reference_cost(problem)
    if ref is None:
        assert result.status is Status.INFEASIBLE
        return
    assert result.status in (Status.OPTIMAL, Status.RELAXED), result.message
    check_schedule(problem, result)
    scale = max(1.0, abs(ref))
    assert result.costs.total == pytest.approx(ref, rel=MIP_REL_GAP, abs=1e-5)
    for proof in seen:
        if proof is not None:
            assert _lower_bound_on_cost(result, proof) <= ref + 1e-6 * scale


def test_small_fleets_near_full_under_negative_prices_are_proven_device_by_device(proofs):
    """Fleets like the property's (seeded) take the decomposition, not only its fallback."""
    proven = 0
    for seed in range(12):
        problem = _seeded_fleet(seed)
        schedule(problem)
        proven += any(p is not None for p in proofs)
        proofs.clear()
    assert proven >= 3


def _seeded_fleet(seed: int) -> SiteProblem:
    """A few V2G stores near full under a negative-price block, seeded."""
    rng = np.random.default_rng(seed)
    n = 8
    prices = rng.uniform(-0.1, 0.3, n)
    prices[2:6] = -0.2
    devices = [
        StorageDevice(
            f"ev{i}",
            n,
            soc_at_start=float(rng.uniform(0.7, 1.0)) * 20.0,
            soc_max=20.0,
            consumption_capacity=10.0,
            production_capacity=10.0,
            charging_efficiency=0.9,
            discharging_efficiency=0.9,
        )
        for i in range(4)
    ]
    return SiteProblem(TimeGrid(T0, timedelta(hours=1), n), devices, prices)


@pytest.mark.parametrize("connection", [True, False])
def test_an_ev_fleet_is_proven_device_by_device_as_the_fleet_milp_finds(proofs, connection):
    problem = v2g_negative_evening_problem(12, 192)
    if not connection:
        problem.site_power_capacity = np.nan
    result = schedule(problem)
    assert result.status is Status.OPTIMAL and result.used_binaries
    proof = proofs[-1]
    assert proof is not None and proof.device_milps >= 1
    assert proof.raw.mip_gap <= MIP_REL_GAP
    check_schedule(problem, result)
    fleet = _fleet_milp(problem)
    assert fleet.status is Status.OPTIMAL
    scale = max(abs(fleet.costs.total), 1.0)
    assert abs(result.costs.total - fleet.costs.total) <= MIP_REL_GAP * scale
    assert _lower_bound_on_cost(result, proof) <= fleet.costs.total + 1e-6 * scale


def _fleet_milp(problem: SiteProblem):
    """The same problem through the fleet MILP (the decomposition switched off)."""
    saved = decomposition.MIN_DEVICES
    decomposition.MIN_DEVICES = 10**9
    try:
        return schedule(problem)
    finally:
        decomposition.MIN_DEVICES = saved


def test_groups_keep_the_fleet_milp(proofs):
    from schemas.flex_problem import DeviceGroup

    problem = v2g_negative_evening_problem(4, 192)
    names = [d.name for d in problem.devices[:2]]
    problem.groups = [DeviceGroup("inverter", problem.grid.n, names, power_capacity=15.0)]
    result = schedule(problem)
    assert result.status is Status.OPTIMAL
    assert proofs and all(p is None for p in proofs)  # tried, and declined


def _first_lp(problem: SiteProblem):
    """The engine's first model (no binaries), its HiGHS solution and the overlapping devices."""
    from solvers.backend import get_backend
    from solvers.formulation import build

    form = build(problem)
    clp = form.lp.compile()
    backend = get_backend("highs")
    raw = backend.solve(clp, relax_integrality=True)
    overlapping = {
        sv.device.name: sv.overlap_steps(raw.x)
        for sv in form.site.storages
        if len(sv.overlap_steps(raw.x))
    }
    return form, clp, backend, raw, overlapping


def _binary_steps(problem: SiteProblem, overlapping: dict) -> dict:
    """The steps the engine gives binaries: overlapping ones and where wasting can pay."""
    devices = {d.name: d for d in problem.devices}
    return {
        name: np.union1d(s, waste_candidates(problem, devices[name]))
        for name, s in overlapping.items()
    }


def _richer(problem: SiteProblem, kind: str) -> SiteProblem:
    """``problem`` with soft SOC limits and priced device capacities, or lossy stores."""
    from dataclasses import replace

    from solvers import BreachPrices

    if kind == "soft":
        n = problem.grid.n
        problem.breach_prices = BreachPrices(
            0.5, 0.5, device_consumption=np.full(n, 0.2), device_production=np.full(n, 0.2)
        )
        problem.devices = [replace(d, power_capacity=12.0) for d in problem.devices]
    elif kind == "lossy":
        problem.devices = [
            replace(d, storage_efficiency=0.999, soc_gain=0.2) for d in problem.devices
        ]
    return problem


@pytest.mark.parametrize("kind", ["plain", "soft", "lossy"])
def test_each_device_alone_at_the_dual_prices_solves_its_part_of_the_lp(kind):
    """The price mapping the bound rests on: ``-dual / dt`` per kWh gives each device's LP part."""
    from scipy import sparse

    from solvers.formulation import build

    problem = _richer(v2g_negative_evening_problem(12, 192), kind)
    form, clp, backend, raw, overlapping = _first_lp(problem)
    assert len(overlapping) >= 2
    a = sparse.csr_matrix((clp.a_value, clp.a_index, clp.a_start), shape=(clp.num_row, clp.num_col))
    balance = decomposition._block_rows(clp, "site.balance")
    y = raw.row_dual[balance]
    reduced = clp.c - a[balance].T @ y
    parts = decomposition._device_parts(a, balance, form, overlapping, reduced, raw.x)
    price = -y / problem.grid.dt_hours
    for name, part in parts.items():
        dev = next(d for d in problem.devices if d.name == name)
        alone = build(decomposition._alone(problem, [dev], price)).lp.compile()
        value = backend.solve(alone, relax_integrality=True).objective
        assert value == pytest.approx(part, abs=1e-7)


def test_a_warm_resolve_with_new_bounds_matches_a_fresh_solve():
    from dataclasses import replace

    from solvers.backend import resolve_with_bounds

    problem = v2g_negative_evening_problem(12, 192)
    form, clp, backend, raw, overlapping = _first_lp(problem)
    sv = next(s for s in form.site.storages if s.device.name in overlapping)
    steps = overlapping[sv.device.name]
    closed = sv.discharge.start + steps
    lp = replace(clp, ub=np.where(np.isin(np.arange(clp.num_col), closed), 0.0, clp.ub))
    warm = resolve_with_bounds(backend, lp, raw, closed)
    fresh = backend.solve(lp, relax_integrality=True)
    assert warm.objective == pytest.approx(fresh.objective, rel=1e-9)
    assert np.all(warm.x[closed] <= 1e-9)
    assert warm.objective >= raw.objective - 1e-9  # a restriction of the LP


def test_a_back_end_without_warm_resolves_solves_from_scratch():
    from dataclasses import replace

    from solvers.backend import get_backend, resolve_with_bounds

    problem = v2g_negative_evening_problem(2, 96)
    form, clp, _, raw, overlapping = _first_lp(problem)
    pyomo = get_backend("pyomo:appsi_highs")
    closed = np.asarray([form.site.storages[0].charge.start])
    lp = replace(clp, ub=np.where(np.arange(clp.num_col) == closed[0], 0.0, clp.ub))
    result = resolve_with_bounds(pyomo, lp, raw, closed)
    assert result.termination.value == "optimal" and result.x[closed[0]] == pytest.approx(0.0)


def test_out_of_time_the_schedule_found_so_far_comes_back_unproven(monkeypatch):
    problem = v2g_negative_evening_problem(12, 192)
    form, clp, backend, raw, overlapping = _first_lp(problem)
    steps = _binary_steps(problem, overlapping)
    clock = {"out": False}
    fix = decomposition._fix_directions

    def fix_then_run_out(*args, **kwargs):
        found = fix(*args, **kwargs)
        clock["out"] = True  # the time runs out once the first schedule is there
        return found

    monkeypatch.setattr(decomposition, "_fix_directions", fix_then_run_out)
    proof = decomposition.prove_by_devices(
        problem, form, clp, raw, backend, steps, lambda: 0.0 if clock["out"] else None
    )
    assert proof is not None and proof.device_milps == 0
    assert proof.raw.termination.value == "time-limit"
    assert proof.raw.mip_gap > MIP_REL_GAP  # not proven: no device's MILP was solved
    assert not any(len(sv.overlap_steps(proof.raw.x)) for sv in form.site.storages)


@pytest.mark.parametrize("limit", [0.01, 0.1, 0.3])
def test_a_time_limit_gives_a_valid_schedule_or_none(limit):
    problem = v2g_negative_evening_problem(12, 192)
    result = schedule(problem, time_limit=limit)
    assert result.status in (Status.OPTIMAL, Status.TIME_LIMIT)
    if result.schedules:
        check_schedule(problem, result)


def test_a_device_milp_stopped_by_its_time_limit_ends_the_search(monkeypatch):
    """HiGHS counts only its own run: its time limit ends the proof even if a moment is left."""
    from solvers.backend import RawSolution, Termination

    problem = v2g_negative_evening_problem(12, 192)
    form, clp, backend, raw, overlapping = _first_lp(problem)
    steps = _binary_steps(problem, overlapping)
    stopped = RawSolution(Termination.TIME_LIMIT, None, None, 0.0)
    monkeypatch.setattr(decomposition, "_device_milp", lambda *args: stopped)
    proof = decomposition.prove_by_devices(problem, form, clp, raw, backend, steps, lambda: 5.0)
    assert proof is not None and proof.raw.termination is Termination.TIME_LIMIT
    assert proof.raw.handle is None  # no tie-break on a solver that may hold other bounds
    assert not any(len(sv.overlap_steps(proof.raw.x)) for sv in form.site.storages)

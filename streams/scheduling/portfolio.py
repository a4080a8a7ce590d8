"""A schedule request for a portfolio asset: its child sites scheduled toward one market (VPP).

An asset without a flex-model of its own whose children (assets naming it as
``parent``) have flex-models is a portfolio: a request for it schedules every
such child as a site of ``solvers.portfolio.schedule_portfolio``. The
portfolio asset's flex-context is the market's and holds only
``consumption-price``, ``production-price`` and ``commitments`` (on the sum of
the sites' net powers); sensor references there are resolved from the belief
state like any other. Each site is prepared from its own flex-model and
flex-context as a request for it alone would be (state of charge from its
sensor, forecasts where beliefs are missing), except that it does not inherit
the market's fields: a site without a price of its own pays nothing for its
own import, the market prices the portfolio's position. A request's
``flex_context`` override applies to the market; ``flex_model`` and
``devices`` overrides are refused (ask for the site itself to change one).

The answers are each site's, keyed by device as for one site, all naming every
device of the portfolio as answered, so a subscriber waits for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from schemas.assets import Asset, effective_flex_context
from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.flex_request import make_grid
from schemas.portfolio import PortfolioProblem, PortfolioSite, _market_terms, site_notes
from schemas.schedule import Schedule
from solvers.portfolio import schedule_portfolio
from solvers.portfolio_result import PortfolioResult
from streams.scheduling.inputs import Lookup, json_override, make_resolver


@dataclass
class PreparedPortfolio:
    """A portfolio request resolved: its sites' prepared requests and the joint problem."""

    asset: Asset
    devices: list[str]
    problem: PortfolioProblem
    sites: list[Any]  # streams.scheduling.problem.Prepared, one per site
    soc_sensors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def portfolio_sites(name: str, assets: Mapping[str, Asset]) -> list[Asset]:
    """The children of ``name`` with a flex-model (its sites as a portfolio), by name."""
    return sorted(
        (a for a in assets.values() if a.parent == name and a.flex_model), key=lambda a: a.name
    )


def is_portfolio(asset: Asset, assets: Mapping[str, Asset]) -> bool:
    """Whether a request for ``asset`` schedules its children as a portfolio."""
    return not asset.flex_model and bool(portfolio_sites(asset.name, assets))


def prepare_portfolio(
    request: Mapping[str, Any],
    asset: Asset,
    assets: Mapping[str, Asset],
    sensors: Mapping[str, Sensor],
    lookup: Lookup,
    forecasters: Mapping[str, list[str]] | None,
    prepare_site: Any,
) -> PreparedPortfolio:
    """Resolve a portfolio request; ``prepare_site`` prepares one site's request.

    Raises InputError (naming the field, a site's prefixed ``sites[<name>].``)
    or MissingInput like a single site's preparation.
    """
    for key in ("flex_model", "devices"):
        if request.get(key):
            raise InputError(
                f"asset {asset.name!r} is a portfolio of sites, scheduled whole; to change "
                "one site's flex-model or devices, ask for that site itself",
                key,
            )
    market = effective_flex_context(asset.name, assets)
    override = json_override(request, "flex_context")
    if override is not None:
        if not isinstance(override, dict):
            raise InputError("expected a JSON object of market fields", "flex_context")
        market.update(override)
    start: datetime = request["start"]
    duration = timedelta(milliseconds=int(request["duration_ms"]))
    step = timedelta(milliseconds=int(request["resolution_ms"]))
    if duration <= timedelta(0) or step <= timedelta(0):
        raise InputError("duration and resolution must be positive", "duration_ms")
    grid = make_grid(start, duration, step)
    notes: list[str] = []
    resolver = make_resolver(lookup, sensors, start, start + duration, step, forecasters, notes)
    currency, cp, pp, commitments = _market_terms(market, grid, resolver, "EUR")
    sites, prepared = [], []
    for child in portfolio_sites(asset.name, assets):
        # The site on its own: the market's fields are not its prices.
        context = dict(child.flex_context)
        if "consumption-price" not in context and "consumption-price-sensor" not in context:
            context["consumption-price"] = f"0 {currency}/MWh"
        alone = child.model_copy(update={"parent": None, "flex_context": context})
        site_request = {**request, "asset": child.name, "flex_context": None}
        try:
            p = prepare_site(site_request, {**assets, child.name: alone}, sensors, lookup)
        except InputError as exc:
            raise _in_site(exc, child.name) from None
        prepared.append(p)
        sites.append(PortfolioSite(child.name, p.problem))
    problem = PortfolioProblem(
        grid=grid,
        sites=sites,
        consumption_price=cp,
        production_price=pp,
        commitments=commitments,
        currency=currency,
        notes=site_notes(sites),
    )
    return PreparedPortfolio(
        asset=asset,
        devices=[d for p in prepared for d in p.devices],
        problem=problem,
        sites=prepared,
        soc_sensors={k: v for p in prepared for k, v in p.soc_sensors.items()},
        notes=[*notes, *(n for p in prepared for n in p.notes)],
    )


def _in_site(exc: InputError, site: str) -> InputError:
    """The same error (or MissingInput) with its field prefixed by the site it is in."""
    field_name = f"sites[{site}].{exc.field}" if exc.field else f"sites[{site}]"
    message = str(exc)
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2 :]
    return type(exc)(message, field_name)


def solve_portfolio(
    prepared: PreparedPortfolio, solver: str, time_limit: float | None
) -> PortfolioResult:
    """Schedule the portfolio (jointly, or decomposed when it is large)."""
    return schedule_portfolio(prepared.problem, solver=solver, time_limit=time_limit)


def portfolio_answers(
    request: Mapping[str, Any],
    prepared: PreparedPortfolio,
    result: PortfolioResult,
    solver_ms: float,
    now: datetime,
    answer_site: Any,
) -> list[Schedule]:
    """Every site's answers (``answer_site`` for one site), naming all the portfolio's devices."""
    out: list[Schedule] = []
    for site in prepared.sites:
        site_result = result.sites[site.asset.name]
        if result.message and result.message not in (site_result.message or ""):
            site_result = replace(
                site_result,
                message="; ".join(m for m in (site_result.message, result.message) if m),
            )
        for a in answer_site(request, site, site_result, solver_ms, now):
            out.append(replace(a, answered_devices=list(prepared.devices)))
    return out

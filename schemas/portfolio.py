"""A portfolio (VPP) request: several sites scheduled toward one market.

The document::

    {
      "sites": [
        {"name": "depot", "flex-model": [...], "flex-context": {...}},
        ...
      ],
      "flex-context": {"consumption-price": ..., "production-price": ..., "commitments": [...]},
      "start": "2024-05-01T00:00+02:00", "duration": "P1D", "resolution": "PT15M"
    }

Each site is what ``flexstream schedule`` takes for one site (its devices,
capacities, inflexible load, breach prices, its own commitments), parsed by
``schemas.flex_request.parse_site_problem``. The portfolio-level flex-context
holds only the market terms on the sum of the sites' net powers: a
``consumption-price`` / ``production-price`` paid and received on the
portfolio's net position, and ``commitments`` (FlexMeasures' meaning: a
baseline with up/down deviation prices) on that position.

A site's own ``consumption-price`` is optional: it prices the site's own import
and export (a grid fee, a site tariff) on top of the market terms; without it,
the site's own energy costs nothing and only the portfolio terms price it.

Currency: the portfolio's consumption price names it; without one, the first
site that states a price does; else EUR. Every price must use it.

Errors name the field as written in the document, e.g.
``sites[3].flex-model[0].soc-max`` or ``flex-context.commitments[0].baseline``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from schemas.errors import InputError
from schemas.flex_context import parse_flex_context
from schemas.flex_problem import Commitment, SiteProblem, TimeGrid
from schemas.flex_request import _commitment, _prices, make_grid, parse_site_problem
from schemas.flex_series import Resolver, SeriesReader

#: The fields a portfolio-level flex-context may hold.
PORTFOLIO_CONTEXT_FIELDS = ("consumption-price", "production-price", "commitments")


@dataclass
class PortfolioSite:
    """One site of a portfolio: its name (unique) and its resolved problem."""

    name: str
    problem: SiteProblem


@dataclass
class PortfolioProblem:
    """Sites on one grid plus the market terms on the sum of their net powers.

    ``consumption_price`` and ``production_price`` (currency per kWh per step)
    price the portfolio's net import and export; ``commitments`` price its
    deviations from a position (``schemas.flex_problem.Commitment``, kW).
    """

    grid: TimeGrid
    sites: list[PortfolioSite]
    consumption_price: np.ndarray | float = 0.0
    production_price: np.ndarray | float | None = None
    commitments: list[Commitment] = field(default_factory=list)
    currency: str = "EUR"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Broadcast prices; check the sites share the grid and have unique names."""
        n = self.grid.n
        cp = np.asarray(self.consumption_price, dtype=float)
        self.consumption_price = np.full(n, float(cp)) if cp.ndim == 0 else cp.copy()
        pp = self.production_price
        pp = self.consumption_price if pp is None else np.asarray(pp, dtype=float)
        self.production_price = np.full(n, float(pp)) if pp.ndim == 0 else pp.copy()
        if not self.sites:
            raise InputError("a portfolio needs at least one site", "sites")
        seen: set[str] = set()
        for i, site in enumerate(self.sites):
            if site.name in seen:
                raise InputError(f"site name {site.name!r} is used twice", f"sites[{i}].name")
            seen.add(site.name)
            if site.problem.grid != self.grid:
                raise InputError("every site must share the portfolio's window", f"sites[{i}]")

    @property
    def has_market_terms(self) -> bool:
        """Whether any portfolio-level price or commitment applies."""
        prices = np.concatenate([self.consumption_price, self.production_price])
        return bool(self.commitments) or bool(np.any(prices != 0))


def _site_field(i: int, inner: str | None) -> str:
    """A site's field as written in the portfolio document."""
    if inner is None:
        return f"sites[{i}]"
    if inner.startswith(("flex-model", "flex-context")):
        return f"sites[{i}].{inner}"
    return f"sites[{i}].flex-context.{inner}"


def _market_field(inner: str | None) -> str:
    """A portfolio-level flex-context field as written in the document."""
    if inner is None:
        return "flex-context"
    return inner if inner.startswith("flex-context") else f"flex-context.{inner}"


def _reraise(exc: InputError, where: str) -> InputError:
    """The same error, its field renamed to ``where``."""
    message = str(exc)
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2 :]
    return InputError(message, where)


def _has_price(context: dict[str, Any]) -> bool:
    return "consumption-price" in context or "consumption-price-sensor" in context


def _market_terms(
    context: dict[str, Any], grid: TimeGrid, resolver: Resolver | None, currency: str
) -> tuple[str, np.ndarray, np.ndarray, list[Commitment]]:
    """Parse the portfolio-level flex-context: prices and commitments."""
    for key in context:
        if key not in PORTFOLIO_CONTEXT_FIELDS:
            raise InputError(
                "a portfolio's flex-context holds only "
                + ", ".join(PORTFOLIO_CONTEXT_FIELDS)
                + "; put site limits, breach prices and inflexible load in each site's "
                "flex-context",
                f"flex-context.{key}",
            )
    data = dict(context)
    if "consumption-price" not in data:
        data["consumption-price"] = f"0 {currency}/MWh"
    try:
        ctx = parse_flex_context(data)
        reader = SeriesReader(grid, resolver)
        found, cp, pp = _prices(ctx, reader)
        commitments = [
            _commitment(c, f"commitments[{i}]", reader, found)
            for i, c in enumerate(ctx.commitments)
        ]
    except InputError as exc:
        raise _reraise(exc, _market_field(exc.field)) from None
    names = [c.name for c in commitments]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InputError(
                f"commitment name {name!r} is used twice", f"flex-context.commitments[{i}].name"
            )
    return found, cp, pp, commitments


def parse_portfolio(
    document: Any,
    *,
    start: datetime | str | None = None,
    duration: timedelta | str | None = None,
    resolution: timedelta | str | None = None,
    resolver: Resolver | None = None,
) -> PortfolioProblem:
    """Build a ``PortfolioProblem`` from a decoded portfolio document.

    ``start``, ``duration`` and ``resolution`` given here override the
    document's. Raises ``InputError`` naming the field as written.
    """
    if not isinstance(document, dict):
        raise InputError(
            'expected a JSON object: {"sites": [...], "flex-context": {...}, "start": ..., '
            '"duration": ..., "resolution": ...}',
            "portfolio",
        )
    unknown = sorted(set(document) - {"sites", "flex-context", "start", "duration", "resolution"})
    if unknown:
        raise InputError(
            "a portfolio has sites, flex-context, start, duration and resolution", unknown[0]
        )
    window = {"start": start, "duration": duration, "resolution": resolution}
    for key, value in window.items():
        if value is None:
            if document.get(key) is None:
                raise InputError(f"give the portfolio's {key}, e.g. {_EXAMPLES[key]}", key)
            window[key] = document[key]
    grid = make_grid(window["start"], window["duration"], window["resolution"])
    sites_doc = document.get("sites")
    if not isinstance(sites_doc, list) or not sites_doc:
        raise InputError(
            'give a non-empty list of sites: [{"name": ..., "flex-model": [...], '
            '"flex-context": {...}}]',
            "sites",
        )
    market = document.get("flex-context", {})
    if not isinstance(market, dict):
        raise InputError(
            "expected a JSON object with the portfolio's prices and commitments", "flex-context"
        )
    specs = [_site_spec(i, spec) for i, spec in enumerate(sites_doc)]
    currency = None
    sites: list[PortfolioSite | None] = [None] * len(specs)
    # Sites stating a price first: the first of them names the currency if the market does not.
    order = sorted(range(len(specs)), key=lambda i: not _has_price(specs[i][2]))
    if _has_price(market):
        currency, cp, pp, commitments = _market_terms(market, grid, resolver, "EUR")
    for i in order:
        name, flex_model, context = specs[i]
        if not _has_price(context):
            context = {**context, "consumption-price": f"0 {currency or 'EUR'}/MWh"}
        try:
            problem = parse_site_problem(
                flex_model, context, grid.start, grid.resolution * grid.n, grid.resolution, resolver
            )
        except InputError as exc:
            raise _reraise(exc, _site_field(i, exc.field)) from None
        if currency is None:
            currency = problem.currency
        if problem.currency != currency:
            raise InputError(
                f"prices are in {problem.currency}, the portfolio's in {currency}; give every "
                "price in one currency",
                f"sites[{i}].flex-context.consumption-price",
            )
        sites[i] = PortfolioSite(name, problem)
    if not _has_price(market):
        currency, cp, pp, commitments = _market_terms(market, grid, resolver, currency or "EUR")
    return PortfolioProblem(
        grid=grid,
        sites=sites,
        consumption_price=cp,
        production_price=pp,
        commitments=commitments,
        currency=currency,
        notes=site_notes(sites),
    )


def site_notes(sites: list[PortfolioSite]) -> list[str]:
    """The sites' notes (deprecations, fall-backs), each named by its site."""
    return [f"site {s.name!r}: {note}" for s in sites for note in s.problem.notes]


_EXAMPLES = {
    "start": "2024-05-01T00:00+02:00",
    "duration": "P1D",
    "resolution": "PT15M",
}


def _site_spec(i: int, spec: Any) -> tuple[str, Any, dict[str, Any]]:
    """One entry of ``sites``: its name, flex-model and flex-context."""
    where = f"sites[{i}]"
    if not isinstance(spec, dict):
        raise InputError(
            'expected {"name": ..., "flex-model": [...], "flex-context": {...}}', where
        )
    unknown = sorted(set(spec) - {"name", "flex-model", "flex-context"})
    if unknown:
        raise InputError("a site has name, flex-model and flex-context", f"{where}.{unknown[0]}")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("give every site a name, e.g. 'depot-3'", f"{where}.name")
    if "flex-model" not in spec:
        raise InputError("give the site's devices: a flex-model or a list", f"{where}.flex-model")
    context = spec.get("flex-context", {})
    if not isinstance(context, dict):
        raise InputError("expected a JSON object", f"{where}.flex-context")
    return name, spec["flex-model"], context

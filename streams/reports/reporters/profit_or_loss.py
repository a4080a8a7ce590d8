"""ProfitOrLossReporter: the cost (or revenue) of an energy flow at given prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pint

from schemas.errors import InputError
from schemas.reporters import ProfitOrLossReporterConfig
from schemas.units import CURRENCIES, Q_
from streams.reports.reporters.base import Reporter, SlotResult
from streams.reports.reporters.grid import Grid, convert


def _currency(price_unit: str, field: str) -> str:
    """Return the currency code of a price unit (``EUR/MWh`` -> ``EUR``)."""
    for code in CURRENCIES:
        try:
            (Q_(1.0, price_unit) * Q_(1.0, "MWh")).to(code)
        except pint.errors.DimensionalityError:
            continue
        return code
    raise InputError(
        f"{price_unit!r} is not a price per energy; use e.g. EUR/MWh or EUR/kWh", field
    )


class ProfitOrLossReporter(Reporter):
    """Price an energy flow per slot: consumption at one price, production at another.

    The flow input (the one input that is not a price alias) is power (kW, MW:
    energy = power x slot duration) or energy per event (kWh, MWh); its unit
    must be known. Consumption is positive, production negative, so a
    production slot gives a negative cost (a revenue). Prices are per slot
    (time-weighted mean over the slot). With ``loss_is_positive: false`` the
    sign flips and profits are positive. The output is in the price's currency
    or the output unit (e.g. EUR, ct).
    """

    name: ClassVar[str] = "ProfitOrLossReporter"
    config_model: ClassVar[type[ProfitOrLossReporterConfig]] = ProfitOrLossReporterConfig
    config: ProfitOrLossReporterConfig

    @property
    def input_aliases(self) -> list[str] | None:
        """The price aliases are required; the flow input is any other single input."""
        return None

    def _flow_alias(self, slots: Mapping[str, pd.Series]) -> str:
        """The one input that is not a price."""
        prices = set(self.config.price_aliases())
        for alias in prices:
            if alias not in slots:
                field = (
                    "consumption_price"
                    if self.config.price("consumption") == alias
                    else "production_price"
                )
                raise InputError(
                    f"names the input {alias!r}, which the report does not have; "
                    f"inputs: {', '.join(slots) or 'none'}",
                    field,
                )
        flows = [a for a in slots if a not in prices]
        if len(flows) != 1:
            raise InputError(
                "needs exactly one power or energy input besides the price inputs; "
                f"got {', '.join(flows) or 'none'}",
                "inputs",
            )
        return flows[0]

    def _price_per_mwh(
        self,
        which: Literal["consumption", "production"],
        slots: Mapping[str, pd.Series],
        input_units: Mapping[str, str],
        grid: Grid,
    ) -> tuple[np.ndarray, str]:
        """Price per slot in currency/MWh, and the currency."""
        spec = self.config.price(which)
        field = f"{which}_price"
        fixed = self.config.fixed_price(spec)
        if fixed is not None:
            currency = _currency(str(fixed.units), field)
            per_mwh = float(fixed.to(f"{currency}/MWh").magnitude)
            return np.full(len(grid.slots) - 1, per_mwh), currency
        price_unit = input_units.get(spec)
        if not price_unit:
            raise InputError(
                f"give the unit of the price input {spec!r} (e.g. EUR/MWh)",
                f"input_units.{spec}",
            )
        currency = _currency(price_unit, f"input_units.{spec}")
        values = convert(
            slots[spec].to_numpy(dtype=float),
            price_unit,
            f"{currency}/MWh",
            grid.slot_hours,
            f"input_units.{spec}",
        )
        return values, currency

    def evaluate(
        self,
        slots: dict[str, pd.Series],
        grid: Grid,
        input_units: Mapping[str, str],
        output_units: Mapping[str, str],
    ) -> dict[str, SlotResult]:
        """Cost per slot in the price currency (sign per ``loss_is_positive``)."""
        flow = self._flow_alias(slots)
        flow_unit = input_units.get(flow)
        if not flow_unit:
            raise InputError(
                f"give the unit of {flow!r} (power such as kW, or energy such as kWh)",
                f"input_units.{flow}",
            )
        energy = convert(
            slots[flow].to_numpy(dtype=float),
            flow_unit,
            "MWh",
            grid.slot_hours,
            f"input_units.{flow}",
        )
        buy, currency = self._price_per_mwh("consumption", slots, input_units, grid)
        sell, sell_currency = self._price_per_mwh("production", slots, input_units, grid)
        if sell_currency != currency:
            raise InputError(
                f"consumption is priced in {currency} and production in {sell_currency}; "
                "use one currency",
                "production_price",
            )
        cost = np.where(energy >= 0, energy * buy, energy * sell)
        cost = np.where(np.isnan(energy), np.nan, cost)
        if not self.config.loss_is_positive:
            cost = -cost
        return {self.single_output_name(output_units): SlotResult(values=cost, unit=currency)}

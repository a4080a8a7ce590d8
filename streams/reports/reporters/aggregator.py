"""AggregatorReporter: weighted inputs combined per time slot (sum, mean, min, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd

from schemas.errors import InputError
from schemas.reporters import AggregatorReporterConfig
from streams.reports.reporters.base import Reporter, SlotResult
from streams.reports.reporters.grid import Grid, convert

#: Method name -> function over an (inputs x slots) array, NaN-propagating.
_METHODS = {
    "sum": lambda a: np.sum(a, axis=0),
    "mean": lambda a: np.mean(a, axis=0),
    "min": lambda a: np.min(a, axis=0),
    "max": lambda a: np.max(a, axis=0),
    "median": lambda a: np.median(a, axis=0),
    # sample statistics, as pandas (ddof=1): NaN with a single input
    "std": lambda a: np.std(a, axis=0, ddof=1) if a.shape[0] > 1 else np.full(a.shape[1], np.nan),
    "var": lambda a: np.var(a, axis=0, ddof=1) if a.shape[0] > 1 else np.full(a.shape[1], np.nan),
    "prod": lambda a: np.prod(a, axis=0),
}


class AggregatorReporter(Reporter):
    """Multiply each input by its weight, then combine the inputs with ``method`` per slot.

    Every input is first converted to the output unit (an MW input into a kW
    output is multiplied by 1000; a kW input into a kWh output becomes energy
    per slot). Without an output unit, all inputs must share one unit. A slot
    with any input missing is missing (no skipping of NaN: "PV minus
    consumption" without consumption is not PV).
    """

    name: ClassVar[str] = "AggregatorReporter"
    config_model: ClassVar[type[AggregatorReporterConfig]] = AggregatorReporterConfig
    config: AggregatorReporterConfig

    def evaluate(
        self,
        slots: dict[str, pd.Series],
        grid: Grid,
        input_units: Mapping[str, str],
        output_units: Mapping[str, str],
    ) -> dict[str, SlotResult]:
        """Weighted aggregation across inputs, in the output unit."""
        for alias in self.config.weights:
            if alias not in slots:
                raise InputError(
                    f"weight for {alias!r}, which is not an input; inputs: {', '.join(slots)}",
                    f"weights.{alias}",
                )
        out_name = self.single_output_name(output_units)
        target = output_units.get(out_name)
        if target is None:
            units = {input_units.get(a) for a in slots}
            if len(units) > 1:
                raise InputError(
                    "the inputs have different units "
                    f"({', '.join(sorted(str(u) for u in units))}); give the output unit",
                    f"output_units.{out_name}",
                )
            target = units.pop()
        columns = [
            convert(
                series.to_numpy(dtype=float),
                input_units.get(alias),
                target,
                grid.slot_hours,
                f"input_units.{alias}",
            )
            * self.config.weights.get(alias, 1.0)
            for alias, series in slots.items()
        ]
        with np.errstate(invalid="ignore"):
            values = _METHODS[self.config.method](np.vstack(columns))
        return {out_name: SlotResult(values=values, unit=target)}

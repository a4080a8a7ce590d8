"""The reporter interface, and the contract of the frames it reads and returns.

Input frames
============

``inputs`` maps an input alias (as in the report parameters) to a pandas
``DataFrame`` of beliefs about one sensor: one row per belief, any row order,
any index, extra columns ignored. Required columns:

========================== ======================== =======================================
column                     dtype                    meaning
========================== ======================== =======================================
``event_start``            datetime64, tz-aware     start of the event; other zones are
                                                    converted to UTC, naive times refused
``event_resolution``       timedelta64              duration of the event (0: instantaneous)
``belief_time``            datetime64, tz-aware     when the belief was formed
``source``                 str (or any ``str()``)   who holds the belief
``cumulative_probability`` float                    0.5 for a deterministic value
``event_value``            float                    value in the input's unit; NaN: unknown
========================== ======================== =======================================

Several beliefs per event and several sources are expected: each input is
reduced to one current value per event first (most recent belief per event and
source, then one source per event: see :mod:`streams.reports.reporters.beliefs`).
Events partly inside the window contribute the part that overlaps it.

Units: ``input_units`` maps an alias to its sensor's unit and ``output_units``
an output name to its sensor's unit (pint strings such as ``kW``, ``MWh``,
``EUR/MWh``). Values are converted (MW -> kW, and power <-> energy per slot:
kW -> kWh). A unit may be left out only where it cannot change the result
(inputs already on the report grid); otherwise :class:`InputError` asks for it.

Returned series
===============

``compute`` returns ``{output name: pandas.Series}``: float64 values in the
output unit, indexed by ``event_start`` (tz-aware UTC ``DatetimeIndex`` named
``event_start``) at the starts of the output bins, ``Series.name`` the output
name. Each point covers one report resolution: a fixed duration, or for whole
days calendar days in the report timezone (23 or 25 hours around DST). A bin
is emitted only when every input has a value for the whole bin and the result
is finite: NaN and infinite results are dropped, never emitted.

How a window is computed: inputs are resampled onto evaluation slots (each
output bin cut into steps of the finest input resolution), the reporter
computes per slot, and the results are aggregated onto the output bins
(amounts such as kWh or EUR summed, rates and prices averaged over time; see
:mod:`streams.reports.reporters.grid`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from schemas.errors import InputError
from schemas.reporters import load_config
from schemas.times import aware, parse_duration
from streams.reports.reporters.beliefs import as_ns, current_values
from streams.reports.reporters.grid import AWARE_HINT, Grid, convert, is_extensive

#: Name given to the output of a single-output reporter when the caller names none.
DEFAULT_OUTPUT = "output"


@dataclass(frozen=True)
class SlotResult:
    """One reporter output before it is placed on the output bins.

    ``values`` are per evaluation slot, or per output bin when ``on_bins``
    (the reporter aggregated them itself); ``unit`` is their unit (None: the
    output sensor's unit).
    """

    values: np.ndarray
    unit: str | None
    on_bins: bool = False


class Reporter(ABC):
    """A pure reporter: beliefs frames of one window in, one series per output out.

    Subclasses set :attr:`name` and :attr:`config_model` and implement
    :meth:`evaluate`; :meth:`compute` does the shared work (belief selection,
    grids, resampling, units, dropping incomplete bins).
    """

    #: Registry name, as written in configs (e.g. ``AggregatorReporter``).
    name: ClassVar[str]
    #: Pydantic model of the config.
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel | Mapping[str, Any] | str | Path) -> None:
        """Take a validated config model, or a mapping, YAML/JSON text or file to validate."""
        if isinstance(config, self.config_model):
            self.config = config
        elif isinstance(config, BaseModel):
            raise InputError(
                f"{self.name} needs a {self.config_model.__name__}, got {type(config).__name__}",
                "config",
            )
        else:
            self.config = load_config(config, reporter=self.name)

    @property
    def input_aliases(self) -> list[str] | None:
        """Input aliases the reporter requires (None: any number of inputs)."""
        return None

    @property
    def output_names(self) -> list[str] | None:
        """Names of the outputs (None: a single output, named by the caller)."""
        return None

    @abstractmethod
    def evaluate(
        self,
        slots: dict[str, pd.Series],
        grid: Grid,
        input_units: Mapping[str, str],
        output_units: Mapping[str, str],
    ) -> dict[str, SlotResult]:
        """Compute the outputs from the inputs on the evaluation slots.

        ``slots`` maps each alias to a float Series indexed by slot start (UTC),
        in the input's own unit, NaN where incomplete.
        """

    def compute(
        self,
        inputs: Mapping[str, pd.DataFrame],
        window_start: datetime,
        window_end: datetime,
        resolution: timedelta | str,
        timezone: str = "UTC",
        *,
        input_units: Mapping[str, str] | None = None,
        output_units: Mapping[str, str] | None = None,
        sources: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, pd.Series]:
        """Compute the report of ``[window_start, window_end)`` (see the module docstring).

        ``resolution`` is the output resolution (timedelta or ISO 8601 such as
        ``PT1H`` or ``P1D``); ``timezone`` (IANA) defines local days.
        ``sources`` optionally restricts an alias to sources in order of
        preference.
        """
        if isinstance(resolution, str):
            resolution = parse_duration(resolution, "resolution")
        input_units = dict(input_units or {})
        output_units = dict(output_units or {})
        sources = dict(sources or {})
        window_start = aware(window_start, "window_start", naive=AWARE_HINT)
        window_end = aware(window_end, "window_end", naive=AWARE_HINT)
        self._check_names(inputs, output_units)
        current = {
            alias: current_values(frame, f"inputs.{alias}", sources.get(alias))
            for alias, frame in inputs.items()
        }
        finest = _finest(current.values(), window_start, window_end)
        grid = Grid.build(window_start, window_end, resolution, timezone, finest)
        slots: dict[str, pd.Series] = {}
        complete = np.ones(len(grid.bins) - 1, dtype=bool)
        for alias, cur in current.items():
            values = _resample(grid, cur, input_units.get(alias), f"input_units.{alias}")
            slots[alias] = pd.Series(values, index=grid.slot_index, name=alias)
            complete &= grid.complete_bins(values)
        results = self.evaluate(slots, grid, input_units, output_units)
        out: dict[str, pd.Series] = {}
        for name, result in results.items():
            values = _place(grid, result, output_units.get(name), name)
            keep = complete & np.isfinite(values)
            out[name] = pd.Series(values[keep], index=grid.bin_index[keep], name=name, dtype=float)
        return out

    def _check_names(self, inputs: Mapping[str, Any], output_units: Mapping[str, str]) -> None:
        """Refuse missing required inputs and unknown output names."""
        required = self.input_aliases
        if required is not None:
            for alias in required:
                if alias not in inputs:
                    raise InputError(
                        f"{self.name} needs an input called {alias!r}; "
                        f"got {', '.join(sorted(inputs)) or 'none'}",
                        f"inputs.{alias}",
                    )
        elif not inputs:
            raise InputError(f"{self.name} needs at least one input", "inputs")
        names = self.output_names
        if names is None:
            if len(output_units) > 1:
                raise InputError(
                    f"{self.name} has one output; got units for {', '.join(output_units)}",
                    "output_units",
                )
        else:
            for name in output_units:
                if name not in names:
                    raise InputError(
                        f"{self.name} has no output {name!r}; it has {', '.join(names)}",
                        f"output_units.{name}",
                    )

    def single_output_name(self, output_units: Mapping[str, str]) -> str:
        """Name of the one output of a single-output reporter."""
        return next(iter(output_units), DEFAULT_OUTPUT)


def _finest(frames: Any, window_start: datetime, window_end: datetime) -> timedelta | None:
    """Smallest positive event duration among events overlapping the window."""
    lo, hi = pd.Timestamp(window_start), pd.Timestamp(window_end)
    best: pd.Timedelta | None = None
    for cur in frames:
        inside = cur[(cur["event_end"] > lo) & (cur["event_start"] < hi)]
        durations = inside["event_end"] - inside["event_start"]
        durations = durations[durations > pd.Timedelta(0)]
        if len(durations):
            m = durations.min()
            best = m if best is None else min(best, m)
    return None if best is None else best.to_pytimedelta()


def _resample(grid: Grid, cur: pd.DataFrame, unit: str | None, field: str) -> np.ndarray:
    """Resample current values onto the slots, by the kind of their unit.

    Without a unit both kinds are tried; they must agree (events already on
    the slots), otherwise the unit is required.
    """
    starts, ends = as_ns(cur["event_start"]), as_ns(cur["event_end"])
    values = cur["event_value"].to_numpy(dtype=float)
    if unit:
        return grid.resample(starts, ends, values, is_extensive(unit))
    summed = grid.resample(starts, ends, values, True)
    averaged = grid.resample(starts, ends, values, False)
    if not np.allclose(summed, averaged, equal_nan=True, rtol=1e-12, atol=0.0):
        raise InputError(
            "the events do not match the report grid, so the unit decides whether to sum "
            "or average them; give the sensor's unit (e.g. 'kW' or 'kWh')",
            field,
        )
    return averaged


def _place(grid: Grid, result: SlotResult, target: str | None, name: str) -> np.ndarray:
    """Convert a result to the output unit and aggregate it onto the output bins."""
    field = f"output_units.{name}"
    if result.on_bins:
        return convert(result.values, result.unit, target, grid.bin_hours, field)
    values = convert(result.values, result.unit, target, grid.slot_hours, field)
    kind_unit = target or result.unit
    if kind_unit:
        return grid.to_bins(values, is_extensive(kind_unit))
    summed, averaged = grid.to_bins(values, True), grid.to_bins(values, False)
    if not np.allclose(summed, averaged, equal_nan=True, rtol=1e-12, atol=0.0):
        raise InputError(
            f"output {name!r} is computed on a finer grid than the report resolution, so its "
            "unit decides whether to sum or average; give the output sensor's unit",
            field,
        )
    return averaged

"""PandasReporter: whitelisted pandas methods over named frames, as FlexMeasures does.

What the transformations see: each required input is a float ``pandas.Series``
named by its alias, converted to the unit its ``required_input`` entry asks
for, on the evaluation slots (the finest input resolution within the report
window), indexed by ``event_start`` in the **report timezone** (tz-aware), NaN
where the input is incomplete. Being in local time, ``resample("1D")`` bins
local calendar days (23 or 25 hours around DST).

What the outputs must be: a Series (or a one-column DataFrame) indexed by
times either on the evaluation slots (then the framework aggregates it onto
the report bins by its unit: amounts summed, rates averaged) or, when it
derives from a ``resample`` step, on the report bins themselves (then each row
is one bin value). Frames in between may be anything the whitelisted methods
return (e.g. the Resampler of ``resample`` before ``sum``).

Safety: the method must be on :data:`schemas.reporters.ALLOWED_METHODS` and
arguments are primitives or ``"@name"`` frame references, both checked when the
config is loaded and again here before any call. A ``resample`` rule must be a
second or coarser (:data:`schemas.reporters.MIN_RESAMPLE_STEP`) and may make at
most :data:`schemas.reporters.MAX_RESAMPLE_ROWS` rows from the time span of its
frame; both are checked before pandas allocates anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from schemas.errors import InputError
from schemas.reporters import (
    ALLOWED_METHODS,
    MAX_RESAMPLE_ROWS,
    PandasReporterConfig,
    check_primitive,
    resample_rule,
    resample_step,
)
from streams.reports.reporters.base import Reporter, SlotResult
from streams.reports.reporters.grid import Grid, convert


def _resolve(value: Any, frames: Mapping[str, Any], field: str) -> Any:
    """Replace ``"@name"`` by the frame ``name`` (``"@@x"`` is the literal ``"@x"``)."""
    if isinstance(value, str):
        if value.startswith("@@"):
            return value[1:]
        if value.startswith("@"):
            if value[1:] not in frames:
                raise InputError(f"{value!r} refers to no frame defined yet", field)
            return frames[value[1:]]
        return value
    if isinstance(value, list):
        return [_resolve(v, frames, f"{field}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _resolve(v, frames, f"{field}.{k}") for k, v in value.items()}
    return value


def _refs(value: Any) -> set[str]:
    """Names of frames referenced in an argument."""
    if isinstance(value, str):
        return {value[1:]} if value.startswith("@") and not value.startswith("@@") else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    return set()


class PandasReporter(Reporter):
    """Run the configured pandas transformations and emit the required outputs."""

    name: ClassVar[str] = "PandasReporter"
    config_model: ClassVar[type[PandasReporterConfig]] = PandasReporterConfig
    config: PandasReporterConfig

    @property
    def input_aliases(self) -> list[str] | None:
        """The ``required_input`` names."""
        return [spec.name for spec in self.config.required_input]

    @property
    def output_names(self) -> list[str] | None:
        """The ``required_output`` names."""
        return [spec.name for spec in self.config.required_output]

    def evaluate(
        self,
        slots: dict[str, pd.Series],
        grid: Grid,
        input_units: Mapping[str, str],
        output_units: Mapping[str, str],
    ) -> dict[str, SlotResult]:
        """Convert inputs, run the steps, and collect the outputs."""
        local_index = grid.slot_index.tz_convert(grid.timezone)
        frames: dict[str, Any] = {}
        for i, spec in enumerate(self.config.required_input):
            values = convert(
                slots[spec.name].to_numpy(dtype=float),
                input_units.get(spec.name),
                spec.unit,
                grid.slot_hours,
                f"required_input[{i}].unit",
            )
            frames[spec.name] = pd.Series(values, index=local_index, name=spec.name)
        on_bins = self._run(frames)
        results: dict[str, SlotResult] = {}
        for i, spec in enumerate(self.config.required_output):
            field = f"required_output[{i}].name"
            series = _as_series(frames[spec.name], field)
            values = _on_grid(series, grid, spec.name in on_bins, field)
            results[spec.name] = SlotResult(values, spec.unit, on_bins=spec.name in on_bins)
        return results

    def _run(self, frames: dict[str, Any]) -> set[str]:
        """Run every step in place on ``frames``; return the names derived from a resample."""
        resampled: set[str] = set()
        previous: str | None = None
        for i, step in enumerate(self.config.transformations):
            where = f"transformations[{i}]"
            if step.method not in ALLOWED_METHODS:  # configs are validated; never trust twice
                raise InputError(f"method {step.method!r} is not allowed", f"{where}.method")
            for j, arg in enumerate(step.args):
                check_primitive(arg, f"{where}.args[{j}]")
            for key, arg in step.kwargs.items():
                check_primitive(arg, f"{where}.kwargs.{key}")
            source = step.df_input or previous
            if source is None or source not in frames:
                raise InputError(f"frame {source!r} is not defined yet", f"{where}.df_input")
            target = step.df_output or source
            obj = frames[source]
            method = getattr(obj, step.method, None)
            if not callable(method):
                raise InputError(
                    f"a {type(obj).__name__} has no method {step.method!r}", f"{where}.method"
                )
            if step.method == "resample":
                _check_resample_rows(obj, step.args, step.kwargs, where)
            args = [_resolve(a, frames, f"{where}.args[{j}]") for j, a in enumerate(step.args)]
            kwargs = {k: _resolve(v, frames, f"{where}.kwargs.{k}") for k, v in step.kwargs.items()}
            try:
                result = method(*args, **kwargs)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                raise InputError(
                    f"{type(obj).__name__}.{step.method} failed: {exc}", where
                ) from None
            refs = _refs(step.args) | _refs(step.kwargs)
            if step.method == "resample" or source in resampled or refs & resampled:
                resampled.add(target)
            else:
                resampled.discard(target)
            frames[target] = result
            previous = target
        return resampled


def _check_resample_rows(obj: Any, args: list[Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Refuse a resample that would make more than ``MAX_RESAMPLE_ROWS`` rows of ``obj``."""
    rule, at = resample_rule(args, kwargs)
    field = f"{where}.{at}"
    step = resample_step(rule, field)
    index = getattr(obj, "index", None)
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        return
    span = index.max() - index.min()
    rows = span // step + 1
    if rows > MAX_RESAMPLE_ROWS:
        raise InputError(
            f"resampling {span} of data to {rule!r} would make {rows:,} rows, more than the "
            f"{MAX_RESAMPLE_ROWS:,} allowed; use a coarser rule (or a shorter report window)",
            field,
        )


def _as_series(obj: Any, field: str) -> pd.Series:
    """Accept a Series or a one-column DataFrame indexed by aware times."""
    if isinstance(obj, pd.DataFrame) and obj.shape[1] == 1:
        obj = obj.iloc[:, 0]
    if not isinstance(obj, pd.Series):
        hint = (
            " finish the resample/rolling with an aggregation such as 'sum' or 'mean';"
            if hasattr(obj, "obj")
            else ""
        )
        raise InputError(
            f"an output must be a time series, got {type(obj).__name__};{hint} "
            "keep the time index (reductions such as sum over a Series give one number)",
            field,
        )
    if not isinstance(obj.index, pd.DatetimeIndex) or obj.index.tz is None:
        raise InputError("an output must keep its timezone-aware time index", field)
    return obj


def _on_grid(series: pd.Series, grid: Grid, on_bins: bool, field: str) -> np.ndarray:
    """Place an output's values on the slots (or bins) by its time labels."""
    edges = grid.bins if on_bins else grid.slots
    labels = series.index.tz_convert("UTC").as_unit("ns").asi8
    pos = np.searchsorted(edges[:-1], labels)
    ok = (pos < len(edges) - 1) & (edges[np.minimum(pos, len(edges) - 2)] == labels)
    # a resample is contiguous: a coarser rule than the report's would skip bins
    gaps = on_bins and bool((np.diff(np.sort(pos)) != 1).any())
    if not ok.all() or len(np.unique(pos)) != len(pos) or gaps:
        grid_name = "report bins" if on_bins else "input grid"
        raise InputError(
            f"the output has times that are not on the {grid_name} (or repeats or skips "
            "some); keep the input's time index, or resample to exactly the report "
            "resolution (and keep empty bins as NaN rather than dropping them)",
            field,
        )
    values = np.full(len(edges) - 1, np.nan)
    values[pos] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return values

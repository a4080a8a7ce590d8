"""The reporters by name, what their configs look like, and running one from parameters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from schemas.errors import InputError
from schemas.reporters import ReportParameters
from streams.reports.reporters.aggregator import AggregatorReporter
from streams.reports.reporters.base import Reporter
from streams.reports.reporters.pandas_reporter import PandasReporter
from streams.reports.reporters.profit_or_loss import ProfitOrLossReporter

#: Reporter name (as written in configs) -> class.
REPORTERS: dict[str, type[Reporter]] = {
    cls.name: cls for cls in (AggregatorReporter, PandasReporter, ProfitOrLossReporter)
}


def _type_name(annotation: Any) -> str:
    """A readable type name for a field annotation."""
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def _fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Describe the fields of a config model."""
    rows = []
    for name, info in model.model_fields.items():
        required = info.is_required()
        default: Any = None
        if not required:
            default = info.default_factory() if info.default_factory is not None else info.default
            if default is PydanticUndefined:
                default = None
        rows.append(
            {
                "name": name,
                "type": _type_name(info.annotation),
                "required": required,
                "default": default,
                "description": info.description or "",
            }
        )
    return rows


def describe(name: str | None = None) -> list[dict[str, Any]]:
    """List reporters with a one-line summary and their config fields.

    Each entry: ``{"name", "summary", "fields": [{"name", "type", "required",
    "default", "description"}]}``; pass ``name`` for one reporter.
    """
    names = [name] if name else sorted(REPORTERS)
    out = []
    for n in names:
        cls = get_reporter_class(n)
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append(
            {"name": n, "summary": doc[0] if doc else "", "fields": _fields(cls.config_model)}
        )
    return out


def get_reporter_class(name: str) -> type[Reporter]:
    """Return the reporter class called ``name``."""
    try:
        return REPORTERS[name]
    except KeyError:
        raise InputError(
            f"unknown reporter {name!r}; use one of: {', '.join(sorted(REPORTERS))}", "reporter"
        ) from None


def make_reporter(name: str, config: BaseModel | Mapping[str, Any] | str | Path) -> Reporter:
    """Build the reporter ``name`` from a config (model, mapping, YAML/JSON text or file)."""
    return get_reporter_class(name)(config)


def compute_report(
    reporter: Reporter,
    parameters: ReportParameters,
    beliefs: Mapping[str, pd.DataFrame],
    sensor_units: Mapping[str, str],
    window_start: datetime,
    window_end: datetime,
) -> dict[str, pd.Series]:
    """Run ``reporter`` for one window as ``parameters`` describe it.

    ``beliefs`` maps each input *alias* to its beliefs frame and
    ``sensor_units`` each sensor name to its unit. Returns ``{output name:
    Series}`` (see :mod:`streams.reports.reporters.base`); the caller writes each to the
    sensor ``parameters.output`` names for it.
    """
    input_units = {}
    for i, item in enumerate(parameters.input):
        if item.sensor not in sensor_units:
            raise InputError(f"no unit known for sensor {item.sensor!r}", f"input[{i}].sensor")
        input_units[item.name] = sensor_units[item.sensor]
    output_units = {}
    for i, item in enumerate(parameters.output):
        if item.sensor not in sensor_units:
            raise InputError(f"no unit known for sensor {item.sensor!r}", f"output[{i}].sensor")
        output_units[item.name] = sensor_units[item.sensor]
    missing = [item.name for item in parameters.input if item.name not in beliefs]
    if missing:
        raise InputError(f"no beliefs given for {', '.join(missing)}", "input")
    return reporter.compute(
        {item.name: beliefs[item.name] for item in parameters.input},
        window_start,
        window_end,
        parameters.output_resolution,
        parameters.timezone,
        input_units=input_units,
        output_units=output_units,
        sources={item.name: item.sources for item in parameters.input if item.sources},
    )

"""Reporter configs and report parameters, as users write them (YAML or JSON).

Three reporters follow FlexMeasures (0.14+, snake_case field names):

- ``AggregatorReporter``: ``method`` (sum, mean, ...) across inputs, each input
  first multiplied by its ``weights`` entry (default 1), e.g. PV minus
  consumption is ``weights: {consumption: -1}``.
- ``PandasReporter``: ``required_input``, ``required_output`` (lists of
  ``{name, unit}``) and ``transformations``, steps ``{df_input, df_output,
  method, args, kwargs}`` run in order; ``"@alias"`` in ``args``/``kwargs``
  refers to an earlier frame. Only methods on :data:`ALLOWED_METHODS` and only
  primitive arguments (str, int, float, bool, None, lists and dicts of those)
  are accepted, so a config can never run code. A ``resample`` rule must be
  one second or coarser (:data:`MIN_RESAMPLE_STEP`), and one step may make at
  most :data:`MAX_RESAMPLE_ROWS` rows, so a config cannot exhaust memory.
- ``ProfitOrLossReporter``: ``consumption_price`` / ``production_price`` (an
  input alias or a fixed price such as ``"0.25 EUR/kWh"``) and
  ``loss_is_positive``.

:class:`ReportParameters` says which sensors feed which input alias, which
sensor receives each output, the window and resolution (ISO 8601 durations) and
the timezone of local days.

Every validation problem raises :class:`~schemas.errors.InputError` whose
``field`` is the path as the user wrote it, e.g. ``transformations[2].method``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pint
import yaml
from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.documents import field_path
from schemas.errors import InputError
from schemas.times import parse_duration
from schemas.units import Q_, parse_quantity, unit

#: Pandas methods a PandasReporter transformation may call (on a Series, or on
#: the Resampler/Rolling object that ``resample``/``rolling`` return). Nothing
#: here evaluates strings as code or accepts a callable from a config.
ALLOWED_METHODS: frozenset[str] = frozenset(
    {
        # arithmetic, aligned on the time index when the argument is a frame
        "add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow",
        "radd", "rsub", "rmul", "rdiv", "rtruediv", "rfloordiv", "rmod", "rpow",
        # comparisons (give booleans for where/mask)
        "lt", "le", "gt", "ge", "eq", "ne",
        # element-wise
        "abs", "clip", "round", "where", "mask", "fillna", "ffill", "bfill",
        "interpolate", "combine_first", "shift", "diff", "pct_change",
        "cumsum", "cumprod", "cummax", "cummin", "isna", "notna", "dropna",
        # time windows and their aggregations
        "resample", "rolling",
        "sum", "mean", "min", "max", "median", "std", "var", "prod", "count",
        "first", "last",
    }
)  # fmt: skip

#: The finest rule a ``resample`` step may use. Energy data is not recorded finer
#: than a second, and a finer rule makes enormous frames (``1ns`` over one day is
#: 86.4e12 rows): refused when the config is loaded.
MIN_RESAMPLE_STEP = timedelta(seconds=1)

#: At most this many rows from one ``resample`` step, checked when it runs from the
#: time span of its frame (a float column of 1,000,000 rows is 8 MB; a year in
#: one-minute steps is 525,600 rows).
MAX_RESAMPLE_ROWS = 1_000_000

#: Aggregation methods of the AggregatorReporter (applied across inputs).
AggregatorMethod = Literal["sum", "mean", "min", "max", "median", "std", "var", "prod"]

_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


# --------------------------------------------------------------------------- helpers


def _join(prefix: str, field: str | None) -> str:
    """Join two field paths (``a[1]`` + ``b`` -> ``a[1].b``; ``a`` + ``[0]`` -> ``a[0]``)."""
    if not field:
        return prefix
    if not prefix:
        return field
    return prefix + field if field.startswith("[") else f"{prefix}.{field}"


def check_primitive(value: Any, field: str) -> None:
    """Raise :class:`InputError` unless ``value`` is a primitive config argument.

    Primitive means str, int, float, bool, None, or lists and dicts (with str
    keys) of those, at any depth. ``field`` names the argument in the message.
    """
    if value is None or isinstance(value, str | bool | int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError("numbers must be finite (no NaN or infinity)", field)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_primitive(item, f"{field}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"dictionary keys must be strings, got {key!r}", field)
            check_primitive(item, f"{field}.{key}")
        return
    raise InputError(
        f"only str, int, float, bool, null and lists/dicts of those are allowed, "
        f"got {type(value).__name__!r}; refer to another frame with '@name'",
        field,
    )


def resample_rule(args: list[Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
    """The ``rule`` of a ``resample`` step and where it is written (``args[0]``/``kwargs.rule``)."""
    if args:
        return args[0], "args[0]"
    return kwargs.get("rule"), "kwargs.rule"


def resample_step(rule: Any, field: str) -> timedelta:
    """The shortest bin of the pandas frequency ``rule`` (e.g. ``15min``, ``1h``, ``1D``).

    Calendar rules (weeks, months, business days) count as one hour, a lower
    bound of their bins. Rules finer than :data:`MIN_RESAMPLE_STEP`, zero or
    negative are refused, naming ``field``.
    """
    import pandas as pd
    from pandas.tseries.frequencies import to_offset
    from pandas.tseries.offsets import Day, Tick

    hint = "write a pandas frequency such as '15min', '1h' or '1D'"
    if not isinstance(rule, str):
        raise InputError(f"the resample rule must be written as text, got {rule!r}; {hint}", field)
    try:
        offset = to_offset(rule)
    except (ValueError, TypeError):
        raise InputError(f"{rule!r} is not a pandas frequency; {hint}", field) from None
    if isinstance(offset, Tick):
        step = pd.Timedelta(offset.nanos, unit="ns")
    elif isinstance(offset, Day):
        step = pd.Timedelta(days=offset.n)
    else:
        step = pd.Timedelta(hours=offset.n)
    if step <= timedelta(0):
        raise InputError(f"the resample rule {rule!r} must be positive; {hint}", field)
    if step < MIN_RESAMPLE_STEP:
        raise InputError(
            f"the resample rule {rule!r} is finer than the finest allowed, one second "
            "('1s'); resample to '1s' or coarser",
            field,
        )
    return step


def _name_or_id(value: Any) -> Any:
    """Accept a number where a name is expected (YAML reads ``sensor: 12`` as an int)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


NameStr = Annotated[str, BeforeValidator(_name_or_id), Field(min_length=1)]


class _Model(BaseModel):
    """Base of every model here: unknown fields are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- aggregator


class AggregatorReporterConfig(_Model):
    """Combine several inputs into one output, per time slot.

    Each input is multiplied by its weight (default 1) and the weighted inputs
    are combined with ``method``. PV minus consumption: ``method: sum`` and
    ``weights: {consumption: -1}``.
    """

    method: AggregatorMethod = Field(
        default="sum", description="How to combine the weighted inputs per time slot."
    )
    weights: dict[NameStr, float] = Field(
        default_factory=dict,
        description="Factor per input alias (default 1), e.g. {consumption: -1}.",
    )

    @field_validator("weights")
    @classmethod
    def _finite_weights(cls, v: dict[str, float]) -> dict[str, float]:
        for alias, w in v.items():
            if not math.isfinite(w):
                raise InputError("weights must be finite numbers", f"weights.{alias}")
        return v


# --------------------------------------------------------------------------- pandas


class FrameSpec(_Model):
    """A named frame a PandasReporter reads or writes, with its unit."""

    name: NameStr = Field(description="Alias of the frame (an input alias or an output name).")
    unit: str | None = Field(
        default=None,
        description="Unit the transformations expect (inputs are converted to it) "
        "or produce (outputs are converted from it); none means no conversion.",
    )

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, v: str | None) -> str | None:
        if v is not None:
            unit(v)
        return v


class Transformation(_Model):
    """One step: ``df_output = df_input.<method>(*args, **kwargs)``.

    ``df_input`` defaults to the previous step's output; ``df_output`` defaults
    to ``df_input`` (so a step may transform a frame in place). A string
    argument ``"@name"`` is replaced by the frame called ``name``; write
    ``"@@..."`` for a literal string starting with ``@``.
    """

    df_input: NameStr | None = Field(default=None, description="Frame to call the method on.")
    df_output: NameStr | None = Field(default=None, description="Name of the result frame.")
    method: str = Field(description="A pandas method from the whitelist, e.g. add, clip.")
    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")

    @field_validator("method")
    @classmethod
    def _whitelisted(cls, v: str) -> str:
        if v not in ALLOWED_METHODS:
            raise InputError(
                f"method {v!r} is not allowed (configs cannot run code); "
                f"use one of: {', '.join(sorted(ALLOWED_METHODS))}",
            )
        return v

    @model_validator(mode="after")
    def _primitive_arguments(self) -> Transformation:
        for i, arg in enumerate(self.args):
            check_primitive(arg, f"args[{i}]")
        for key, arg in self.kwargs.items():
            check_primitive(arg, f"kwargs.{key}")
        if self.method == "resample":
            resample_step(*resample_rule(self.args, self.kwargs))
        return self


def frame_references(value: Any) -> list[str]:
    """List the frame names (``"@name"``) referenced anywhere in an argument."""
    if isinstance(value, str):
        if value.startswith("@") and not value.startswith("@@"):
            return [value[1:]]
        return []
    if isinstance(value, list | tuple):
        return [ref for item in value for ref in frame_references(item)]
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in frame_references(item)]
    return []


class PandasReporterConfig(_Model):
    """Pandas transformations over named frames, from required inputs to required outputs."""

    required_input: list[FrameSpec] = Field(
        min_length=1, description="Input frames by alias, with the unit expected."
    )
    required_output: list[FrameSpec] = Field(
        min_length=1, description="Frames emitted as outputs, with the unit produced."
    )
    transformations: list[Transformation] = Field(
        min_length=1, description="Steps {df_input, df_output, method, args, kwargs}."
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> PandasReporterConfig:
        names = [f.name for f in self.required_input]
        for key, specs in (
            ("required_input", self.required_input),
            ("required_output", self.required_output),
        ):
            seen: set[str] = set()
            for i, spec in enumerate(specs):
                if spec.name in seen:
                    raise InputError(f"name {spec.name!r} appears twice", f"{key}[{i}].name")
                seen.add(spec.name)
        known = set(names)
        previous: str | None = None
        for i, step in enumerate(self.transformations):
            where = f"transformations[{i}]"
            source = step.df_input or previous
            if source is None:
                raise InputError("the first step must name its df_input", f"{where}.df_input")
            if source not in known:
                raise InputError(
                    f"frame {source!r} is not defined yet; use a required_input name or "
                    "the df_output of an earlier step",
                    f"{where}.df_input",
                )
            arguments = [(f"args[{j}]", a) for j, a in enumerate(step.args)]
            arguments += [(f"kwargs.{k}", a) for k, a in step.kwargs.items()]
            for label, arg in arguments:
                for ref in frame_references(arg):
                    if ref not in known:
                        raise InputError(
                            f"'@{ref}' refers to no frame defined before this step",
                            f"{where}.{label}",
                        )
            previous = step.df_output or source
            known.add(previous)
        for i, spec in enumerate(self.required_output):
            if spec.name not in known:
                raise InputError(
                    f"output {spec.name!r} is never produced; name it as a df_output",
                    f"required_output[{i}].name",
                )
        return self


# --------------------------------------------------------------------------- profit/loss


def _parse_price(value: Any, field: str) -> str:
    """Validate a price spec: an input alias, or a quantity in currency per energy."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"expected an input alias or a price such as '0.25 EUR/kWh', got {value!r}", field
        )
    text = value.strip()
    if _ALIAS_RE.match(text):
        return text
    q = parse_quantity(text, field)
    dims = (q * Q_(1.0, "MWh")).dimensionality
    if len(dims) != 1 or not next(iter(dims)).startswith("[currency_"):
        raise InputError(
            f"{value!r} is not a price per energy; write e.g. '0.25 EUR/kWh' or '80 EUR/MWh'",
            field,
        )
    return text


class ProfitOrLossReporterConfig(_Model):
    """Cost (or revenue) of an energy flow against consumption and production prices.

    The flow input is power (energy = power x slot duration) or energy per slot;
    consumption is positive, production negative. Positive slots are priced at
    ``consumption_price``, negative slots at ``production_price`` (default: the
    consumption price). With ``loss_is_positive`` (the default, as FlexMeasures)
    a cost is positive and a revenue negative.
    """

    consumption_price: str = Field(
        description="Input alias of a price sensor, or a fixed price such as '0.25 EUR/kWh'."
    )
    production_price: str | None = Field(
        default=None, description="Same, for production; default: the consumption price."
    )
    loss_is_positive: bool = Field(
        default=True, description="Report costs as positive (True) or profits as positive."
    )

    @field_validator("consumption_price", "production_price", mode="before")
    @classmethod
    def _price(cls, v: Any, info: Any) -> Any:
        if v is None and info.field_name == "production_price":
            return None
        return _parse_price(v, "")

    def price(self, which: Literal["consumption", "production"]) -> str:
        """Return the price spec for ``which`` side (production falls back to consumption)."""
        if which == "production" and self.production_price is not None:
            return self.production_price
        return self.consumption_price

    @staticmethod
    def fixed_price(spec: str) -> pint.Quantity | None:
        """Return the quantity of a fixed price spec, or None when it names an input alias."""
        if _ALIAS_RE.match(spec):
            return None
        return parse_quantity(spec, "price")

    def price_aliases(self) -> list[str]:
        """Input aliases used as prices (zero, one or two)."""
        specs = [self.price("consumption"), self.price("production")]
        return sorted({s for s in specs if self.fixed_price(s) is None})


# --------------------------------------------------------------------------- parameters


def _sources(value: Any) -> Any:
    """Accept a single source where a list is expected; names as strings."""
    if value is None:
        return None
    if not isinstance(value, list):
        value = [value]
    return [_name_or_id(v) for v in value]


class ReportInput(_Model):
    """Which sensor feeds an input alias, optionally restricted to some sources."""

    name: NameStr = Field(
        validation_alias=AliasChoices("name", "alias"),
        description="Input alias used in the reporter config.",
    )
    sensor: NameStr = Field(description="Sensor name.")
    sources: Annotated[list[NameStr] | None, BeforeValidator(_sources)] = Field(
        default=None,
        description="Sources to use, in order of preference; none: the most recent belief.",
    )


class ReportOutput(_Model):
    """Which sensor receives a reporter output."""

    name: NameStr = Field(description="Output name (required_output name, or any for one).")
    sensor: NameStr = Field(description="Sensor name.")


class ReportParameters(_Model):
    """Where a report reads and writes, and over which windows it runs."""

    input: list[ReportInput] = Field(min_length=1, description="Input aliases and sensors.")
    output: list[ReportOutput] = Field(min_length=1, description="Output names and sensors.")
    window: timedelta = Field(description="Report window, ISO 8601 (PT1H, P1D).")
    resolution: timedelta | None = Field(
        default=None, description="Output resolution, ISO 8601; default: the window."
    )
    timezone: str = Field(default="UTC", description="IANA timezone of local days.")
    start: AwareDatetime | None = Field(default=None, description="First window start.")
    end: AwareDatetime | None = Field(default=None, description="Last window end.")

    @field_validator("window", "resolution", mode="before")
    @classmethod
    def _duration(cls, v: Any, info: Any) -> Any:
        if v is None:
            return None
        d = parse_duration(v, "")
        if d <= timedelta(0):
            raise InputError("must be a positive duration such as PT1H or P1D")
        return d

    @field_validator("timezone")
    @classmethod
    def _iana(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(
                f"unknown timezone {v!r}; write an IANA name such as 'Europe/Amsterdam'"
            ) from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ReportParameters:
        for key, items in (("input", self.input), ("output", self.output)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.name in seen:
                    raise InputError(f"name {item.name!r} appears twice", f"{key}[{i}].name")
                seen.add(item.name)
        res = self.output_resolution
        if res > self.window or (self.window % res) != timedelta(0):
            raise InputError(
                f"window {self.window} is not a whole number of resolutions ({res})", "window"
            )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InputError("end must be after start", "end")
        return self

    @property
    def output_resolution(self) -> timedelta:
        """The resolution of the outputs (the window when none was given)."""
        return self.resolution or self.window


# --------------------------------------------------------------------------- loading

#: Reporter name -> its config model.
CONFIG_MODELS: dict[str, type[_Model]] = {
    "AggregatorReporter": AggregatorReporterConfig,
    "PandasReporter": PandasReporterConfig,
    "ProfitOrLossReporter": ProfitOrLossReporterConfig,
}

ReporterConfig = AggregatorReporterConfig | PandasReporterConfig | ProfitOrLossReporterConfig


def raise_input_error(exc: ValidationError, prefix: str = "") -> NoReturn:
    """Re-raise a pydantic ``ValidationError`` as :class:`InputError` naming the user's field.

    The first problem gives ``field``; the message lists every problem.
    """
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        field = _join(prefix, field_path(tuple(err["loc"])))
        msg = err["msg"].removeprefix("Value error, ")
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, InputError):
            msg = str(inner)
            if inner.field:
                msg = msg.removeprefix(f"{inner.field}: ")
                field = _join(field, inner.field)
        problems.append((field, msg))
    first_field, first_msg = problems[0]
    message = first_msg
    if len(problems) > 1:
        rest = "; ".join(f"{f or '(top level)'}: {m}" for f, m in problems[1:])
        message = f"{first_msg} (also: {rest})"
    raise InputError(message, first_field or None) from None


def read_document(path_or_text: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read a YAML or JSON document from a path, a text, or pass a mapping through.

    A ``str`` naming an existing file is read as that file; any other string is
    parsed as YAML (which includes JSON). Only plain data is loaded
    (``yaml.safe_load``: no Python objects).
    """
    if isinstance(path_or_text, Mapping):
        return dict(path_or_text)
    text: str
    where = "document"
    if isinstance(path_or_text, Path):
        where = str(path_or_text)
        text = path_or_text.read_text(encoding="utf-8")
    elif "\n" not in path_or_text and len(path_or_text) < 4096 and Path(path_or_text).is_file():
        where = path_or_text
        text = Path(path_or_text).read_text(encoding="utf-8")
    else:
        text = path_or_text
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise InputError(f"{where} is neither YAML nor JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where} must hold a mapping of fields, got {type(data).__name__}")
    return data


def validate_config(reporter: str, data: Mapping[str, Any]) -> ReporterConfig:
    """Validate a config mapping for the reporter called ``reporter``."""
    model = CONFIG_MODELS.get(reporter)
    if model is None:
        raise InputError(
            f"unknown reporter {reporter!r}; use one of: {', '.join(CONFIG_MODELS)}", "reporter"
        )
    try:
        return model.model_validate(dict(data))  # type: ignore[return-value]
    except ValidationError as exc:
        raise_input_error(exc)


def load_config(
    path_or_text: str | Path | Mapping[str, Any], reporter: str | None = None
) -> ReporterConfig:
    """Load and validate a reporter config from a YAML/JSON file or text.

    The reporter is ``reporter`` or, when not given, the document's top-level
    ``reporter`` key (e.g. ``reporter: PandasReporter``), which is not part of
    the config itself.
    """
    data = read_document(path_or_text)
    named = data.pop("reporter", None)
    kind = reporter or named
    if kind is None:
        raise InputError(
            "say which reporter this config is for: add 'reporter: AggregatorReporter' "
            "(or PandasReporter, ProfitOrLossReporter)",
            "reporter",
        )
    if named is not None and reporter is not None and named != reporter:
        raise InputError(f"the document is for {named!r}, not {reporter!r}", "reporter")
    return validate_config(str(kind), data)


def load_parameters(path_or_text: str | Path | Mapping[str, Any]) -> ReportParameters:
    """Load and validate report parameters from a YAML/JSON file or text."""
    data = read_document(path_or_text)
    try:
        return ReportParameters.model_validate(data)
    except ValidationError as exc:
        raise_input_error(exc)

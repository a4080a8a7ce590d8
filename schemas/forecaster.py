"""Forecasters: a registered definition of how one sensor is forecast.

A forecaster names its target ``sensor``, the ``regressors`` (other sensors)
whose beliefs feed it, the calendar (a ``holidays-country``), the PV site for a
clear-sky profile (``site``: latitude, longitude, tilt, azimuth), the model, the
``max-forecast-horizon`` (P2D), the ``resolution`` of its forecasts, how often
it retrains (``retrain-frequency``) and forecasts (``forecast-frequency``, and
after new readings of the target, ``debounce`` apart), and the ``quantiles`` it
emits (the median 0.5 always among them).

Field names follow FlexMeasures' forecasting parameters where it has them
(``sensor``, ``max-forecast-horizon``, ``forecast-frequency``,
``retrain-frequency``, ``train-period``). Durations are ISO 8601.

Its forecasts are beliefs of the target sensor from source ``forecaster:<name>``
(:func:`forecaster_source`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.times import format_duration, parse_duration

#: Sources of forecasts start with this; the rest is the forecaster's name.
SOURCE_PREFIX = "forecaster:"


def forecaster_source(name: str) -> str:
    """The source of forecaster ``name``'s beliefs."""
    return SOURCE_PREFIX + name


def is_forecast_source(source: str) -> bool:
    """Whether ``source`` is a forecaster's (its beliefs are forecasts, not measurements)."""
    return source.startswith(SOURCE_PREFIX)


class Site(BaseModel):
    """Where a PV installation is and how its panels face (for the clear-sky profile)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    latitude: float = Field(ge=-90, le=90, description="Degrees north.")
    longitude: float = Field(ge=-180, le=180, description="Degrees east.")
    altitude: float = Field(default=0.0, description="Metres above sea level.")
    tilt: float = Field(
        default=0.0, ge=0, le=90, description="Panel tilt in degrees from horizontal."
    )
    azimuth: float = Field(
        default=180.0, ge=0, lt=360, description="Panel azimuth in degrees (180: facing south)."
    )


class Forecaster(BaseModel):
    """A forecaster of one sensor, as users write it (YAML or JSON)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(min_length=1, pattern=r"^[^:\s]+$", description="Unique name, no ':'.")
    sensor: str = Field(min_length=1, description="The target sensor, whose values it forecasts.")
    regressors: tuple[str, ...] = Field(
        default=(),
        description="Other sensors whose values, as believed at forecast time, are features.",
    )
    holidays_country: str | None = Field(
        default=None,
        alias="holidays-country",
        description="ISO 3166 country code for public holidays (e.g. NL); none: no holidays.",
    )
    holidays_subdivision: str | None = Field(default=None, alias="holidays-subdivision")
    site: Site | None = Field(default=None, description="PV site: adds the clear-sky profile.")
    model: Literal["lightgbm", "seasonal-naive"] = Field(
        default="lightgbm", description="lightgbm: quantile gradient boosting; or the baseline."
    )
    season: Literal["daily", "weekly"] = Field(
        default="daily", description="Season of the seasonal-naive baseline."
    )
    max_forecast_horizon: timedelta = Field(
        default=timedelta(days=2),
        validation_alias=AliasChoices("max-forecast-horizon", "horizon", "max_forecast_horizon"),
        serialization_alias="max-forecast-horizon",
        description="How far ahead each forecast reaches (ISO 8601, e.g. P2D).",
    )
    resolution: timedelta | None = Field(
        default=None, description="Step of the forecasts; default: the sensor's resolution."
    )
    train_period: timedelta = Field(
        default=timedelta(days=90),
        alias="train-period",
        description="How much history the model trains on (ISO 8601, e.g. P365D).",
    )
    retrain_frequency: timedelta = Field(
        default=timedelta(days=1),
        alias="retrain-frequency",
        description="How often the model is retrained on the history (ISO 8601).",
    )
    forecast_frequency: timedelta = Field(
        default=timedelta(hours=1),
        alias="forecast-frequency",
        description="How often a forecast is made without new readings (ISO 8601).",
    )
    debounce: timedelta = Field(
        default=timedelta(seconds=5),
        description="Quiet time after new readings of the target before forecasting.",
    )
    quantiles: tuple[float, ...] = Field(
        default=(0.1, 0.5, 0.9), description="Cumulative probabilities emitted; 0.5 included."
    )
    description: str = ""

    @field_validator(
        "max_forecast_horizon",
        "resolution",
        "train_period",
        "retrain_frequency",
        "forecast_frequency",
        "debounce",
        mode="before",
    )
    @classmethod
    def _durations(cls, v: Any, info: Any) -> timedelta | None:
        if v is None and info.field_name == "resolution":
            return None
        d = parse_duration(v, info.field_name.replace("_", "-"))
        if d <= timedelta(0) and info.field_name != "debounce":
            raise ValueError("must be positive, e.g. P2D or PT15M")
        if d < timedelta(0):
            raise ValueError("must not be negative")
        return d

    @field_validator("quantiles", mode="before")
    @classmethod
    def _quantiles(cls, v: Any) -> tuple[float, ...]:
        if not isinstance(v, list | tuple) or not v:
            raise ValueError("give a list of cumulative probabilities, e.g. [0.1, 0.5, 0.9]")
        try:
            qs = sorted({float(q) for q in v})
        except (TypeError, ValueError):
            raise ValueError(f"{v!r} are not all numbers; e.g. [0.1, 0.5, 0.9]") from None
        bad = [q for q in qs if not 0.0 < q < 1.0]
        if bad:
            raise ValueError(f"{bad} outside (0, 1); quantiles are cumulative probabilities")
        if 0.5 not in qs:
            raise ValueError("must include the median 0.5 (the value schedules fall back to)")
        return tuple(qs)

    @field_validator("regressors", mode="before")
    @classmethod
    def _regressors(cls, v: Any) -> Any:
        if isinstance(v, str):
            return (v,)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Forecaster:
        if self.sensor in self.regressors:
            raise ValueError(
                f"regressors: the target sensor {self.sensor!r} is already used through its "
                "own lags; list other sensors only"
            )
        if self.resolution is not None and self.max_forecast_horizon < self.resolution:
            raise ValueError(
                "max-forecast-horizon: shorter than the resolution; forecast at least one step"
            )
        return self

    @property
    def source(self) -> str:
        """The source of this forecaster's beliefs."""
        return forecaster_source(self.name)

    def resolution_problem(self, sensor_resolution: timedelta) -> str | None:
        """Why this forecaster's ``resolution`` cannot be the target sensor's, or None.

        Forecasts are beliefs of the sensor, which accepts only its own event
        resolution (any spacing for an instantaneous sensor).
        """
        if (
            self.resolution is None
            or sensor_resolution <= timedelta(0)
            or self.resolution == sensor_resolution
        ):
            return None
        return (
            f"{format_duration(self.resolution)} differs from sensor {self.sensor!r}'s event "
            f"resolution {format_duration(sensor_resolution)}; leave it out or make them equal"
        )

    def step(self, sensor_resolution: timedelta) -> timedelta:
        """The forecasts' step: the own resolution, else the sensor's (15 min if instantaneous)."""
        if self.resolution is not None:
            return self.resolution
        return sensor_resolution if sensor_resolution > timedelta(0) else timedelta(minutes=15)

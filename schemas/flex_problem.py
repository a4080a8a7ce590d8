"""Typed, resolved scheduling inputs: what the solver consumes.

The flex-model and flex-context JSON (see ``schemas.flex_model`` and
``schemas.flex_context``) are parsed into these dataclasses by
``schemas.flex_request.parse_site_problem``. Everything here is resolved: one value
per scheduling step (or per step boundary for states of charge), in fixed
internal units, so the solver never sees a unit string or a sensor reference.

Internal units: power in kW, energy in kWh, prices in currency per kWh (the
"currency" may be a mass such as kg when steering on CO2 intensity), capacity
breach prices in currency per kW per step, SOC breach prices in currency per kWh.
Arrays use ``nan`` for "no constraint".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from schemas.errors import InputError

if TYPE_CHECKING:
    from schemas.commodities import CommodityGrid, Coupling


@dataclass(frozen=True)
class TimeGrid:
    """The scheduling window: ``n`` steps of ``resolution`` from an aware ``start``."""

    start: datetime
    resolution: timedelta
    n: int

    def __post_init__(self) -> None:
        """Reject naive starts, empty windows and non-positive resolutions."""
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise InputError(
                "the start must be timezone-aware, e.g. 2024-01-01T00:00+00:00", "start"
            )
        if self.resolution <= timedelta(0):
            raise InputError("the resolution must be positive, e.g. PT15M", "resolution")
        if self.n < 1:
            raise InputError(
                "the duration must hold at least one step of the resolution", "duration"
            )

    @property
    def dt_hours(self) -> float:
        """Step length in hours."""
        return self.resolution.total_seconds() / 3600.0

    @property
    def end(self) -> datetime:
        """End of the last step."""
        return self.start + self.n * self.resolution

    def step_start(self, k: int) -> datetime:
        """Start of step ``k`` (also the datetime of SOC boundary ``k``)."""
        return self.start + k * self.resolution


class ProcessType(StrEnum):
    """How a process may be placed in time (FlexMeasures names)."""

    INFLEXIBLE = "INFLEXIBLE"
    BREAKABLE = "BREAKABLE"
    SHIFTABLE = "SHIFTABLE"


class OptimizationSense(StrEnum):
    """Whether a process seeks the cheapest (MIN) or the dearest (MAX) steps."""

    MIN = "MIN"
    MAX = "MAX"


def _vec(value: np.ndarray | float, length: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(length, float(arr))
    if arr.shape != (length,):
        raise ValueError(f"expected {length} values, got shape {arr.shape}")
    return arr.astype(float, copy=True)


def broadcast(obj: object, n: int, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Make each named attribute an array of ``n`` values; ``optional`` ones only when set."""
    for name in names:
        setattr(obj, name, _vec(getattr(obj, name), n))
    for name in optional:
        if getattr(obj, name) is not None:
            setattr(obj, name, _vec(getattr(obj, name), n))


@dataclass
class StorageDevice:
    """A battery, EV (V2G when it may produce) or heat buffer, resolved per step.

    Step arrays have ``n`` values, boundary arrays ``n + 1`` (boundary ``k`` is the
    start of step ``k``; boundary ``n`` the end of the window). ``soc_min`` and
    ``soc_max`` are hard; ``soc_minima``, ``soc_maxima`` and ``soc_targets`` are
    soft when a breach price applies (``nan`` where not given).
    ``consumption_capacity`` and ``production_capacity`` are hard unless the site's
    ``BreachPrices`` price device breaches; ``power_capacity`` (both directions)
    is always hard. ``outputs`` holds the output sensors the user named
    (``state-of-charge``, ``consumption``, ``production``) for the stream to write to.
    ``commodity`` is the one it takes or gives (``schemas.commodities``); a
    converter's port without SOC fields has no state of charge (``has_soc``
    false, SOC unbounded).
    """

    name: str
    n: int
    soc_at_start: float
    soc_min: np.ndarray | float = 0.0
    soc_max: np.ndarray | float = np.inf
    soc_minima: np.ndarray | float = np.nan
    soc_maxima: np.ndarray | float = np.nan
    soc_targets: np.ndarray | float = np.nan
    consumption_capacity: np.ndarray | float = np.inf
    production_capacity: np.ndarray | float = np.inf
    power_capacity: np.ndarray | float = np.inf
    charging_efficiency: np.ndarray | float = 1.0
    discharging_efficiency: np.ndarray | float = 1.0
    storage_efficiency: np.ndarray | float = 1.0
    soc_usage: np.ndarray | float = 0.0
    soc_gain: np.ndarray | float = 0.0
    prefer_charging_sooner: bool = True
    prefer_curtailing_later: bool = True
    outputs: dict[str, Any] = field(default_factory=dict)
    commodity: str = "electricity"
    has_soc: bool = True
    #: Operation modes (S2 power bands): signed ``(min, max)`` kW; the net power must
    #: lie in one of them at every step. Empty: any power within the capacities.
    operation_modes: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        """Broadcast scalars, cap the directional capacities at ``power_capacity``, check modes."""
        n = self.n
        self.operation_modes = tuple((float(lo), float(hi)) for lo, hi in self.operation_modes)
        for lo, hi in self.operation_modes:
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"device {self.name!r}: bad operation mode ({lo}, {hi}) kW")
        for name in ("soc_min", "soc_max", "soc_minima", "soc_maxima", "soc_targets"):
            setattr(self, name, _vec(getattr(self, name), n + 1))
        for name in (
            "consumption_capacity",
            "production_capacity",
            "power_capacity",
            "charging_efficiency",
            "discharging_efficiency",
            "storage_efficiency",
            "soc_usage",
            "soc_gain",
        ):
            setattr(self, name, _vec(getattr(self, name), n))
        # power_capacity bounds both directions (as parsing already caps them).
        self.consumption_capacity = np.fmin(self.consumption_capacity, self.power_capacity)
        self.production_capacity = np.fmin(self.production_capacity, self.power_capacity)
        self.soc_at_start = float(self.soc_at_start)


@dataclass
class ProcessDevice:
    """A process drawing ``power`` kW for ``duration_steps`` steps.

    ``allowed[t]`` is False where time restrictions forbid running in step ``t``.
    """

    name: str
    n: int
    power: float
    duration_steps: int
    process_type: ProcessType = ProcessType.SHIFTABLE
    allowed: np.ndarray | None = None
    sense: OptimizationSense = OptimizationSense.MIN

    def __post_init__(self) -> None:
        """Default to no time restrictions."""
        if self.allowed is None:
            self.allowed = np.ones(self.n, dtype=bool)
        self.allowed = np.asarray(self.allowed, dtype=bool)


Device = StorageDevice | ProcessDevice


@dataclass
class DeviceGroup:
    """An intermediate power limit over several devices (FlexMeasures' ``group``).

    E.g. a hybrid inverter shared by a battery and PV on its AC side. ``members``
    names the scheduled devices in the group, nested groups' members included;
    ``inflexible_power`` is the net power of its inflexible members (kW per step,
    consumption positive). Per step, their summed power ``net`` must satisfy
    ``-power_capacity <= net <= power_capacity`` (hard; ``inf``: none), and
    ``net <= consumption_capacity``, ``-net <= production_capacity`` (``nan``:
    none), which are soft where a breach price is given (currency per kW per
    step, charged per step and once more on the peak, as site breaches are).
    ``outputs`` holds the output sensors named on the group entry.
    """

    name: str
    n: int
    members: list[str]
    power_capacity: np.ndarray | float = np.inf
    consumption_capacity: np.ndarray | float = np.nan
    production_capacity: np.ndarray | float = np.nan
    consumption_breach_price: np.ndarray | None = None
    production_breach_price: np.ndarray | None = None
    inflexible_power: np.ndarray | float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Broadcast scalars to arrays of ``n`` values."""
        for name in (
            "power_capacity",
            "consumption_capacity",
            "production_capacity",
            "inflexible_power",
        ):
            setattr(self, name, _vec(getattr(self, name), self.n))
        for name in ("consumption_breach_price", "production_breach_price"):
            if getattr(self, name) is not None:
                setattr(self, name, _vec(getattr(self, name), self.n))
        self.power_capacity = np.where(np.isnan(self.power_capacity), np.inf, self.power_capacity)


@dataclass
class BreachPrices:
    """Prices of breaching soft constraints; ``None`` keeps the constraint hard.

    SOC prices are per kWh of breach at each constrained boundary; capacity prices
    are per kW (arrays of ``n`` values), charged on the breach in each step and
    once more on the largest priced breach of the window (as FlexMeasures does), so
    a breach is spread rather than concentrated. ``device_*`` price breaches of
    every storage device's ``consumption_capacity`` / ``production_capacity``
    (never of a capacity of zero, which states a physical impossibility).
    """

    soc_minima: float | None = None
    soc_maxima: float | None = None
    site_consumption: np.ndarray | None = None
    site_production: np.ndarray | None = None
    device_consumption: np.ndarray | None = None
    device_production: np.ndarray | None = None


@dataclass
class Commitment:
    """A position the site's net power should follow, with prices for deviating from it.

    Per step (``nan`` baseline: not committed then), as FlexMeasures' flex-context
    ``commitments`` mean it: ``up_price`` (currency per kW per step) is paid per kW
    of net consumption above ``baseline`` (kW, consumption positive), and
    ``down_price`` is *received* per kW below it (a negative price is a penalty).
    """

    name: str
    baseline: np.ndarray
    up_price: np.ndarray
    down_price: np.ndarray


@dataclass
class SiteProblem:
    """One site: devices scheduled jointly under the site's connection limits.

    ``inflexible_power`` is the net of inflexible consumption (positive) and
    production (negative), kW per step. Site capacities are kW (``nan`` = none):
    ``site_power_capacity`` is always hard; the consumption and production
    capacities are soft where ``breach_prices`` price them. With a peak price, a
    new peak costs its price per kW above the peak already reached
    (:mod:`solvers.peaks`).
    """

    grid: TimeGrid
    devices: list[Device]
    consumption_price: np.ndarray
    production_price: np.ndarray | None = None
    site_power_capacity: np.ndarray | float = np.nan
    site_consumption_capacity: np.ndarray | float = np.nan
    site_production_capacity: np.ndarray | float = np.nan
    inflexible_power: np.ndarray | float = 0.0
    breach_prices: BreachPrices = field(default_factory=BreachPrices)
    #: Peak pricing: the peaks already reached this period (kW per step, the baseline)
    #: and their prices (currency per kW of new peak, per step; None: no peak pricing).
    peak_consumption: np.ndarray | float = 0.0
    peak_consumption_price: np.ndarray | None = None
    peak_production: np.ndarray | float = 0.0
    peak_production_price: np.ndarray | None = None
    commitments: list[Commitment] = field(default_factory=list)
    #: Other commodities' connections and the converters between commodities
    #: (``schemas.commodities``); the fields above are electricity's.
    commodities: list[CommodityGrid] = field(default_factory=list)
    couplings: list[Coupling] = field(default_factory=list)
    #: Intermediate power limits over groups of devices (``solvers.groups``).
    groups: list[DeviceGroup] = field(default_factory=list)
    currency: str = "EUR"
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Broadcast scalars and default the production price to the consumption price."""
        n = self.grid.n
        self.consumption_price = _vec(self.consumption_price, n)
        if self.production_price is None:
            self.production_price = self.consumption_price.copy()
        self.production_price = _vec(self.production_price, n)
        steps = ("site_power_capacity", "site_consumption_capacity", "site_production_capacity")
        steps += ("inflexible_power", "peak_consumption", "peak_production")
        broadcast(self, n, steps, ("peak_consumption_price", "peak_production_price"))
        for dev in self.devices:
            if dev.n != n:
                raise ValueError(f"device {dev.name!r} has {dev.n} steps, the site {n}")
        commodities = {"electricity"} | {c.commodity for c in self.commodities}
        for dev in self.devices:
            commodity = getattr(dev, "commodity", "electricity")
            if commodity not in commodities:
                raise ValueError(f"device {dev.name!r} takes {commodity!r}, which has no context")
        storages = {d.name for d in self.devices if isinstance(d, StorageDevice)}
        for coupling in self.couplings:
            missing = set(coupling.devices) - storages
            if missing:
                raise ValueError(f"coupling {coupling.name!r} names unknown devices {missing}")
        names = {d.name for d in self.devices}
        for group in self.groups:
            if group.n != n:
                raise ValueError(f"group {group.name!r} has {group.n} steps, the site {n}")
            unknown = sorted(set(group.members) - names)
            if unknown:
                raise ValueError(f"group {group.name!r} names unknown devices {unknown}")

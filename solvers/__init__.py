"""Pure scheduling: typed inputs in, a ``ScheduleResult`` with a ``Status`` out.

No Kafka, ClickHouse or faust here. See ``solvers/README.md``.
"""

from schemas.flex_problem import (
    BreachPrices,
    DeviceGroup,
    OptimizationSense,
    ProcessDevice,
    ProcessType,
    SiteProblem,
    StorageDevice,
    TimeGrid,
)
from solvers.engine import schedule
from solvers.result import Breach, Costs, DeviceSchedule, ScheduleResult, Status

__all__ = [
    "Breach",
    "BreachPrices",
    "Costs",
    "DeviceGroup",
    "DeviceSchedule",
    "OptimizationSense",
    "ProcessDevice",
    "ProcessType",
    "ScheduleResult",
    "SiteProblem",
    "Status",
    "StorageDevice",
    "TimeGrid",
    "schedule",
]

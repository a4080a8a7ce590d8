"""Pure reporting: reporters that turn beliefs frames of one window into report series.

No Kafka, ClickHouse or faust here; the streaming layer feeds windows of
beliefs in and writes the returned series out. The frame contract is in
:mod:`streams.reporting.base`.
"""

from streams.reporting.aggregator import AggregatorReporter
from streams.reporting.base import DEFAULT_OUTPUT, Reporter, SlotResult
from streams.reporting.beliefs import BELIEF_COLUMNS, current_values
from streams.reporting.pandas_reporter import PandasReporter
from streams.reporting.profit_or_loss import ProfitOrLossReporter
from streams.reporting.registry import (
    REPORTERS,
    compute_report,
    describe,
    get_reporter_class,
    make_reporter,
)

__all__ = [
    "BELIEF_COLUMNS",
    "DEFAULT_OUTPUT",
    "REPORTERS",
    "AggregatorReporter",
    "PandasReporter",
    "ProfitOrLossReporter",
    "Reporter",
    "SlotResult",
    "compute_report",
    "current_values",
    "describe",
    "get_reporter_class",
    "make_reporter",
]

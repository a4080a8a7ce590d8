"""Pure reporting: reporters that turn beliefs frames of one window into report series.

No Kafka, ClickHouse or faust here; the streaming layer feeds windows of
beliefs in and writes the returned series out. The frame contract is in
:mod:`streams.reports.reporters.base`.
"""

from streams.reports.reporters.aggregator import AggregatorReporter
from streams.reports.reporters.base import DEFAULT_OUTPUT, Reporter, SlotResult
from streams.reports.reporters.beliefs import BELIEF_COLUMNS, current_values
from streams.reports.reporters.pandas_reporter import PandasReporter
from streams.reports.reporters.profit_or_loss import ProfitOrLossReporter
from streams.reports.reporters.registry import (
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

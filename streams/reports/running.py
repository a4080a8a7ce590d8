"""One registered report in the worker: its definition, prepared inputs and windows (pure).

:class:`RunningReport` resolves a definition against the sensors (retried while
one is missing) and continues saved windows that belong to the same version of
the definition (:func:`fingerprint`); :func:`observe` feeds stored beliefs to
its windows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.beliefs import BeliefColumns
from schemas.errors import FlexStreamError
from schemas.forecaster import is_forecast_source
from schemas.report_definition import ReportDefinition
from streams.reports.compute import PreparedReport, prepare
from streams.reports.windows import ReportWindows

log = logging.getLogger("flexstream.reports")


def fingerprint(definition: ReportDefinition) -> str:
    """A digest of a definition: saved window state belongs to one version of a report."""
    return hashlib.sha256(definition.model_dump_json().encode()).hexdigest()[:16]


@dataclass
class RunningReport:
    """One registered report in the worker: its definition, resolution and windows."""

    definition: ReportDefinition
    prepared: PreparedReport | None = None
    windows: ReportWindows | None = None
    error: str | None = None
    retry_at: float = 0.0
    stats: dict[str, Any] = field(
        default_factory=lambda: {"closed": 0, "recomputed": 0, "values": 0, "latency_ms": []}
    )

    def resolve(self, sensors: Mapping[str, Any], saved: Mapping | None = None) -> bool:
        """Resolve the definition against the sensors (retried while a sensor is missing).

        ``saved`` is the report's saved state (see :func:`install`): its windows
        continue when it belongs to this definition.
        """
        if self.prepared is not None:
            return True
        if time.monotonic() < self.retry_at:
            return False
        try:
            self.prepared = prepare(self.definition, sensors)
        except FlexStreamError as exc:
            if self.error != str(exc):
                log.error("report %s cannot run yet: %s", self.definition.name, exc)
            self.error = str(exc)
            self.retry_at = time.monotonic() + 5.0
            return False
        p = self.prepared.parameters
        d = self.definition
        config = (self.prepared.spec, self.prepared.aliases, d.grace, d.timeout)
        if saved and saved.get("definition") == fingerprint(d):
            self.windows = ReportWindows.from_state(
                saved["windows"], *config, start=p.start, end=p.end
            )
            log.info(
                "report %s continues: %d window(s) pending",
                self.definition.name,
                len(self.windows.pending),
            )
        else:
            self.windows = ReportWindows(*config, start=p.start, end=p.end)
        self.error = None
        return True

    def state(self) -> dict[str, Any]:
        """What is saved of this report: its windows and the definition they belong to."""
        assert self.windows is not None
        return {"definition": fingerprint(self.definition), "windows": self.windows.to_state()}


def observe(report: RunningReport, cols: BeliefColumns, now: Any) -> bool:
    """Feed stored beliefs to a report's windows; True when a window became pending."""
    prep, windows = report.prepared, report.windows
    if prep is None or windows is None:
        return False
    touched = False
    for item in prep.parameters.input:
        res_us = prep.resolutions[item.sensor].total_seconds() * 1_000_000
        for i, sensor in enumerate(cols.sensor):
            if sensor != item.sensor:
                continue
            if item.sources is not None and cols.source[i] not in item.sources:
                continue
            if item.sources is None and is_forecast_source(cols.source[i]):
                continue  # forecasts of future events move no watermark unless asked for
            starts = cols.event_start_us[i]
            ends = starts + np.int64(res_us)
            if windows.observe(item.name, starts, ends, now):
                touched = True
    return touched

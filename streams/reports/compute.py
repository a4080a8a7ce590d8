"""Computing a report's windows from the ClickHouse history, shared by streaming and batch.

Both modes run the same steps, so they give the same values for the same data:

1. :func:`input_sql` selects every belief (``FINAL``: each exactly once) of an
   input sensor that overlaps the span of the windows to compute; the result
   comes back in ClickHouse's ``Arrow`` format (through the worker's store in
   streaming mode, through :func:`streams.sql.access.run_sql` in batch mode) and
   :func:`frame_from_arrow` turns it into a beliefs frame;
2. :func:`compute_windows` calls the pure reporter once per window;
3. :func:`window_records` turns the results into ``BeliefBatch`` records for
   the reports topic, with the source ``flexstream-reporter:<name>``: windows
   of one belief time share records, one per run of consecutive bins
   (:func:`result_records`), so a round of many closed windows is a few
   messages rather than one per window.

NaN and infinite results are never emitted: the reporter drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from connectors.clickhouse import identifier
from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.report_definition import ReportDefinition
from schemas.reporters import ReportParameters
from schemas.times import engine_time
from streams.reports.reporters.base import Reporter
from streams.reports.reporters.beliefs import BELIEF_COLUMNS
from streams.reports.reporters.grid import is_calendar
from streams.reports.reporters.registry import compute_report, make_reporter
from streams.reports.windows import WindowSpec, from_us

#: Runs SQL with its bound parameters; returns the result in ClickHouse's ``Arrow`` format.
Query = Callable[[str, Mapping[str, Any]], bytes]

#: Every belief of a sensor whose event overlaps ``[start, end)`` (``lo``: a bound below
#: every such event start); ``{db}`` is the database.
_INPUT_SQL = (
    "SELECT " + ", ".join(BELIEF_COLUMNS) + " FROM {db}.beliefs FINAL "
    "WHERE sensor = {sensor:String} AND event_start < {end:DateTime64(6, 'UTC')} "
    "AND event_start > {lo:DateTime64(6, 'UTC')} "
    "AND (event_start >= {start:DateTime64(6, 'UTC')} "
    "OR addSeconds(event_start, event_resolution) > {start:DateTime64(6, 'UTC')}) "
    "ORDER BY event_start, source, belief_time"
)


def input_sql(
    database: str, sensor: str, start: datetime, end: datetime, resolution: timedelta
) -> tuple[str, dict[str, str]]:
    """SQL and parameters for every belief of ``sensor`` whose event overlaps ``[start, end)``."""
    lo = start - resolution - timedelta(hours=2)  # a 25-hour day starts before start - 24 h
    params = {"sensor": sensor, "start": engine_time(start), "end": engine_time(end)}
    params["lo"] = engine_time(lo)
    return _INPUT_SQL.replace("{db}", identifier(database), 1), params


def frame_from_arrow(data: bytes) -> pd.DataFrame:
    """A beliefs frame from a result in ClickHouse's ``Arrow`` format (:data:`BELIEF_COLUMNS`)."""
    import pyarrow as pa

    table = pa.ipc.open_file(pa.BufferReader(data)).read_all() if data else None
    if table is None or table.num_rows == 0:
        return frame_from_rows([])
    return pd.DataFrame(
        {
            "event_start": pd.to_datetime(table.column("event_start").to_numpy(), utc=True),
            "event_resolution": pd.to_timedelta(
                table.column("event_resolution").to_numpy().astype(np.int64), unit="s"
            ),
            "belief_time": pd.to_datetime(table.column("belief_time").to_numpy(), utc=True),
            "source": np.asarray(
                table.column("source").cast(pa.string()).to_pylist(), dtype=object
            ),
            "cumulative_probability": table.column("cumulative_probability").to_numpy(),
            "event_value": table.column("event_value").to_numpy(),
        }
    )


def frame_from_rows(rows: list[list]) -> pd.DataFrame:
    """A beliefs frame from ``JSONCompact`` rows in :data:`BELIEF_COLUMNS` order."""
    if not rows:
        return pd.DataFrame(
            {
                "event_start": pd.Series([], dtype="datetime64[ns, UTC]"),
                "event_resolution": pd.Series([], dtype="timedelta64[ns]"),
                "belief_time": pd.Series([], dtype="datetime64[ns, UTC]"),
                "source": pd.Series([], dtype=object),
                "cumulative_probability": pd.Series([], dtype=float),
                "event_value": pd.Series([], dtype=float),
            }
        )
    cols = list(zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "event_start": pd.to_datetime(list(cols[0]), utc=True, format="ISO8601"),
            "event_resolution": pd.to_timedelta(np.asarray(cols[1], dtype=np.int64), unit="s"),
            "belief_time": pd.to_datetime(list(cols[2]), utc=True, format="ISO8601"),
            "source": np.asarray(cols[3], dtype=object),
            "cumulative_probability": np.asarray(cols[4], dtype=float),
            "event_value": np.asarray(cols[5], dtype=float),
        }
    )


@dataclass(frozen=True)
class PreparedReport:
    """A definition resolved against the known sensors: ready to compute windows."""

    definition: ReportDefinition
    parameters: ReportParameters
    reporter: Reporter
    spec: WindowSpec
    units: dict[str, str]
    resolutions: dict[str, timedelta]

    @property
    def aliases(self) -> tuple[str, ...]:
        """Input aliases."""
        return tuple(i.name for i in self.parameters.input)


def prepare(defn: ReportDefinition, sensors: Mapping[str, Sensor]) -> PreparedReport:
    """Resolve a definition: its sensors must be known; daily windows follow the output's zone.

    Without an explicit ``timezone`` in the parameters, the report uses the
    (first) output sensor's timezone, so a daily report bins that sensor's
    local days.
    """
    params = defn.parameters
    for key, items in (("input", params.input), ("output", params.output)):
        for i, item in enumerate(items):
            if item.sensor not in sensors:
                raise InputError(
                    f"sensor {item.sensor!r} is not registered; register it with "
                    "'flexstream add sensor' first",
                    f"parameters.{key}[{i}].sensor",
                )
    out_sensor = sensors[params.output[0].sensor]
    if "timezone" not in params.model_fields_set:
        params = params.model_copy(update={"timezone": out_sensor.timezone})
    res = params.output_resolution
    for i, item in enumerate(params.output):
        s = sensors[item.sensor]
        if s.event_resolution != res:
            raise InputError(
                f"output sensor {s.name!r} has event resolution {s.event_resolution}, the report "
                f"resolution is {res}; use an output sensor of the report's resolution",
                f"parameters.output[{i}].sensor",
            )
        if is_calendar(res) and s.timezone != params.timezone:
            raise InputError(
                f"daily results are local days in {params.timezone}, but output sensor "
                f"{s.name!r} is in {s.timezone}; use the sensor's timezone",
                "parameters.timezone",
            )
    names = {i.sensor for i in params.input} | {o.sensor for o in params.output}
    return PreparedReport(
        definition=defn,
        parameters=params,
        reporter=make_reporter(defn.reporter, defn.reporter_config()),
        spec=WindowSpec(params.window, params.timezone, params.start),
        units={n: sensors[n].unit for n in names},
        resolutions={n: sensors[n].event_resolution for n in names},
    )


def load_inputs(
    prep: PreparedReport, query: Query, database: str, start: datetime, end: datetime
) -> dict[str, pd.DataFrame]:
    """Beliefs of every input that overlap ``[start, end)``, by alias."""
    frames: dict[str, pd.DataFrame] = {}
    for item in prep.parameters.input:
        sql, params = input_sql(database, item.sensor, start, end, prep.resolutions[item.sensor])
        frames[item.name] = frame_from_arrow(query(sql, params))
    return frames


def _overlap(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    ev_end = frame["event_start"] + frame["event_resolution"]
    inst = frame["event_resolution"] == pd.Timedelta(0)
    keep = (frame["event_start"] < hi) & ((ev_end > lo) | (inst & (frame["event_start"] >= lo)))
    return frame[keep]


#: Reporters that compute each time slot on its own: contiguous windows may be computed in one
#: call with the same per-bin results (PandasReporter steps such as shift or rolling may not).
SLOTWISE = frozenset({"AggregatorReporter", "ProfitOrLossReporter"})


def _contiguous(windows: list[int], slotwise: bool, limit: int = 24 * 366) -> list[list[int]]:
    """Group sorted window indices into runs computed in one call (one each unless slotwise)."""
    if not slotwise:
        return [[i] for i in windows]
    runs: list[list[int]] = []
    for i in sorted(windows):
        if runs and runs[-1][-1] == i - 1 and len(runs[-1]) < limit:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


@dataclass(frozen=True)
class RunResult:
    """The results of consecutive windows computed in one reporter call."""

    windows: list[int]
    #: The windows' start bounds (ns since the epoch, UTC), sorted.
    starts_ns: np.ndarray
    #: Results by output sensor.
    series: dict[str, pd.Series]

    def split(self, sensor: str) -> dict[int, pd.Series]:
        """The results of output ``sensor`` by window."""
        series = self.series[sensor]
        which = np.searchsorted(self.starts_ns, series.index.asi8, side="right") - 1
        return {self.windows[k]: series[which == k] for k in np.unique(which)}


def compute_windows(
    prep: PreparedReport,
    frames: Mapping[str, pd.DataFrame],
    windows: list[int],
    progress: Callable[[int, int], None] | None = None,
) -> list[RunResult]:
    """Run the reporter over ``windows``: one call per window, or per run of contiguous ones.

    Contiguous windows of a slot-wise reporter (:data:`SLOTWISE`) are computed
    in one call, which gives the same values as one call per window. Windows
    without input in one of the frames give no result. ``progress`` is told
    ``(windows done, windows)`` after each call.
    """
    out: list[RunResult] = []
    sensor_of = {o.name: o.sensor for o in prep.parameters.output}
    done = 0
    for run in _contiguous(windows, prep.definition.reporter in SLOTWISE):
        if progress is not None:
            progress(done, len(windows))
        done += len(run)
        bounds = [prep.spec.bounds(i) for i in run]
        ws, we = from_us(bounds[0][0]), from_us(bounds[-1][1])
        window_frames = {a: _overlap(f, ws, we) for a, f in frames.items()}
        if any(f.empty for f in window_frames.values()):
            continue
        results = compute_report(prep.reporter, prep.parameters, window_frames, prep.units, ws, we)
        if prep.reporter.output_names is None and len(results) == 1:
            # a single-output reporter names its output after the first output entry
            (series,) = results.values()
            results = {prep.parameters.output[0].name: series}
        starts = np.array([b[0] for b in bounds], dtype=np.int64) * 1000  # ns
        kept = {sensor_of[n]: s for n, s in results.items() if n in sensor_of and len(s)}
        out.append(RunResult(run, starts, kept))
    if progress is not None:
        progress(len(windows), len(windows))
    return out


def _runs(index: pd.DatetimeIndex, resolution: timedelta, timezone: str) -> list[slice]:
    """Slices of consecutive bins of ``index`` (sorted bin starts)."""
    if len(index) == 0:
        return []
    if is_calendar(resolution):
        local = index.tz_convert(timezone).tz_localize(None).normalize()
        step = np.asarray((local[1:] - local[:-1]).days)
        gaps = step != resolution // timedelta(days=1)
    else:
        gaps = np.diff(index.asi8) != pd.Timedelta(resolution).value
    cuts = [0, *(np.flatnonzero(gaps) + 1).tolist(), len(index)]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def result_records(
    prep: PreparedReport, results: Mapping[str, pd.Series], belief_time: datetime
) -> list[dict[str, Any]]:
    """``BeliefBatch`` records of one window's results (one per run of consecutive bins)."""
    res = prep.parameters.output_resolution
    res_ms = res // timedelta(milliseconds=1)
    recs = []
    for sensor, series in results.items():
        series = series[np.isfinite(series.to_numpy(dtype=float))].sort_index()
        for run in _runs(series.index, res, prep.parameters.timezone):
            part = series.iloc[run]
            recs.append(
                {
                    "sensor": sensor,
                    "start": part.index[0].to_pydatetime(),
                    "resolution_ms": res_ms,
                    "values": [float(v) for v in part.to_numpy(dtype=float)],
                    "belief_time": belief_time,
                    "belief_horizon_ms": None,
                    "source": prep.definition.source,
                    "cumulative_probability": 0.5,
                    "unit": None,
                }
            )
    return recs


def window_records(
    prep: PreparedReport, runs: list[RunResult], belief_times: Mapping[int, datetime]
) -> list[dict[str, Any]]:
    """``BeliefBatch`` records of computed ``runs``; ``belief_times``: window -> belief time.

    Windows with the same belief time are joined per output sensor (a run whose
    windows share one is taken whole), then split into runs of consecutive
    bins by :func:`result_records`.
    """
    groups: dict[datetime, dict[str, list[pd.Series]]] = {}
    for run in runs:
        bts = {belief_times[i] for i in run.windows}
        for sensor, series in run.series.items():
            if len(bts) == 1:
                groups.setdefault(next(iter(bts)), {}).setdefault(sensor, []).append(series)
                continue
            for i, part in run.split(sensor).items():
                groups.setdefault(belief_times[i], {}).setdefault(sensor, []).append(part)
    recs: list[dict[str, Any]] = []
    for bt, parts in groups.items():
        merged = {sensor: pd.concat(p) if len(p) > 1 else p[0] for sensor, p in parts.items()}
        recs.extend(result_records(prep, merged, bt))
    return recs

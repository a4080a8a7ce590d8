"""Charts of beliefs: one panel per unit, steps per sensor and source, bars per day (altair).

Pure: beliefs frames in (the contract of :mod:`streams.reports.reporters.base`), an
altair chart out; :func:`save_chart` writes a self-contained HTML file (vega,
vega-lite and vega-embed inlined from the ``vl-convert-python`` bundle, so it
opens without network access) that fills the page's width, or a PNG/SVG
rendered by vl-convert.

Encoding:

- one vertically stacked panel per unit, each with its own y axis titled with
  the unit, all sharing the time axis;
- time in one timezone, named in the axis title: the charted sensors' own
  when they share one, else UTC (and the title says why), or the one asked
  for; events sit at their true instants and the ticks and tooltips show local
  wall-clock time (see :mod:`streams.cli.chart_time`), so DST days keep 23 or
  25 hours;
- colour: the sensor; line dash: the kind of source (``belief`` for
  measurements, forecasts and prices, ``schedule``, ``report``), so a schedule
  or a report on the same sensor stays distinguishable from its beliefs;
- each (sensor, source) pair is its own series. Series of a resolution of whole
  days (daily KPIs) are bars spanning their local day, side by side when a
  panel has several; other series are steps (an event holds its value over its
  resolution), with a dot per event on short lines. Per event the most recent
  belief of each source is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import altair as alt
import pandas as pd

from schemas.errors import InputError
from schemas.times import to_us
from streams.cli.chart_html import page
from streams.cli.chart_time import chart_zone, label_expr, local_ticks, wall_clock
from streams.reports.reporters.beliefs import current_values
from streams.reports.reporters.grid import is_calendar

Kind = Literal["belief", "schedule", "report"]
KINDS: tuple[Kind, ...] = ("belief", "schedule", "report")
_DASHES = {"belief": [1, 0], "schedule": [6, 3], "report": [2, 2]}
#: A chart width: pixels, or ``"container"`` to follow the width of the page.
Width = int | Literal["container"]


def source_kind(source: str, kinds: Mapping[str, Kind] | None = None) -> Kind:
    """Kind of a source: from ``kinds`` if listed, else by name (``*schedul*``, ``*report*``)."""
    if kinds and source in kinds:
        return kinds[source]
    lowered = source.lower()
    if "schedul" in lowered:
        return "schedule"
    if "report" in lowered:
        return "report"
    return "belief"


def chart_data(
    frames: Mapping[str, pd.DataFrame],
    units: Mapping[str, str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    timezone: str = "UTC",
    zones: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Long table for plotting: one row per sensor, source and event (most recent belief).

    Columns: ``sensor``, ``unit``, ``source``, ``kind``, ``mark`` (``bar`` for
    series of a resolution of whole days, else ``line``), ``event_start`` and
    ``event_end`` (ISO 8601 UTC text), ``local_start`` (wall-clock text in
    ``timezone``), ``event_value`` and ``description`` (text for screen
    readers). ``frames`` maps a sensor label to its beliefs; ``zones`` a
    sensor label to its timezone, in which its days begin and end (default:
    ``timezone``).
    """
    units, zones = units or {}, zones or {}
    rows = []
    for sensor, frame in frames.items():
        if frame.empty:
            continue
        for source in sorted(frame["source"].astype(str).unique()):
            part = frame[frame["source"].astype(str) == source]
            cur = current_values(part, f"frames.{sensor}")
            cur = cur[cur["event_value"].notna()].reset_index(drop=True)
            if cur.empty:
                continue
            ends, daily = _event_ends(cur, zones.get(sensor, timezone))
            kind = source_kind(source, kinds)
            local = wall_clock(cur["event_start"], timezone)
            unit = units.get(sensor, "")
            values = cur["event_value"].astype(float)
            said = [f"{v:g} {unit}".rstrip() for v in values]
            rows.append(
                pd.DataFrame(
                    {
                        "sensor": sensor,
                        "unit": unit,
                        "source": source,
                        "kind": kind,
                        "mark": "bar" if daily else "line",
                        "event_start": cur["event_start"].dt.strftime(_ISO),
                        "event_end": ends.dt.strftime(_ISO),
                        "local_start": local,
                        "event_value": values,
                        # a line has one description (the series), a bar one per event
                        "description": [
                            f"sensor: {sensor}; source: {source}; kind: {kind}"
                            + (f"; event start: {t}; value: {v}" if daily else "")
                            for t, v in zip(local, said, strict=True)
                        ],
                    }
                )
            )
    if not rows:
        raise InputError("nothing to chart: every beliefs frame is empty", "frames")
    return pd.concat(rows, ignore_index=True)


_ISO = "%Y-%m-%dT%H:%M:%SZ"


def _event_ends(cur: pd.DataFrame, timezone: str) -> tuple[pd.Series, bool]:
    """Event ends, whole days counted in ``timezone`` (a DST day lasts 23 or 25 hours)."""
    resolution = (cur["event_end"] - cur["event_start"]).max()
    if not is_calendar(resolution.to_pytimedelta()):
        return cur["event_end"], False
    days = pd.DateOffset(days=resolution.days)
    local = cur["event_start"].dt.tz_convert(timezone)
    return pd.Series([(t + days).tz_convert("UTC") for t in local], index=cur.index), True


#: Columns of :func:`chart_data` that the chart draws (the rest only serve to build it).
_DRAWN = ["sensor", "source", "kind", "event_start", "local_start", "event_value", "description"]
#: Lines with at most this many events also get a dot per event (one event draws no line).
DOT_LIMIT = 48
#: Part of each day left free on either side of its bars.
BAR_MARGIN = 0.08


def _dodge(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars of several series side by side within their day: ``bar_start``, ``bar_end``."""
    series = list(dict.fromkeys(zip(bars["sensor"], bars["source"], strict=True)))
    k = pd.Series(
        [series.index(key) for key in zip(bars["sensor"], bars["source"], strict=True)],
        index=bars.index,
    )
    start = pd.to_datetime(bars["event_start"], utc=True)
    span = pd.to_datetime(bars["event_end"], utc=True) - start
    left, inner = start + span * BAR_MARGIN, span * (1 - 2 * BAR_MARGIN)
    n = len(series)
    return bars.assign(
        bar_start=(left + inner * k / n).dt.strftime(_ISO),
        bar_end=(left + inner * (k + 1) / n).dt.strftime(_ISO),
    )


def _panel(
    data: pd.DataFrame, unit: str, x: dict[str, Any], timezone: str, width: Width, height: int
) -> alt.LayerChart:
    """One panel: steps of every finer series in ``unit``, dots on short ones, bars per day."""
    y = alt.Y("event_value:Q", title=unit or "value")
    color = alt.Color("sensor:N", title="sensor")
    tooltip = [
        alt.Tooltip("sensor:N"),
        alt.Tooltip("source:N"),
        alt.Tooltip("kind:N"),
        alt.Tooltip("local_start:N", title=f"event start ({timezone})"),
        alt.Tooltip("event_value:Q", title=unit or "value"),
    ]
    layers: list[alt.Chart] = []
    lines = data.loc[data["mark"] == "line", _DRAWN].reset_index(drop=True)
    if not lines.empty:
        base = alt.Chart(lines).encode(
            x=alt.X("event_start:T", **x),
            y=y,
            color=color,
            detail="source:N",
            tooltip=tooltip,
            description="description:N",
        )
        dash = alt.StrokeDash(
            "kind:N",
            title="kind",
            scale=alt.Scale(domain=list(KINDS), range=[_DASHES[k] for k in KINDS]),
        )
        layers.append(base.mark_line(interpolate="step-after").encode(strokeDash=dash))
        layers.append(
            base.mark_point(filled=True, size=30)
            .transform_joinaggregate(events="count()", groupby=["sensor", "source"])
            .transform_filter(alt.datum.events <= DOT_LIMIT)
        )
    bars = data[data["mark"] == "bar"].reset_index(drop=True)
    if not bars.empty:
        layers.append(
            alt.Chart(_dodge(bars)[[*_DRAWN, "bar_start", "bar_end"]])
            .mark_bar(orient="vertical")
            .encode(
                x=alt.X("bar_start:T", **x),
                x2="bar_end:T",
                y=y,
                y2=alt.datum(0),
                color=color,
                tooltip=tooltip,
                description="description:N",
            )
        )
    return alt.layer(*layers).properties(width=width, height=height)


def _time_axis(data: pd.DataFrame, timezone: str) -> dict[str, Any]:
    """The shared x encoding: true instants on a UTC scale, ticks labelled in ``timezone``."""
    lo = pd.to_datetime(data["event_start"], utc=True).min().to_pydatetime()
    hi = pd.to_datetime(data["event_end"], utc=True).max().to_pydatetime()
    if hi <= lo:
        hi = lo + timedelta(hours=1)
    ticks = local_ticks(lo, hi, timezone)
    return {
        "title": f"time ({timezone})",
        "scale": alt.Scale(type="utc", domain=[to_us(lo) // 1000, to_us(hi) // 1000]),
        "axis": alt.Axis(
            values=[ms for ms, _ in ticks], labelExpr=label_expr(ticks), labelOverlap="greedy"
        ),
    }


def build_chart(
    frames: Mapping[str, pd.DataFrame],
    units: Mapping[str, str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    title: str | None = None,
    width: Width = "container",
    height: int = 180,
    timezone: str | None = None,
    zones: Mapping[str, str] | None = None,
) -> alt.VConcatChart:
    """Build the chart of several sensors' beliefs (see the module docstring).

    ``frames``: sensor label -> beliefs frame; ``units``: sensor label -> unit
    (sensors with the same unit share a panel); ``kinds``: source -> kind where
    the name does not tell; ``zones``: sensor label -> timezone; ``timezone``:
    the zone of the time axis (default: the sensors' common zone, else UTC
    with a note in the title). ``width``: pixels, or ``"container"`` to fill
    the page (HTML).
    """
    zones = zones or {}
    tz, note = chart_zone({n: z for n, z in zones.items() if n in frames}, timezone)
    data = chart_data(frames, units, kinds, tz, zones)
    x = _time_axis(data, tz)
    panels = [
        _panel(data[data["unit"] == unit].reset_index(drop=True), unit, x, tz, width, height)
        for unit in dict.fromkeys(data["unit"])
    ]
    chart = alt.vconcat(*panels).resolve_scale(x="shared", y="independent", color="shared")
    heading = "; ".join(t for t in (title, note) if t)
    if heading:
        chart = chart.properties(title=heading)
    return chart


#: Width of PNG and SVG images, which have no page to fill.
IMAGE_WIDTH = 720


def _fixed_width(spec: Any, width: int) -> Any:
    """``spec`` with every ``"width": "container"`` replaced by ``width`` pixels."""
    if isinstance(spec, dict):
        return {
            k: width if k == "width" and v == "container" else _fixed_width(v, width)
            for k, v in spec.items()
        }
    if isinstance(spec, list):
        return [_fixed_width(v, width) for v in spec]
    return spec


def save_chart(
    chart: alt.TopLevelMixin,
    path: str | Path,
    renderer: Literal["svg", "canvas"] = "svg",
) -> Path:
    """Save as self-contained HTML (``.html``) or a PNG/SVG image (``.png``, ``.svg``).

    HTML inlines the vega, vega-lite and vega-embed JavaScript (no CDN), with
    ``renderer`` for the browser, and fills the page's width (see
    :mod:`streams.cli.chart_html`); images are rendered by vl-convert,
    :data:`IMAGE_WIDTH` pixels wide where the chart follows its container.
    """
    import vl_convert as vlc

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".png", ".svg"):
        raise InputError(f"cannot save a chart as {suffix!r}; use .html, .png or .svg", "path")
    spec = chart.to_dict()
    version = "_".join(alt.SCHEMA_VERSION.split(".")[:2])  # v6.4.1 -> v6_4
    if suffix == ".html":
        bundle = vlc.javascript_bundle(vl_version=version)
        embed = {"renderer": renderer, "actions": False, "mode": "vega-lite"}
        path.write_text(page(spec, bundle, embed), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(vlc.vegalite_to_png(_fixed_width(spec, IMAGE_WIDTH), vl_version=version))
    else:
        svg = vlc.vegalite_to_svg(_fixed_width(spec, IMAGE_WIDTH), vl_version=version)
        path.write_text(svg, encoding="utf-8")
    return path

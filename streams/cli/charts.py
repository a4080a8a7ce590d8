"""Charts of beliefs: one line per sensor and source, one panel per unit (Vega-Lite via altair).

Pure: beliefs frames in (the contract of :mod:`streams.reports.reporters.base`), an
altair chart out; :func:`save_chart` writes a self-contained HTML file (vega,
vega-lite and vega-embed inlined from the ``vl-convert-python`` bundle, so it
opens without network access) or a PNG/SVG rendered by vl-convert.

Encoding:

- one vertically stacked panel per unit, each with its own y axis titled with
  the unit, all sharing the time axis (UTC);
- colour: the sensor; line dash: the kind of source (``belief`` for
  measurements, forecasts and prices, ``schedule``, ``report``), so a schedule
  or a report on the same sensor stays distinguishable from its beliefs;
- each (sensor, source) pair is its own line, drawn as steps (an event holds
  its value over its resolution), with a dot per event on short lines (a
  daily report of one day is a single dot); per event the most recent belief
  of each source is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import altair as alt
import pandas as pd

from schemas.errors import InputError
from streams.reports.reporters.beliefs import current_values

Kind = Literal["belief", "schedule", "report"]
KINDS: tuple[Kind, ...] = ("belief", "schedule", "report")
_DASHES = {"belief": [1, 0], "schedule": [6, 3], "report": [2, 2]}


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
) -> pd.DataFrame:
    """Long table for plotting: one row per sensor, source and event (most recent belief).

    Columns: ``sensor``, ``unit``, ``source``, ``kind``, ``event_start`` (ISO 8601
    UTC text), ``event_value``. ``frames`` maps a sensor label to its beliefs.
    """
    units = units or {}
    rows = []
    for sensor, frame in frames.items():
        if frame.empty:
            continue
        for source in sorted(frame["source"].astype(str).unique()):
            part = frame[frame["source"].astype(str) == source]
            cur = current_values(part, f"frames.{sensor}")
            cur = cur[cur["event_value"].notna()]
            rows.append(
                pd.DataFrame(
                    {
                        "sensor": sensor,
                        "unit": units.get(sensor, ""),
                        "source": source,
                        "kind": source_kind(source, kinds),
                        "event_start": cur["event_start"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "event_value": cur["event_value"].astype(float),
                    }
                )
            )
    if not rows:
        raise InputError("nothing to chart: every beliefs frame is empty", "frames")
    return pd.concat(rows, ignore_index=True)


#: Lines with at most this many events also get a dot per event (one event draws no line).
DOT_LIMIT = 48


def _panel(data: pd.DataFrame, unit: str, width: int, height: int) -> alt.LayerChart:
    """One panel: the lines of every sensor measured in ``unit``, dots on short lines."""
    base = alt.Chart(data, height=height, width=width).encode(
        x=alt.X("event_start:T", title="time (UTC)", scale=alt.Scale(type="utc")),
        y=alt.Y("event_value:Q", title=unit or "value"),
        color=alt.Color("sensor:N", title="sensor"),
        detail="source:N",
        tooltip=[
            alt.Tooltip("sensor:N"),
            alt.Tooltip("source:N"),
            alt.Tooltip("kind:N"),
            alt.Tooltip("event_start:T", title="event start (UTC)", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("event_value:Q", title=unit or "value"),
        ],
    )
    lines = base.mark_line(interpolate="step-after").encode(
        strokeDash=alt.StrokeDash(
            "kind:N",
            title="kind",
            scale=alt.Scale(domain=list(KINDS), range=[_DASHES[k] for k in KINDS]),
        )
    )
    dots = (
        base.mark_point(filled=True, size=30)
        .transform_joinaggregate(events="count()", groupby=["sensor", "source"])
        .transform_filter(alt.datum.events <= DOT_LIMIT)
    )
    return alt.layer(lines, dots)


def build_chart(
    frames: Mapping[str, pd.DataFrame],
    units: Mapping[str, str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    title: str | None = None,
    width: int = 720,
    height: int = 180,
) -> alt.VConcatChart:
    """Build the chart of several sensors' beliefs (see the module docstring).

    ``frames``: sensor label -> beliefs frame; ``units``: sensor label -> unit
    (sensors with the same unit share a panel); ``kinds``: source -> kind where
    the name does not tell.
    """
    data = chart_data(frames, units, kinds)
    panels = [
        _panel(data[data["unit"] == unit].reset_index(drop=True), unit, width, height)
        for unit in dict.fromkeys(data["unit"])
    ]
    chart = alt.vconcat(*panels).resolve_scale(x="shared", y="independent", color="shared")
    if title:
        chart = chart.properties(title=title)
    return chart


def save_chart(
    chart: alt.TopLevelMixin,
    path: str | Path,
    renderer: Literal["svg", "canvas"] = "svg",
) -> Path:
    """Save as self-contained HTML (``.html``) or a PNG/SVG image (``.png``, ``.svg``).

    HTML inlines the vega, vega-lite and vega-embed JavaScript (no CDN), with
    ``renderer`` for the browser; images are rendered by vl-convert.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".html":
        embed: dict[str, Any] = {"renderer": renderer, "actions": False}
        chart.save(str(path), format="html", inline=True, embed_options=embed)
    elif suffix in (".png", ".svg"):
        chart.save(str(path), format=suffix[1:])
    else:
        raise InputError(f"cannot save a chart as {suffix!r}; use .html, .png or .svg", "path")
    return path

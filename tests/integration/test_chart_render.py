"""Render a chart's HTML in a real headless Chromium and check that it drew its lines.

The HTML must work offline (vega, vega-lite and vega-embed inlined); Chromium
is installed by ``infra/install_chromium.sh`` when missing. This test never
skips: without a browser it fails and says how to get one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.errors import InputError
from streams.cli.charts import build_chart, save_chart

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "infra" / "install_chromium.sh"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium binary, installing it with infra/install_chromium.sh if needed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    proc = subprocess.run(
        ["bash", str(INSTALL)], capture_output=True, text=True, timeout=900, check=False
    )
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "Chromium is missing and infra/install_chromium.sh could not install it "
            f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}\n"
            "Install it with 'sudo apt-get install chromium' and run the test again.",
            pytrace=False,
        )
    return found


def _beliefs(values, source: str, start: str = "2026-10-25T00:00Z") -> pd.DataFrame:
    idx = pd.date_range(start, periods=len(values), freq="1h")
    return pd.DataFrame(
        {
            "event_start": idx,
            "event_resolution": pd.Timedelta("1h"),
            "belief_time": idx,
            "source": source,
            "cumulative_probability": 0.5,
            "event_value": np.asarray(values, dtype=float),
        }
    )


def _dump_dom(
    chromium: str, html: Path, profile: Path, window: tuple[int, int] | None = None
) -> str:
    """The page's DOM once drawn; no network (every request goes to a closed proxy port)."""
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *([f"--window-size={window[0]},{window[1]}"] if window else []),
        "--dump-dom",
        html.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def test_chart_html_draws_one_line_per_sensor_and_source_offline(chromium, tmp_path):
    hours = np.arange(24)
    frames = {
        "pv": _beliefs(-3 * np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None), "meter"),
        "battery": pd.concat(
            [_beliefs(np.ones(24), "meter"), _beliefs(np.tile([2.0, -2.0], 12), "scheduler")]
        ),
        "price": _beliefs(40 + 5 * hours, "entsoe"),
        "daily-cost": _beliefs([4.2], "reporter", start="2026-10-25T00:00Z"),
    }
    units = {"pv": "kW", "battery": "kW", "price": "EUR/MWh", "daily-cost": "EUR"}
    html = save_chart(build_chart(frames, units, title="site"), tmp_path / "chart.html")

    text = html.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", text), "scripts must be inlined, not loaded"
    assert "vegaEmbed" in text

    dom = _dump_dom(chromium, html, tmp_path / "profile")
    assert re.search(r'class="[^"]*\bvega-embed\b', dom), "vega-embed did not run"
    assert "<svg" in dom and 'class="marks"' in dom, "no SVG view was drawn"
    lines = re.findall(r'<path[^>]*aria-roledescription="line mark"[^>]*>', dom)
    labels = sorted(
        (re.search(r"sensor: ([^;]+);", p).group(1), re.search(r"source: ([^;]+);", p).group(1))
        for p in lines
    )
    assert labels == [
        ("battery", "meter"),
        ("battery", "scheduler"),
        ("daily-cost", "reporter"),
        ("price", "entsoe"),
        ("pv", "meter"),
    ]
    hourly = [p for p in lines if "daily-cost" not in p]
    # 24 hourly events drawn as steps: a move and at least 23 segments per line
    for path in hourly:
        d = re.search(r' d="([^"]+)"', path).group(1)
        assert d.startswith("M") and d.count("L") >= 23, d[:80]
    # the one-event report line has no length, so it must show as a dot
    dots = re.findall(r'<path[^>]*aria-roledescription="point"[^>]*>', dom)
    assert any("sensor: daily-cost" in p for p in dots), "the one-day report is not visible"
    assert "kind: schedule" in dom and "kind: report" in dom and "kind: belief" in dom
    for unit in ("kW", "EUR/MWh", "EUR"):
        assert f">{unit}</text>" in dom, f"no y axis titled {unit}"


def test_html_is_self_contained_and_png_renders(tmp_path):
    """Saving runs vl-convert's JavaScript engine: inline bundle for HTML, rendering for PNG."""
    frames = {
        "battery": pd.concat(
            [_beliefs([1.0, 5.0, 1.0], "meter"), _beliefs([2.0, -2.0, 0.0], "scheduler")]
        ),
        "price": _beliefs([50.0, 60.0, 70.0], "entsoe"),
    }
    chart = build_chart(frames, {"battery": "kW", "price": "EUR/MWh"})
    html = save_chart(chart, tmp_path / "c.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", html)
    assert "vegaEmbed(" in html and len(html) > 100_000  # the bundle is inlined
    png = save_chart(chart, tmp_path / "c.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    with pytest.raises(InputError) as err:
        save_chart(chart, tmp_path / "c.pdf")
    assert err.value.field == "path"


def _svg_width(dom: str) -> float:
    return float(re.search(r'<svg[^>]*class="marks"[^>]*width="([\d.]+)"', dom).group(1))


def test_html_fills_the_window_width_at_any_size(chromium, tmp_path):
    frames = {"battery": _beliefs(np.tile([2.0, -2.0], 12), "meter")}
    html = save_chart(build_chart(frames, {"battery": "kW"}), tmp_path / "wide.html")
    widths = {}
    for window in (1400, 700):
        dom = _dump_dom(chromium, html, tmp_path / f"profile{window}", (window, 900))
        assert 'aria-roledescription="line mark"' in dom, "no chart drawn"
        widths[window] = _svg_width(dom)
    # the page has 12 px of padding on either side; the chart takes the rest, no more
    for window, width in widths.items():
        assert window - 24 - 2 <= width <= window - 24, widths


def test_dst_days_render_in_local_time_every_hour_once_and_bars_per_day(chromium, tmp_path):
    # Amsterdam: Sun 25 Oct 2026 lasts 25 hours, Mon 26 Oct 24 hours
    ams = "Europe/Amsterdam"
    hours = 25 + 24
    frames = {
        "pv": _beliefs(np.arange(hours, dtype=float), "meter", start="2026-10-24T22:00Z"),
        "cost": pd.concat(
            [
                _beliefs([3.0], "kpi-report", start="2026-10-24T22:00Z"),
                _beliefs([4.0], "kpi-report", start="2026-10-25T23:00Z"),
            ]
        ).assign(event_resolution=pd.Timedelta("1D")),
    }
    chart = build_chart(frames, {"pv": "kW", "cost": "EUR"}, zones=dict.fromkeys(frames, ams))
    html = save_chart(chart, tmp_path / "dst.html")
    dom = _dump_dom(chromium, html, tmp_path / "profile", (1200, 900))
    (line,) = re.findall(r'<path[^>]*aria-roledescription="line mark"[^>]*>', dom)
    d = re.search(r' d="([^"]+)"', line).group(1)
    xs = [float(m) for m in re.findall(r"[ML]([\d.]+),", d)]
    assert len(xs) == 2 * hours - 1  # steps: a move, then across and down per event
    steps = sorted(set(xs))
    assert len(steps) == hours and xs == sorted(xs)  # every hour once, in time order
    gaps = np.diff(steps)
    assert gaps.max() - gaps.min() < 0.01  # equal hours: no gap, no overlap at the change
    bars = re.findall(r'<path[^>]*aria-roledescription="bar"[^>]*>', dom)
    assert len(bars) == 2
    widths = sorted(
        (
            re.search(r"event start: ([^;]+);", b).group(1),
            float(re.search(r"h([\d.]+)v", b).group(1)),
        )
        for b in bars
    )
    assert [w[0] for w in widths] == ["2026-10-25 00:00 CEST", "2026-10-26 00:00 CET"]
    assert widths[0][1] / widths[1][1] == pytest.approx(25 / 24, rel=1e-3)
    for label in ("Sun 25 Oct", "Mon 26 Oct", "time (Europe/Amsterdam)"):
        assert f">{label}</text>" in dom, label


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))

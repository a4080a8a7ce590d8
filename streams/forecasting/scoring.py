"""Forecast accuracy per horizon bucket: MAE, WAPE, pinball loss per quantile, CRPS, skill.

A score compares forecasts with the measured values of their events. The
horizon of a forecast belief is its event start minus its belief time; pairs
are grouped into horizon buckets (``0-1 h``, ``1-6 h``, ``6-24 h``, ``24-48 h``,
beyond). Each bucket keeps *sums* (absolute errors, absolute measured values,
pinball losses, CRPS, and the seasonal-naive baseline's absolute errors), so
rounds of scoring add up exactly: the ``forecast_scores`` table stores the sums
and metrics are ratios of sums.

- MAE: mean |median - measured|; WAPE: sum |median - measured| / sum |measured|.
- Pinball loss of quantile ``q``: ``q (y - f)`` when ``y >= f``, else ``(1 - q)(f - y)``.
- CRPS: from the quantiles, the quantile-score approximation
  ``2 / |Q| * sum_q pinball_q`` (Berrisch & Ziel 2023), computed with
  ``scoringrules.crps_quantile``. Three quantiles give a coarse CRPS; it is
  comparable across forecasters that emit the same levels.
- Skill: ``1 - MAE / MAE of seasonal naive`` over the same pairs (> 0: better).

Only pairs with a seasonal-naive value (as known at the forecast's belief time)
are scored, so model and baseline are compared on the same pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

_HOUR_S = 3600
#: Horizon bucket edges in seconds; the last bucket runs open-ended.
BUCKET_EDGES_S: tuple[int, ...] = (0, _HOUR_S, 6 * _HOUR_S, 24 * _HOUR_S, 48 * _HOUR_S)
OPEN_END_S = 2**32 - 1


@dataclass
class BucketScore:
    """Sums over the scored pairs of one horizon bucket."""

    horizon_from_s: int
    horizon_to_s: int
    n: int = 0
    abs_error: float = 0.0
    abs_measured: float = 0.0
    naive_abs_error: float = 0.0
    crps: float = 0.0
    pinball: dict[float, float] = field(default_factory=dict)

    def add(self, other: BucketScore) -> None:
        """Add the sums of ``other`` (same bucket)."""
        self.n += other.n
        self.abs_error += other.abs_error
        self.abs_measured += other.abs_measured
        self.naive_abs_error += other.naive_abs_error
        self.crps += other.crps
        for q, v in other.pinball.items():
            self.pinball[q] = self.pinball.get(q, 0.0) + v

    @property
    def label(self) -> str:
        """``0-1 h``, ``48 h-`` and the like."""
        lo = self.horizon_from_s / _HOUR_S
        if self.horizon_to_s >= OPEN_END_S:
            return f"{lo:g} h-"
        return f"{lo:g}-{self.horizon_to_s / _HOUR_S:g} h"

    def metrics(self) -> dict[str, float]:
        """MAE, WAPE, CRPS, naive MAE, skill and mean pinball per quantile (NaN if undefined)."""
        n = self.n or np.nan
        out = {
            "mae": self.abs_error / n,
            "wape": self.abs_error / self.abs_measured if self.abs_measured else np.nan,
            "crps": self.crps / n,
            "naive_mae": self.naive_abs_error / n,
            "skill": 1 - self.abs_error / self.naive_abs_error if self.naive_abs_error else np.nan,
        }
        for q, v in sorted(self.pinball.items()):
            out[f"pinball_{q:g}"] = v / n
        return out


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> np.ndarray:
    """Pinball (quantile) loss of ``forecast`` as quantile ``q`` of ``actual``."""
    diff = actual - forecast
    return np.where(diff >= 0, q * diff, (q - 1) * diff)


def crps_from_quantiles(
    actual: np.ndarray, forecasts: np.ndarray, quantiles: Sequence[float]
) -> np.ndarray:
    """Per pair, the CRPS approximated from quantile forecasts (rows x quantiles)."""
    import scoringrules

    if not len(actual):
        return np.empty(0)
    out = scoringrules.crps_quantile(
        actual, forecasts, np.asarray(quantiles, dtype=float), backend="numpy"
    )
    return np.asarray(out, dtype=float)


def score(
    horizon_s: np.ndarray,
    quantiles: Sequence[float],
    forecasts: np.ndarray,
    naive: np.ndarray,
    actual: np.ndarray,
    edges: Sequence[int] = BUCKET_EDGES_S,
) -> list[BucketScore]:
    """Sums per horizon bucket of forecast pairs (rows x quantiles) against ``actual``.

    Rows without a measured value, a median or a seasonal-naive value are left
    out; buckets without pairs too. A negative horizon (the event in progress at
    the forecast time) counts in the first bucket.
    """
    qs = list(quantiles)
    median = forecasts[:, qs.index(0.5)]
    ok = np.isfinite(actual) & np.isfinite(naive) & np.isfinite(forecasts).all(axis=1)
    # The event in progress at the belief time (a negative horizon) counts as horizon 0.
    h, f, nv, y = np.maximum(horizon_s[ok], 0), forecasts[ok], naive[ok], actual[ok]
    bucket = np.searchsorted(np.asarray(edges), h, side="right") - 1
    out = []
    for b, lo in enumerate(edges):
        sel = bucket == b
        if not sel.any():
            continue
        hi = edges[b + 1] if b + 1 < len(edges) else OPEN_END_S
        yb, fb = y[sel], f[sel]
        out.append(
            BucketScore(
                horizon_from_s=int(lo),
                horizon_to_s=int(hi),
                n=int(sel.sum()),
                abs_error=float(np.abs(median[ok][sel] - yb).sum()),
                abs_measured=float(np.abs(yb).sum()),
                naive_abs_error=float(np.abs(nv[sel] - yb).sum()),
                crps=float(crps_from_quantiles(yb, fb, qs).sum()),
                pinball={q: float(pinball(yb, fb[:, i], q).sum()) for i, q in enumerate(qs)},
            )
        )
    return out


def combine(scores: Iterable[BucketScore]) -> list[BucketScore]:
    """Sum scores of the same bucket (e.g. of many rounds), sorted by horizon."""
    out: dict[int, BucketScore] = {}
    for s in scores:
        acc = out.setdefault(s.horizon_from_s, BucketScore(s.horizon_from_s, s.horizon_to_s))
        acc.add(s)
    return [out[k] for k in sorted(out)]

"""The models: LightGBM quantile regression and the seasonal-naive baseline.

LightGBM (a well-kept gradient-boosting library, fast on CPU, with missing
values handled natively) fits one booster per quantile with the pinball
(``quantile``) objective: a booster optimises one quantile level, so three
quantiles are three boosters, trained on one binned dataset built once. The
quantiles of a row are then sorted (monotone rearrangement), so they never
cross: the 0.1 quantile is never above the median.

The seasonal-naive baseline forecasts the value one season (a day or a week)
before, as known at forecast time; its quantiles add the empirical quantiles of
its own errors on the training rows. It is always computed beside the model,
as the reference its skill is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: LightGBM settings: modest trees, shrinkage 0.05, enough rounds for a year of data.
LGBM_PARAMS: dict[str, Any] = {
    "objective": "quantile",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "verbose": -1,
    "num_threads": 1,  # on a shared machine, threads spin waiting for each other
    "seed": 7,
}
ROUNDS = 150
#: Binning of the features (done once, shared by the quantiles' boosters).
DATASET_PARAMS: dict[str, Any] = {"max_bin": 127, "verbose": -1}


def non_crossing(values: np.ndarray) -> np.ndarray:
    """Quantile forecasts (rows x quantiles, ascending levels) sorted along each row."""
    return np.sort(values, axis=1)


@dataclass
class QuantileBoosters:
    """One LightGBM booster per quantile level, over fixed feature columns."""

    quantiles: tuple[float, ...]
    columns: list[str]
    boosters: list[Any] = field(default_factory=list)

    def fit(self, x: np.ndarray, y: np.ndarray, rounds: int = ROUNDS) -> QuantileBoosters:
        """Train on features ``x`` (rows x columns) and targets ``y``."""
        import lightgbm as lgb

        data = lgb.Dataset(
            x, y, feature_name=list(self.columns), params=DATASET_PARAMS, free_raw_data=False
        )
        data.construct()
        self.boosters = [
            lgb.train({**LGBM_PARAMS, "alpha": q}, data, num_boost_round=rounds)
            for q in self.quantiles
        ]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Quantile forecasts, rows x quantiles, non-crossing."""
        out = np.column_stack([b.predict(x, num_threads=1) for b in self.boosters])
        return non_crossing(out)


@dataclass
class SeasonalNaive:
    """The value one season before plus its training errors' quantiles (per horizon bucket)."""

    quantiles: tuple[float, ...]
    #: Horizon bucket edges in hours and, per bucket, the error quantile per level.
    edges: np.ndarray = field(default_factory=lambda: np.array([0.0, 6.0, 24.0, 48.0]))
    offsets: np.ndarray | None = None

    def fit(self, naive: np.ndarray, horizon_h: np.ndarray, y: np.ndarray) -> SeasonalNaive:
        """Learn the error quantiles of ``naive`` against ``y`` per horizon bucket."""
        err = y - naive
        ok = np.isfinite(err)
        bucket = np.searchsorted(self.edges, horizon_h, side="right") - 1
        offsets = np.zeros((len(self.edges), len(self.quantiles)))
        for b in range(len(self.edges)):
            sel = ok & (bucket == b)
            if sel.sum() >= 10:
                offsets[b] = np.quantile(err[sel], self.quantiles)
            elif ok.sum() >= 10:
                offsets[b] = np.quantile(err[ok], self.quantiles)
        self.offsets = offsets
        return self

    def predict(self, naive: np.ndarray, horizon_h: np.ndarray) -> np.ndarray:
        """Quantile forecasts, rows x quantiles (NaN where no naive value is known)."""
        offsets = self.offsets if self.offsets is not None else np.zeros((1, len(self.quantiles)))
        bucket = np.clip(np.searchsorted(self.edges, horizon_h, side="right") - 1, 0, None)
        bucket = np.minimum(bucket, len(offsets) - 1)
        return non_crossing(naive[:, None] + offsets[bucket])

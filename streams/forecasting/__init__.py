"""Forecasting: forecasters trained on the history, forecasts as beliefs, scored by horizon.

Pure modules (no Kafka, ClickHouse or faust): ``history`` (what was known when),
``calendar`` and ``clearsky`` (features known in advance), ``features`` (the
feature matrix, no look-ahead), ``models`` (LightGBM quantiles, seasonal naive),
``scoring`` (MAE, WAPE, pinball, CRPS per horizon bucket), ``pipeline`` (train
and forecast), ``backtest`` (walk-forward). ``agent`` runs them in the worker.
"""

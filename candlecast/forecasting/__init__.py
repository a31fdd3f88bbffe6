"""Forecasting without tracking: every model judged on the same folds, offline.

The package holds the Forecaster interface, the targets (what is forecast and how it is judged:
``targets.TARGETS``), baselines, the neural adapter, splits, the walk-forward engine, metrics and
calibration.

Everything is judged here next to the naive random walk on the same folds. May import ``features``,
``data``, ``models`` and the leaves; never MLflow, Optuna or Prefect, so an offline backtest stays light.
"""

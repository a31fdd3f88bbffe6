"""The core of candlecast: plain Python that fetches, validates, featurises, forecasts, tracks and trades.

Split by stage into sub-packages that import only downwards (trading, registry, forecasting, features,
data, devtools), over four leaves (config, settings, schema, io); docs/architecture.md draws the arrows.
Nothing in the core imports Prefect: the flows and tasks around it only compose it.
"""

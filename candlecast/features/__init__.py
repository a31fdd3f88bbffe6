"""From stored candles to model inputs: causal features, higher timeframes, exogenous joins, windows, scalers.

Nothing here looks ahead: every feature at row t uses candles up to t's close, and scalers fit on
training rows only. May import ``data`` and the leaves; never forecasting, registry or trading.
"""

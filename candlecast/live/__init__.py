"""The living loop: candles as they close, forecasts on events, live error, drift that asks for a retrain.

Core code: it never imports Prefect. The composition root (deployments/commands/live.py) passes in
the candle contract as the gate and Prefect's ``emit_event`` as the way events leave the process.
"""

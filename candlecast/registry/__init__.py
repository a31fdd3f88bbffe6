"""The MLOps side: what is tracked, registered, promoted, shipped and served.

The package holds sweeps (Optuna), tracking and the model registry (MLflow), evaluation, the promotion
gate, the shipped model bundle and its pyfunc, batch prediction, scoring and the status view.

May import ``forecasting``, ``features``, ``data`` and the leaves; never trading.
"""

"""How much of the past a network learns from: a sliding training window of the newest days, as a hyperparameter.

After a regime change the oldest candles teach the old market. ``window_days`` in a configuration's
hyperparameters keeps only the training windows whose last input candle lies within that many days
of the training range's end (its scaler is fitted on those rows too); absent or None, the whole range,
as every bundle before the setting. The trim only moves the start of a training range that ends
where it ended, so it sees nothing the full range would not: no look-ahead. It travels in the bundle
spec's hyperparameters, so the promotion gate refits a champion with its own window.
"""

from __future__ import annotations

from typing import Any

from candlecast.schema import Range

WINDOW_DAYS = "window_days"
DAY_MS = 86_400_000


def recent(train: Range, hparams: dict[str, Any]) -> Range:
    """``train`` cut to its newest ``hparams["window_days"]`` days (all of it when the key is absent or None)."""
    days = hparams.get(WINDOW_DAYS)
    if days is None:
        return train
    if days <= 0:
        raise ValueError(f"{WINDOW_DAYS} {days!r}: a training window needs a positive number of days, or None for all")
    return Range(max(train.start, train.end - int(days * DAY_MS) + 1), train.end)


def network_params(hparams: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters the network's constructor takes: the training window is the fit's, not the network's."""
    return {k: v for k, v in hparams.items() if k != WINDOW_DAYS}

"""Seeded fits are bitwise reproducible without torch's deterministic-algorithms switch.

``_trainer`` runs Lightning with ``deterministic=False`` (the switch cost about 10% of training,
docs/benchmarks.md). What keeps a sweep or a refit reproducible is the seed: every architecture,
fitted twice with one seed and dropout on, gives bitwise equal weights and best validation loss, at
one thread and at two. Fits at one and at two threads are *not* bitwise equal to each other (a
different reduction order; about 1e-8 to 4e-4 in the weights here), with or without the switch, so
the switch never bought that either: with it on, the weights are the same bits as without it.
A fit also leaves the process-wide switch off, where ``deterministic=True`` used to leave it on.
"""

import numpy as np
import pytest
import torch

import candlecast.forecasting.neural as neural
from candlecast.config import FeatureConfig, TrainConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.splits import walk_forward
from candlecast.models import MODELS

HOUR = 3_600_000
FC = FeatureConfig(lookback=16, horizon=4, vol_window=12)
HPARAMS = {"dropout": 0.1, "hidden_size": 16}


@pytest.fixture(scope="module")
def series_and_fold():
    candles = synthetic_candles("BTC/USDT", 1_704_067_200_000, 1200, seed=3)
    s = SeriesArrays.from_frame("btc", series_features(candles, FC, "1h"), FC.horizon)
    s.mark_windows(FC.lookback, HOUR)
    fold = walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 20, 1, 150, 150, 150)[0]
    return s, fold


def _fit(name: str, threads: int, series: SeriesArrays, fold) -> tuple[float, dict[str, torch.Tensor]]:
    cfg = TrainConfig(max_epochs=2, patience=3, batch_size=64, seed=11, threads=threads)
    model = NeuralForecaster(name, HPARAMS, FC.lookback, FC.horizon, cfg, [0.1, 0.9])
    model.fit([series.until(fold.val.end)], fold)
    return model.result.best_val_loss, {k: v.clone() for k, v in model.result.model.state_dict().items()}


_plain_trainer = neural._trainer


def _switched_on_trainer(max_epochs, callbacks):
    """The Trainer as it was: Trainer(deterministic=True) switched torch's deterministic algorithms on."""
    trainer = _plain_trainer(max_epochs, callbacks)
    torch.use_deterministic_algorithms(True)
    return trainer


def _assert_same_bits(a, b, what: str) -> None:
    assert a[0] == b[0], f"{what}: best val_loss {a[0]!r} != {b[0]!r}"
    assert a[1].keys() == b[1].keys()
    for key, value in a[1].items():
        assert torch.equal(value, b[1][key]), f"{what}: {key} differs"


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_seeded_fit_is_bitwise_reproducible(name, threads, series_and_fold, monkeypatch):
    series, fold = series_and_fold
    torch.use_deterministic_algorithms(False)
    first = _fit(name, threads, series, fold)
    assert not torch.are_deterministic_algorithms_enabled(), "a fit left torch's deterministic switch on"
    assert np.isfinite(first[0])
    _assert_same_bits(_fit(name, threads, series, fold), first, f"{name}, second fit at {threads} thread(s)")
    monkeypatch.setattr(neural, "_trainer", _switched_on_trainer)
    try:
        switched_on = _fit(name, threads, series, fold)
        assert torch.are_deterministic_algorithms_enabled(), "the switched-on fit did not run with the switch on"
    finally:
        torch.use_deterministic_algorithms(False)
    _assert_same_bits(switched_on, first, f"{name} at {threads} thread(s) with deterministic=True")


@pytest.mark.slow
def test_a_different_seed_gives_different_weights(series_and_fold):
    """The equality above is not vacuous: the seed really drives the weights."""
    series, fold = series_and_fold
    _, a = _fit("lstm", 1, series, fold)
    cfg = TrainConfig(max_epochs=2, patience=3, batch_size=64, seed=12, threads=1)
    model = NeuralForecaster("lstm", HPARAMS, FC.lookback, FC.horizon, cfg, [0.1, 0.9])
    model.fit([series.until(fold.val.end)], fold)
    b = model.result.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)

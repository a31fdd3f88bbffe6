"""The global model: one network over many series, each scaled on its own rows and named by a one-hot id.

Three synthetic series, one of them another's candles with three times its log returns, so a
shared scaler and a per-series one differ visibly. The bundle's ``predict_many`` forecasts every series in one forward
pass and must give each series what ``predict`` gives it alone, and what the training-side path
(``NeuralForecaster.forecast`` on the full history) gives the same window.
"""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays, SeriesScalers, WindowDataset
from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.splits import walk_forward
from candlecast.registry.bundle import BundleSpec, ModelBundle
from candlecast.registry.pyfunc_model import BundlePyfunc

HOUR = 3_600_000
START = 1_704_067_200_000
FC = FeatureConfig(lookback=12, horizon=4, vol_window=12)
SYMBOLS = ["AAA/USDT", "BBB/USDT", "LOUD/USDT"]


def _louder(candles: pd.DataFrame, k: float) -> pd.DataFrame:
    """The same candles with every log price move multiplied by ``k``."""
    out = candles.copy()
    p0 = float(candles["close"].iloc[0])
    for col in ("open", "high", "low", "close"):
        out[col] = p0 * (candles[col] / p0) ** k
    return out


@pytest.fixture(scope="module")
def market() -> dict[str, pd.DataFrame]:
    candles = {s: synthetic_candles(s, START, 900, seed=5) for s in SYMBOLS}
    candles["LOUD/USDT"] = _louder(candles["AAA/USDT"], 3.0)  # AAA's moves, three times as large
    return candles


def _arrays(market: dict[str, pd.DataFrame]) -> list[SeriesArrays]:
    out = []
    for symbol, candles in market.items():
        s = SeriesArrays.from_frame(symbol, series_features(candles, FC, "1h"), FC.horizon)
        s.mark_windows(FC.lookback, HOUR)
        out.append(s)
    return out


def _fit(series: list[SeriesArrays], per_series: bool) -> tuple[NeuralForecaster, object]:
    fold = walk_forward(START, int(series[0].timestamps[-1]), HOUR, 16, 1, 120, 120, 120)[0]
    model = NeuralForecaster(
        "lstm",
        {"hidden_size": 8},
        FC.lookback,
        FC.horizon,
        TrainConfig(max_epochs=2, threads=1),
        [0.1, 0.9],
        per_series=per_series,
    )
    model.fit([s.until(fold.val.end) for s in series], fold)
    return model, fold


@pytest.fixture(scope="module")
def global_fit(market):
    series = _arrays(market)
    model, fold = _fit(series, per_series=True)
    return series, model, fold


def _bundle(series: list[SeriesArrays], model: NeuralForecaster, fold) -> ModelBundle:
    rows = [s.sample_rows(fold.cal) for s in series]
    pcs = [model.forecast(s.inputs_only(), r) for s, r in zip(series, rows, strict=True)]
    calibration = Calibration.fit(
        np.concatenate([s.targets[r] for s, r in zip(series, rows, strict=True)]),
        np.concatenate([p for p, _ in pcs]),
        np.concatenate([b for _, b in pcs]),
        0.8,
    )
    spec = BundleSpec(
        model_name="lstm",
        hparams={"hidden_size": 8},
        features=FC.model_dump(mode="json"),
        timeframe="1h",
        scaler=asdict(model.result.scaler),
        columns=series[0].columns,
        quantiles=[0.1, 0.9],
        calibration=asdict(calibration),
    )
    return ModelBundle(spec, model.result.model)


def test_each_series_is_scaled_on_its_own_rows_and_named_by_a_one_hot(global_fit):
    series, model, _ = global_fit
    scaler = model.result.scaler
    assert isinstance(scaler, SeriesScalers) and scaler.names == sorted(SYMBOLS)
    loud, quiet = scaler.of("LOUD/USDT"), scaler.of("AAA/USDT")
    np.testing.assert_allclose(np.divide(loud.target_scale, quiet.target_scale), 3.0, rtol=1e-9)  # its own scale
    width = series[0].features.shape[1]
    assert model.result.model.n_features == width + len(SYMBOLS)
    ds = WindowDataset(series, [_all(s) for s in series], scaler, FC.lookback)
    x, y = ds.__getitems__(list(range(len(ds))))
    ids = x[:, :, width:]
    assert torch.equal(ids, ids[:, :1].expand_as(ids))  # constant over the window
    assert torch.equal(ids.sum(dim=2), torch.ones(ids.shape[:2]))  # exactly one series each
    names = [s.name for s in series]
    for k, name in enumerate(scaler.names):  # column k is series k of the sorted vocabulary
        mine = ds.index[:, 0] == names.index(name)
        assert torch.equal(ids[mine, 0, k], torch.ones(int(mine.sum())))
        # per-series scaling: each series' scaled targets have about unit spread, the loud one too
        assert 0.7 < torch.sqrt((y[mine] ** 2).mean()).item() < 1.4, name


def _all(s: SeriesArrays) -> np.ndarray:
    return np.flatnonzero(s.valid_end & np.isfinite(s.targets).all(axis=1))


def test_the_series_id_is_an_input_the_forecast_depends_on(global_fit):
    series, model, _ = global_fit
    net = model.result.model
    width = series[0].features.shape[1]
    x = torch.zeros(1, FC.lookback, width + len(SYMBOLS))
    with torch.no_grad():
        outs = []
        for k in range(len(SYMBOLS)):
            x[:, :, width:] = 0.0
            x[:, :, width + k] = 1.0
            outs.append(net(x).clone())
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


def test_an_unknown_series_is_a_clear_error(global_fit):
    series, model, _ = global_fit
    stranger = SeriesArrays(
        "ZZZ/USDT", series[0].timestamps, series[0].features, series[0].targets, series[0].close, series[0].columns
    )
    stranger.mark_windows(FC.lookback, HOUR)
    with pytest.raises(ValueError, match="not one the global model was trained on"):
        model.forecast(stranger, np.array([len(stranger.timestamps) - 1]))


def test_predict_many_forecasts_every_series_in_one_call_like_predict_and_the_training_path(
    global_fit, market, tmp_path
):
    series, model, fold = global_fit
    bundle = ModelBundle.load(_bundle(series, model, fold).save(tmp_path / "global"))
    tail = bundle.spec.min_candles + 5
    frame = pd.concat([c.tail(tail).assign(symbol=s) for s, c in market.items()], ignore_index=True)
    many = bundle.predict_many(frame.sample(frac=1.0, random_state=0))  # any row order
    assert sorted(set(many["symbol"])) == sorted(SYMBOLS) and len(many) == len(SYMBOLS) * FC.horizon
    for s in series:
        alone = bundle.predict(market[s.name].tail(tail), symbol=s.name)
        mine = many[many["symbol"] == s.name].drop(columns="symbol").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone, check_exact=False, rtol=1e-5)
        expected, _ = model.forecast(s.inputs_only(), np.array([len(s.timestamps) - 1]))
        np.testing.assert_allclose(alone["forecast_log_return"], expected[0], rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="pass symbol="):
        bundle.predict(market["AAA/USDT"].tail(tail))
    served = BundlePyfunc()  # what `mlflow models serve` runs: a symbol column names each row's series
    served.forecaster = bundle
    pd.testing.assert_frame_equal(served.predict(None, frame), many)


def test_a_store_slug_name_resolves_to_its_symbol(global_fit, market):
    series, model, fold = global_fit
    renamed = [
        SeriesArrays(f"binance_{s.name.replace('/', '-')}_1h", s.timestamps, s.features, s.targets, s.close, s.columns)
        for s in series
    ]
    for s in renamed:
        s.mark_windows(FC.lookback, HOUR)
    slug_model, slug_fold = _fit(renamed, per_series=True)
    bundle = _bundle(renamed, slug_model, slug_fold)
    out = bundle.predict(market["LOUD/USDT"].tail(bundle.spec.min_candles), symbol="LOUD/USDT")
    assert len(out) == FC.horizon


def test_predict_many_batches_a_pooled_model_too(market):
    series = _arrays(market)
    model, fold = _fit(series, per_series=False)
    bundle = _bundle(series, model, fold)
    assert bundle.series_names is None
    tail = bundle.spec.min_candles
    frame = pd.concat([c.tail(tail).assign(symbol=s) for s, c in market.items()], ignore_index=True)
    many = bundle.predict_many(frame)
    for symbol, candles in market.items():
        alone = bundle.predict(candles.tail(tail))
        mine = many[many["symbol"] == symbol].drop(columns="symbol").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone, check_exact=False, rtol=1e-5)

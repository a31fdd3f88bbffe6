"""The pooled variance model: log-HAR at init, nothing read after a cutoff, one embedding index per symbol.

Two synthetic series with the realized measures HAR needs; tiny networks, one or two epochs each.
"""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.features.scaling import SeriesScalers
from candlecast.features.windows import SeriesArrays, fit_series_scalers
from candlecast.forecasting.neural import NeuralForecaster, build_model, predict_rows
from candlecast.forecasting.pooled import PooledSpec, prepare, realized_layout
from candlecast.forecasting.risk import variance_view
from candlecast.forecasting.risk_baselines import HAR
from candlecast.forecasting.splits import walk_forward
from candlecast.forecasting.targets.volatility import VOLATILITY
from candlecast.models.pooled import PooledVarianceModule
from candlecast.registry.bundle import BundleSpec, ModelBundle
from candlecast.schema import Range

HOUR = 3_600_000
START = 1_704_067_200_000
FC = FeatureConfig(lookback=12, horizon=4, vol_window=12, realized=["rv", "garman_klass"])
SYMBOLS = ["ETH/USDT", "BTC/USDT"]  # not sorted: the embedding index must not follow the order given
SPEC = PooledSpec(residual=True, horizon=FC.horizon, step_ms=HOUR)
N = 1400  # a month of warm-up for the monthly realized terms, then enough for the folds


def _views(market: dict[str, pd.DataFrame]) -> list[SeriesArrays]:
    out = []
    for symbol, candles in market.items():
        s = SeriesArrays.from_frame(symbol, series_features(candles, FC, "1h"), FC.horizon)
        s.mark_windows(FC.lookback, HOUR)
        out.append(variance_view(s))
    return out


@pytest.fixture(scope="module")
def market() -> dict[str, pd.DataFrame]:
    return {s: synthetic_candles(s, START, N, seed=5) for s in SYMBOLS}


@pytest.fixture(scope="module")
def fold(market):
    return walk_forward(START, START + (N - 1) * HOUR, HOUR, 16, 1, 120, 120, 120)[0]


def _forecaster(model: str = "lstm") -> NeuralForecaster:
    train = TrainConfig(max_epochs=2, threads=1)
    return NeuralForecaster(
        model, {"hidden_size": 8}, FC.lookback, 1, train, [0.1, 0.9], target=VOLATILITY, pooled=SPEC
    )


@pytest.mark.parametrize("architecture", ["lstm", "attention_lstm"])
def test_the_untrained_residual_model_forecasts_exactly_what_log_har_forecasts(market, fold, architecture):
    series = _views(market)
    scaler = fit_series_scalers(series, fold.train, id_input="index")
    width = series[0].features.shape[1] + 1
    loss = VOLATILITY.loss([])
    model = build_model(architecture, width, 1, {"hidden_size": 8}, [0.1, 0.9], loss, scaler, series[0].columns)
    assert isinstance(model, PooledVarianceModule)
    prepare(model, series, fold.train, scaler, SPEC)
    har = HAR(FC.horizon, HOUR)
    har.fit(series, fold)
    for s in series:
        rows = s.sample_rows(fold.test)
        ours = predict_rows(model.eval(), scaler, s.inputs_only(), rows, FC.lookback, VOLATILITY)[0][:, 0]
        ref = har.forecast(s, rows)[0][:, 0]
        assert len(rows) > 50 and np.isfinite(ref).all()
        np.testing.assert_allclose(ours, ref, rtol=1e-5)  # float32 inputs: a millionth apart


def _shifted_after(candles: pd.DataFrame, cutoff: int, k: float) -> pd.DataFrame:
    """Every candle after ``cutoff`` with its moves from the cutoff's close multiplied by ``k``."""
    out = candles.copy()
    later = out["timestamp"] > cutoff
    base = float(out.loc[~later, "close"].iloc[-1])
    for col in ("open", "high", "low", "close"):
        out.loc[later, col] = base * (out.loc[later, col] / base) ** k
    return out


def test_changing_candles_after_a_cutoff_changes_no_input_no_har_fit_and_no_forecast_before_it(market):
    cutoff = START + 1100 * HOUR
    train = Range(START, cutoff - FC.horizon * HOUR)  # the last training target ends at the cutoff
    changed = {s: _shifted_after(c, cutoff, 3.0) for s, c in market.items()}

    def fitted(m: dict[str, pd.DataFrame]) -> tuple[list[SeriesArrays], NeuralForecaster]:
        series = _views(m)
        forecaster = _forecaster()
        forecaster.refit(series, train, epochs=1)
        return series, forecaster

    (a, fa), (b, fb) = fitted(market), fitted(changed)
    for sa, sb in zip(a, b, strict=True):
        before = sa.timestamps <= cutoff
        assert np.array_equal(sa.features[before], sb.features[before], equal_nan=True)  # inputs, rm_* included
        assert not np.allclose(sa.features[~before][-10:], sb.features[~before][-10:])  # the change did land
        rows = np.flatnonzero(sa.valid_end & before)[-200:]
        assert np.array_equal(fa.forecast(sa.inputs_only(), rows)[0], fb.forecast(sb.inputs_only(), rows)[0])
    state_a, state_b = fa.result.model.state_dict(), fb.result.model.state_dict()
    for key in ("har_coef", "har_offset", "rm_mean", "rm_std", "log_mean", "log_std", "embedding.weight"):
        assert torch.equal(state_a[key], state_b[key]), key
    # the control: a change inside the training range moves the HAR fit, so the checks above could fail
    early = {s: _shifted_after(c, START + 900 * HOUR, 3.0) for s, c in market.items()}
    _, fc = fitted(early)
    assert not torch.equal(fc.result.model.state_dict()["har_coef"], state_a["har_coef"])


def test_each_symbol_keeps_its_embedding_index_from_fit_to_the_served_forecast(market, fold):
    series = _views(market)
    assert realized_layout(series[0].columns)[1] == [0, 1, 2]  # rm_rv_d, _w, _m come first
    reordered = fit_series_scalers(series[::-1], fold.train, id_input="index")
    forecaster = _forecaster()
    forecaster.fit([s.until(fold.val.end) for s in series], fold)
    scaler = forecaster.result.scaler
    assert isinstance(scaler, SeriesScalers) and scaler.names == sorted(SYMBOLS) == reordered.names
    spec = BundleSpec(
        model_name="lstm",
        hparams={"hidden_size": 8},
        features=FC.model_dump(mode="json"),
        timeframe="1h",
        scaler=asdict(scaler),
        columns=series[0].columns,
        quantiles=[0.1, 0.9],
        calibration={},
        target="variance",
        var_quantiles={"var95": -1.6, "var99": -2.3},
    )
    bundle = ModelBundle(spec, forecaster.result.model)
    served = bundle.predict_many(pd.concat([c.assign(symbol=s) for s, c in market.items()]))
    for s in series:
        last = np.array([len(s.timestamps) - 1])
        trained = forecaster.forecast(s.inputs_only(), last)[0][0, 0]
        mine = served.loc[served["symbol"] == s.name, "forecast_variance"].iloc[0]
        assert mine == pytest.approx(trained, rel=1e-6), s.name
    # the id is an input the forecast depends on: one window under the other symbol's index differs
    net = forecaster.result.model
    x = torch.zeros(1, FC.lookback, series[0].features.shape[1] + 1)
    with torch.no_grad():
        outs = []
        for k in range(len(SYMBOLS)):
            x[:, :, -1] = float(k)
            outs.append(net(x).clone())
    assert not torch.equal(outs[0], outs[1])

"""The walk-forward backtest: same windows for every model, nothing from the future, honest intervals."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.baselines import make_baseline
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.retrain import Refit
from candlecast.forecasting.splits import origins, walk_forward
from candlecast.forecasting.targets import Walk
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.forecasting.walkforward import backtest, markdown_table
from candlecast.schema import Range

HOUR = 3_600_000
START = 1_704_067_200_000
FC = FeatureConfig(lookback=12, horizon=4, vol_window=12)
WALK = Walk(step_ms=HOUR, horizon=FC.horizon, interval=0.8, stride=1)
ADAPTIVE = Walk(step_ms=HOUR, horizon=FC.horizon, interval=0.8, stride=1, adaptive_rate=0.02)


def ar1_candles(n: int, phi: float = 0.4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    eps = rng.normal(0, 0.01, n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + eps[t]
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "timestamp": START + np.arange(n, dtype=np.int64) * HOUR,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": 10.0 + np.arange(n) % 5,
        }
    )


def arrays(candles: pd.DataFrame, name: str = "s") -> SeriesArrays:
    out = SeriesArrays.from_frame(name, series_features(candles, FC, "1h"), FC.horizon)
    out.mark_windows(FC.lookback, HOUR)
    return out


def folds_of(s: SeriesArrays, n: int = 2, n_test: int = 500, n_val: int = 500, n_cal: int = 400):
    return walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 20, n, n_test, n_val, n_cal)


def baseline(name: str):
    return lambda: make_baseline(name, FC.lookback, FC.horizon, HOUR)


class Spy(Forecaster):
    """Records what the engine lets a model see."""

    name = "spy"
    seen: list = []

    def fit(self, series, fold):
        known = max(_last_known_target(s) for s in series)
        Spy.seen.append(("fit", max(int(s.timestamps[-1]) for s in series), fold, known))

    def forecast(self, series, rows):
        Spy.seen.append(("forecast", bool(np.isnan(series.targets).all()), None, None))
        return np.zeros((len(rows), FC.horizon)), None


def test_every_model_is_scored_on_the_same_windows():
    s = arrays(ar1_candles(3000))
    folds = folds_of(s)
    result = backtest(RETURNS, {n: baseline(n) for n in ("naive", "drift", "ridge")}, [s], folds, WALK)
    stamps = [result.pooled(n).timestamps for n in ("naive", "drift", "ridge")]
    assert all(np.array_equal(stamps[0], other) for other in stamps[1:])
    assert len(result.per_fold) == 3 * len(folds)
    per_model = result.per_fold.groupby("model")["windows"].sum()
    assert per_model.to_dict() == result.summary["windows"].to_dict()
    expected = sum(len(origins(s, f.test, 1, HOUR)) for f in folds)
    assert result.summary.loc["naive", "windows"] == expected
    assert result.summary.loc["naive", "rmse_ratio"] == pytest.approx(1.0)
    # AR(1) with phi 0.4: a linear model beats the random walk, and the DM test says so
    assert result.summary.loc["ridge", "rmse_ratio_first_step"] < 0.95
    assert result.summary.loc["ridge", "dm_pvalue"] < 0.01
    assert "| ridge |" in markdown_table(result.summary, RETURNS.table_columns)


def _last_known_target(s: SeriesArrays) -> int:
    """When the last target step a model was handed closes (the open of its candle), or 0 if none."""
    k = np.arange(1, s.targets.shape[1] + 1)
    closes = np.where(np.isfinite(s.targets), s.timestamps[:, None] + k * HOUR, 0)
    return int(closes.max(initial=0))


@pytest.mark.parametrize("refit", ["stale", "cutoff"])
def test_the_engine_hides_the_future_from_models(refit):
    s = arrays(ar1_candles(2500))
    folds = folds_of(s)
    Spy.seen = []
    backtest(RETURNS, {"spy": Spy}, [s], folds, replace(WALK, refit=Refit(refit)))
    fits = [x for x in Spy.seen if x[0] == "fit"]
    assert len(fits) == len(folds) * (2 if refit == "cutoff" else 1)
    for (_, last_seen, fold, _), original in zip(fits[:: len(fits) // len(folds)], folds, strict=True):
        assert fold == original and last_seen <= fold.val.end < fold.cal.start < fold.test.start
    refits = fits[1::2] if refit == "cutoff" else []
    for (_, last_seen, cut, known), fold in zip(refits, folds[: len(refits)], strict=True):
        # the refit: every row up to the test start, no target closing after it, no early-stopping block
        assert cut.train == Range(int(s.timestamps[0]), fold.test.start) and cut.val.start > cut.val.end
        assert last_seen == fold.test.start and known == fold.test.start
    assert all(hidden for kind, hidden, _, _ in Spy.seen if kind == "forecast")


def _tiny_lstm():
    return NeuralForecaster(
        "lstm", {"hidden_size": 8}, FC.lookback, FC.horizon, TrainConfig(max_epochs=1, threads=1), [0.1, 0.9]
    )


@pytest.mark.parametrize("name", ["naive", "drift", "snaive", "ridge", "lstm"])
def test_forecasts_do_not_change_when_later_rows_are_removed(name):
    """The forecaster-level look-ahead test: a window's forecast uses nothing after its last candle."""
    s = arrays(ar1_candles(2000))
    fold = folds_of(s, n=1)[0]
    model = _tiny_lstm() if name == "lstm" else baseline(name)()
    model.fit([s.until(fold.val.end)], fold)
    rows = s.sample_rows(fold.test)[[0, 57, 211]]
    full, _ = model.forecast(s.inputs_only(), rows)
    for i, row in enumerate(rows):
        cut = s.until(int(s.timestamps[row])).inputs_only()
        alone, _ = model.forecast(cut, np.array([row]))
        np.testing.assert_allclose(alone[0], full[i], rtol=1e-6, atol=1e-9)


def test_conformal_intervals_cover_their_level_on_the_test_folds():
    s = arrays(ar1_candles(6000, seed=1))
    folds = folds_of(s, n=2, n_test=1500, n_val=1000, n_cal=800)
    result = backtest(RETURNS, {"ridge": baseline("ridge")}, [s], folds, ADAPTIVE)
    assert result.summary.loc["ridge", "coverage"] == pytest.approx(0.8, abs=0.04)
    assert result.summary.loc["ridge", "coverage_static"] == pytest.approx(0.8, abs=0.05)


def test_adaptive_intervals_recover_when_volatility_turns():
    """Volatility triples after the calibration block: the static interval undercovers, the adaptive one recovers."""
    candles = ar1_candles(6000, phi=0.0, seed=2)
    r = np.diff(np.log(candles["close"].to_numpy()), prepend=np.log(100.0))
    r[4800:] *= 3.0  # the regime turns inside the test block
    candles["close"] = 100 * np.exp(np.cumsum(r))
    candles["open"] = np.concatenate([[100.0], candles["close"].to_numpy()[:-1]])
    candles["high"] = candles[["open", "close"]].max(axis=1) * 1.001
    candles["low"] = candles[["open", "close"]].min(axis=1) * 0.999
    s = arrays(candles)
    folds = folds_of(s, n=1, n_test=1500, n_val=800, n_cal=800)
    assert folds[0].test.start < s.timestamps[4800] < folds[0].test.end
    result = backtest(RETURNS, {"naive": baseline("naive")}, [s], folds, ADAPTIVE)
    row = result.summary.loc["naive"]
    assert row["coverage_static"] < 0.55
    assert row["coverage"] > row["coverage_static"] + 0.2
    f = result.pooled("naive")
    late = slice(-600, None)  # once the tracker has caught up with the new regime
    covered = (f.y[late] >= f.lower[late]) & (f.y[late] <= f.upper[late])
    assert 0.75 <= covered.mean() <= 0.85


def test_cli_prints_and_writes_the_table(tmp_path):
    from candlecast.deployments.cli import app

    path = tmp_path / "binance_TEST-USDT_1h.csv"
    ar1_candles(2500).to_csv(path, index=False)
    args = ["backtest", "--data", str(path), "--models", "naive,drift,ridge", "--horizon", "4", "--lookback", "12"]
    args += ["--folds", "2", "--test-fraction", "0.2", "--val-fraction", "0.2", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--refit-every", "100"], catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stdout
    assert "RMSE/naive" in result.stdout and "ridge" in result.stdout
    assert "refit cutoff every 100 candles" in result.stdout
    summary = pd.read_csv(tmp_path / "out" / "binance_TEST-USDT_1h_returns_summary.csv", index_col="model")
    assert list(summary.index) == ["naive", "drift", "ridge"]
    assert summary.loc["naive", "rmse_ratio"] == pytest.approx(1.0)
    per_fold = pd.read_csv(tmp_path / "out" / "binance_TEST-USDT_1h_returns_per_fold.csv")
    assert sorted(per_fold["fold"].unique()) == [0, 1]
    assert "| ridge |" in (tmp_path / "out" / "binance_TEST-USDT_1h_returns.md").read_text()


def test_piped_tables_keep_every_column_of_every_row_at_any_width(tmp_path):
    from candlecast.deployments.cli import app

    path = tmp_path / "binance_TEST-USDT_1h.csv"
    ar1_candles(2500).to_csv(path, index=False)
    args = ["backtest", "--data", str(path), "--models", "naive,drift", "--horizon", "4", "--lookback", "12"]
    args += ["--folds", "2", "--test-fraction", "0.2", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args, catch_exceptions=False, env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.stdout
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | RMSE/naive | step 1 | step H |")
    assert table[1].startswith("| naive | 1.0000 |") and table[2].startswith("| drift |")
    assert "…" not in result.stdout


def test_cli_backtests_the_volatility_target_beside_the_returns_tables_of_the_same_file(tmp_path):
    """Both targets of one file into one folder: each keeps its own tables, the volatility one reports no trading."""
    from candlecast.deployments.cli import app

    path = tmp_path / "binance_TEST-USDT_1h.csv"
    ar1_candles(3000).to_csv(path, index=False)
    common = [
        "--horizon",
        "4",
        "--lookback",
        "12",
        "--folds",
        "2",
        "--test-fraction",
        "0.2",
        "--out",
        str(tmp_path / "out"),
    ]
    returns = CliRunner().invoke(app, ["backtest", "--data", str(path), "--models", "naive", *common])
    assert returns.exit_code == 0, returns.stdout
    args = ["backtest", "--data", str(path), "--target", "volatility", "--models", "naive_vol,ewma,har", *common]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "| model | QLIKE | /HAR |" in result.stdout
    summary = pd.read_csv(tmp_path / "out" / "binance_TEST-USDT_1h_volatility_summary.csv", index_col="model")
    assert list(summary.index) == ["naive_vol", "ewma", "har"]
    kept = pd.read_csv(tmp_path / "out" / "binance_TEST-USDT_1h_returns_summary.csv", index_col="model")
    assert list(kept.index) == ["naive"] and "rmse_ratio" in kept.columns
    table = (tmp_path / "out" / "binance_TEST-USDT_1h_volatility.md").read_text() + result.stdout
    for trading in ("fee", "cost", "turnover", "sharpe", "slippage"):
        assert trading not in table.lower(), trading
    assert not any(trading in c for c in summary.columns for trading in ("fee", "cost", "turnover", "sharpe"))
    assert summary.loc["har", "qlike_ratio_har"] != summary.loc["har", "qlike_ratio_har"]  # no ratio to itself
    assert (summary["var99_windows"] > 0).all()


def test_cli_names_bad_input(tmp_path):
    from candlecast.deployments.cli import app

    result = CliRunner().invoke(app, ["backtest", "--data", str(tmp_path / "missing.csv")], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "does not exist" in result.stdout
    path = tmp_path / "x_Y-Z_1h.csv"
    ar1_candles(2500).to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["backtest", "--data", str(path), "--models", "naive,garch"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and "unknown model 'garch'" in result.stdout

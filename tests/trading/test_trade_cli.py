"""`candlecast trade backtest` and `candlecast signals` from the command line: output, files, errors, start-up."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from trading_helpers import forecast_frame, oracle, synthetic_pair
from typer.testing import CliRunner

from candlecast.deployments.cli import app

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_the_cli_starts_without_loading_nautilus_or_the_statistics():
    code = (
        "import sys; from deployments.cli import app; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('nautilus_trader', 'empyrical', 'pypfopt', 'torch')]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two candle files named like the exchange exports, and an oracle forecast file for them."""
    root = tmp_path_factory.mktemp("cli")
    pair = {s: c.iloc[:600].reset_index(drop=True) for s, c in synthetic_pair().items()}
    paths = []
    for symbol, candles in pair.items():
        path = root / f"binance_{symbol.replace('/', '-')}_1h.csv"
        candles.to_csv(path, index=False)
        paths.append(str(path))
    frame = forecast_frame(pair, oracle(pair, horizon=4), horizon=4, model="oracle").dropna()
    frame = frame[(frame["cutoff"] - frame["cutoff"].min()) % (4 * 3_600_000) == 0]
    frame.to_parquet(root / "oracle.parquet")
    return root, paths, frame


def _args(paths, *extra):
    return ["trade", "backtest", *(x for p in paths for x in ("--data", p)), *extra]


def test_trade_backtest_prints_the_table_and_writes_the_report(files, home):
    root, paths, _ = files
    out = root / "report"
    result = runner.invoke(app, _args(paths, "--forecasts", str(root / "oracle.parquet"), "--out", str(out)))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "oracle" in text and "buy_and_hold" in text and "NautilusTrader run time" in text and "MLflow run" in text
    table = pd.read_csv(out / "table.csv", index_col=0)
    assert table.index.tolist() == ["oracle", "buy_and_hold"]
    assert table.loc["oracle", "total_return"] > 0.5  # the oracle profits even after the default costs
    for name in ("summary.md", "equity.png", "drawdown.png", "positions.png", "volatility.png", "equity.parquet"):
        assert (out / name).stat().st_size > 0
    assert "| oracle |" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "kelly"], "policy.name: Input should be 'sign' or 'vol_target'"),
        (["--max-leverage", "-1"], "policy.max_leverage: Input should be greater than 0"),
        (["--execution", "vwap"], "execution.mode"),
    ],
)
def test_bad_options_exit_2_with_one_line(files, home, extra, message):
    root, paths, _ = files
    result = runner.invoke(app, _args(paths, "--forecasts", str(root / "oracle.parquet"), *extra))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_bad_forecasts_exit_2_and_write_nothing(files, home, tmp_path):
    root, paths, frame = files
    cases = {
        "other_symbol.parquet": (frame.assign(symbol=frame["symbol"].str.replace("BTC", "SOL")), "forecasts are for"),
        "other_tf.parquet": (frame.assign(timeframe="4h"), "candles but the bars are 1h"),
        "nan.parquet": (frame.assign(forecast=np.where(np.arange(len(frame)) == 3, np.nan, frame["forecast"])), "NaN"),
        "early.parquet": (frame.assign(cutoff=frame["cutoff"] - 3_600_000), "stamped one candle early"),
        "short.parquet": (frame[frame["cutoff"] < frame["cutoff"].quantile(0.5)].pipe(_drop_btc_tail), "cover"),
    }
    for name, (bad, message) in cases.items():
        bad.to_parquet(tmp_path / name)
        out = tmp_path / f"report-{name}"
        result = runner.invoke(app, _args(paths, "--forecasts", str(tmp_path / name), "--out", str(out)))
        assert result.exit_code == 2, (name, result.output)
        assert message in " ".join(result.output.split()), (name, result.output)
        assert not out.exists(), f"{name}: a refused run left a report behind"


def _drop_btc_tail(frame: pd.DataFrame) -> pd.DataFrame:
    """BTC forecasts for the first third only, ETH for the whole half: BTC does not cover the window."""
    btc = frame["symbol"] == "BTC/USDT"
    return frame[~btc | (frame["cutoff"] < frame["cutoff"].quantile(0.3))]


def test_exactly_one_forecast_source(files, home):
    _, paths, _ = files
    result = runner.invoke(app, _args(paths))
    assert result.exit_code == 2
    assert "choose one forecast source" in result.output


def test_signals_without_a_champion_says_what_to_do(home):
    result = runner.invoke(app, ["signals"])
    assert result.exit_code == 2
    assert "ingest them first" in result.output or "no @champion" in result.output


def test_sizing_from_compares_risk_models_through_the_engine(files, home):
    """Walk-forward naive_vol and ewma, then vol_target sized by each, constant and buy-and-hold, all scored."""
    root, paths, _ = files
    out = root / "sizing"
    args = ["--sizing-from", "naive_vol,ewma", "--horizon", "4", "--lookback", "24", "--folds", "2"]
    args += ["--test-fraction", "0.4", "--target-vol", "0.15", "--out", str(out), "--no-mlflow"]
    result = runner.invoke(app, _args(paths, *args))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "table.csv", index_col=0)
    assert table.index.tolist() == ["naive_vol", "ewma", "constant", "buy_and_hold"]
    np.testing.assert_allclose(table["vol_ratio"], table["annual_volatility"] / 0.15)
    assert table.loc[["naive_vol", "ewma", "constant"], "var95_breaches"].between(0, 0.5).all()
    assert np.isnan(table.loc["buy_and_hold", "var95_breaches"])  # no forecast, no VaR
    assert np.isnan(table.loc["ewma", "tracking_dm_p"]) and table["tracking_dm_p"].drop("ewma").between(0, 1).all()
    assert table.loc["naive_vol", "turnover"] != table.loc["ewma", "turnover"]  # sized differently
    assert (table.loc[["naive_vol", "ewma", "constant"], "exposure"] < table.loc["buy_and_hold", "exposure"]).all()
    assert "Kupiec p" in (out / "summary.md").read_text()


def test_risk_model_sizes_a_forecast_file_and_says_where_its_volatility_came_from(files, home):
    root, paths, _ = files
    args = ["--forecasts", str(root / "oracle.parquet"), "--policy", "vol_target", "--no-mlflow"]
    plain = runner.invoke(app, _args(paths, *args, "--out", str(root / "plain")))
    assert plain.exit_code == 0, plain.output
    assert "volatility from the forecast intervals: no @champion for candlecast-risk yet" in plain.output
    wf = ["--risk-model", "ewma", "--horizon", "4", "--lookback", "24", "--folds", "2", "--test-fraction", "0.4"]
    sized = runner.invoke(app, _args(paths, *args, *wf, "--out", str(root / "ewma")))
    assert sized.exit_code == 0, sized.output
    text = " ".join(sized.output.split())
    assert "volatility from ewma's walk-forward forecasts;" in text and "had none live and use their interval's" in text
    a, b = (pd.read_csv(root / name / "table.csv", index_col=0) for name in ("plain", "ewma"))
    assert a.loc["oracle", "turnover"] != b.loc["oracle", "turnover"]  # the risk model's volatility moved the sizing


def test_portfolio_compares_weightings_from_the_risk_model_through_the_engine(files, home):
    """Walk-forward ewma, then equal, min_variance and risk_parity weights and buy-and-hold, all scored."""
    root, paths, _ = files
    out = root / "portfolio"
    args = ["--portfolio", "min_variance,risk_parity,equal", "--risk-model", "ewma", "--corr-days", "8"]
    args += ["--horizon", "4", "--lookback", "24", "--folds", "2", "--test-fraction", "0.4", "--band", "0.01"]
    result = runner.invoke(app, _args(paths, *args, "--out", str(out), "--no-mlflow"))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "table.csv", index_col=0)
    assert table.index.tolist() == ["equal", "min_variance", "risk_parity", "buy_and_hold"]
    assert table["exposure"].between(0.9, 1.1).all()  # fully invested, long only
    assert table["var95_breaches"].between(0, 0.5).all() and table["var95_kupiec_p"].between(0, 1).all()
    assert np.isnan(table.loc["equal", "sq_return_dm_p"]) and table["sq_return_dm_p"].drop("equal").between(0, 1).all()
    assert table.loc["min_variance", "turnover"] != table.loc["equal", "turnover"]  # weighted differently
    assert table["forecast_vol_ratio"].between(0.2, 5).all()
    equity = pd.read_parquet(out / "equity.parquet")
    mv = equity[equity["strategy"] == "min_variance"]
    assert (mv["exposure_BTC/USDT"] - mv["exposure_ETH/USDT"]).abs().max() > 0.05  # not equal weights
    assert "vol / forecast" in (out / "summary.md").read_text() and (out / "volatility.png").stat().st_size > 0
    bad = runner.invoke(app, _args(paths[:1], "--portfolio", "equal", "--risk-model", "ewma", "--no-mlflow"))
    assert bad.exit_code == 2 and "two or more" in bad.output

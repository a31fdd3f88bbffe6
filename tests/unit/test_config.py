from pathlib import Path
from typing import get_args

import pytest

from candlecast.config import RunConfig
from candlecast.schema import SeriesKey, timeframe_ms

REPO = Path(__file__).resolve().parents[2]


def test_defaults_work_offline():
    cfg = RunConfig()
    assert cfg.exchange.emulator is True
    assert [str(s) for s in cfg.series] == ["binance:BTC/USDT:1h", "binance:ETH/USDT:1h"]


def test_demo_yaml_loads():
    cfg = RunConfig.from_yaml(REPO / "configs" / "demo.yaml")
    assert cfg.name == "candlecast-demo"
    assert cfg.sweep.n_trials >= 2


def test_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sweep:\n  n_trails: 3\n")  # typo
    with pytest.raises(ValueError, match="n_trails"):
        RunConfig.from_yaml(path)


def test_config_is_frozen():
    cfg = RunConfig()
    with pytest.raises(Exception, match="frozen"):
        cfg.name = "x"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {"timeframe": "7x"}}, "unknown timeframe"),
        ({"data": {"symbols": ["BTCUSDT"]}}, "unified ccxt symbols"),
        ({"sweep": {"model": "transformer"}}, "lstm_family"),
        ({"backtest": {"baselines": ["naive", "arma"]}}, "prophet"),
        ({"split": {"test_fraction": 0.9}}, "test_fraction"),
        ({"predict": {"store_url": "postgresql://app:s3cret@db/forecasts"}}, "CANDLECAST_PREDICTION_STORE_URL"),
        ({"predict": {"store_url": "postgresql://app@db/f?password=s3cret"}}, "PGPASSWORD"),
    ],
)
def test_bad_values_name_the_problem(raw, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.model_validate(raw)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        RunConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        RunConfig.from_yaml(bad)


def test_series_key_parse_and_slug():
    key = SeriesKey.parse("binance:BTC/USDT:1h")
    assert key.slug == "binance_BTC-USDT_1h"
    assert str(key) == "binance:BTC/USDT:1h"
    with pytest.raises(ValueError, match="EXCHANGE:SYMBOL:TIMEFRAME"):
        SeriesKey.parse("binance:BTC/USDT")
    assert timeframe_ms("4h") == 4 * 3_600_000


def test_config_names_match_the_registries():
    """The names config accepts are exactly the models and baselines that exist."""
    from candlecast.config import BaselineName, ModelName
    from candlecast.forecasting.baselines import BASELINES
    from candlecast.models import MODEL_CHOICES

    assert set(get_args(ModelName)) == set(MODEL_CHOICES)
    assert set(get_args(BaselineName)) == set(BASELINES)


def test_trading_costs_left_the_forecast_backtest_with_a_pointer(tmp_path):
    """An old config's backtest.fee_bps fails naming its new home, not as a bare unknown key."""
    path = tmp_path / "old.yaml"
    path.write_text("backtest:\n  stride: 2\n  fee_bps: 10\n  allow_short: false\n")
    with pytest.raises(ValueError, match=r"backtest\.allow_short -> policy\.allow_short.*candlecast trade backtest"):
        RunConfig.from_yaml(path)


def test_the_demos_volatility_part_reads_the_demos_market():
    demo, risk = (RunConfig.from_yaml(REPO / "configs" / name) for name in ("demo.yaml", "demo_risk.yaml"))
    assert risk.exchange == demo.exchange and risk.data == demo.data  # one state folder, the same candles
    assert risk.target == "volatility" and risk.multi_series.pooled_volatility == "residual"
    assert demo.exchange.synthetic_vol_regime > 0

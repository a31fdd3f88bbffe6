"""A user's mistakes in `candlecast run` end in at most three lines, name the thing at fault, change no data.

Before the fix an unknown exchange id was retried 2 x 10 s and then printed ~590 lines with four
tracebacks, "too few candles" ~540 lines after candles were fetched and stored, an unreachable
--api-url a 389-line traceback. Now the config is checked before anything starts (exit 2), and an
error met inside the flows is one line plus where the log with the traceback is (exit 1).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from cli_helpers import run_cli  # tests/cli/ is on sys.path (pytest's rootdir import mode)

from candlecast.data.candle_store import CandleStore
from candlecast.data.provenance import exchange_source
from candlecast.deployments.stack import free_port
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey

TINY = {
    "name": "mistakes",
    "data": {"symbols": ["BTC/USDT"], "history_days": 60},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": 1, "max_epochs": 1},
    "train": {"max_epochs": 1},
}
STORED = SeriesKey("binance", "ETH/USDT", "1h")


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A state folder holding one stored series (not the configs' series), through the real store."""
    root = tmp_path / "state"
    CandleStore(root / "candles").upsert(STORED, synthetic_candles(STORED.symbol, 1_699_999_200_000, 200))
    return root


def _config(tmp_path: Path, **changes: dict) -> Path:
    path = tmp_path / "run.yaml"
    sections = {key for key in {*TINY, *changes} if key != "name"}
    doc = {key: TINY.get(key, {}) | changes.get(key, {}) for key in sections} | {"name": TINY["name"]}
    path.write_text(yaml.safe_dump(doc))
    return path


def _short_and_clean(result, *names: str) -> str:
    """At most three lines besides the progress lines (a clock time, or the run's first line), no traceback."""
    text = (result.stdout + result.stderr).strip()
    lines = [line for line in text.splitlines() if not re.match(r"\d\d:\d\d:\d\d  |candlecast run '", line)]
    assert len(lines) <= 3, text
    assert "Traceback" not in text
    for name in names:
        assert name in text, (name, text)
    return text


def test_an_unknown_exchange_id_is_named_with_close_matches(home, tmp_path):
    before = _snapshot(home)
    config = _config(tmp_path, exchange={"id": "binanse", "emulator": False})
    result = run_cli(home, "run", "--config", str(config), timeout_s=120)
    assert result.returncode == 2
    _short_and_clean(result, "binanse", "binance", "exchange.id")
    assert _snapshot(home) == before


def test_too_few_candles_for_the_folds_says_which_setting_before_fetching(home, tmp_path):
    before = _snapshot(home)
    config = _config(tmp_path, data={"history_days": 5})
    result = run_cli(home, "run", "--config", str(config), timeout_s=120)
    assert result.returncode == 2
    _short_and_clean(result, "too few", "data.history_days")
    assert _snapshot(home) == before, "nothing fetched, nothing stored"


def test_an_unreachable_api_url_is_named(home, tmp_path):
    before = _snapshot(home)
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(home, "run", "--config", str(_config(tmp_path)), "--api-url", url, timeout_s=120)
    assert result.returncode == 2
    _short_and_clean(result, url, "--api-url")
    assert _snapshot(home) == before


def test_a_symbol_the_emulator_does_not_list_is_refused_before_anything_starts(home, tmp_path):
    before = _snapshot(home)
    result = run_cli(home, "run", "--config", str(_config(tmp_path, data={"symbols": ["DOGE/XYZ"]})), timeout_s=120)
    assert result.returncode == 2
    _short_and_clean(result, "DOGE/XYZ", "BTC/USDT, ETH/USDT")
    assert _snapshot(home) == before, "no series, no study, no run"


def test_a_series_stored_from_another_source_is_refused_before_anything_starts(home, tmp_path):
    """ETH/USDT was fetched from the real binance; the config's emulator would mix its synthetic candles in."""
    CandleStore(home / "candles").upsert(STORED, synthetic_candles(STORED.symbol, 1_699_999_200_000, 10),
                                         exchange_source("binance", None))  # fmt: skip
    before = _snapshot(home)
    result = run_cli(home, "run", "--config", str(_config(tmp_path, data={"symbols": ["ETH/USDT"]})), timeout_s=120)
    assert result.returncode == 2
    _short_and_clean(result, str(STORED), "exchange binance at its default endpoint", "the emulator's synthetic market")
    assert _snapshot(home) == before


def test_a_symbol_the_exchange_does_not_list_is_refused_from_its_market_list(home, tmp_path, still_market):
    market = still_market(["BTC/USDT"], 60)
    config = _config(tmp_path, data={"symbols": ["DOGE/USDT"]}, exchange={"emulator": False, "api_url": market.url})
    before = _snapshot(home)
    result = run_cli(home, "run", "--config", str(config), timeout_s=120)
    assert result.returncode == 2
    _short_and_clean(result, "binance has no market 'DOGE/USDT'", "it lists 1: BTC/USDT")
    assert _snapshot(home) == before and market.request_count["/api/v3/klines"] == 0


@pytest.mark.slow
def test_an_error_inside_the_flows_is_three_lines_and_a_log_with_the_traceback(home, tmp_path, still_market):
    """The exchange refuses every candle request (401) after the checks passed: the ingest flow fails."""
    market = still_market(["BTC/USDT"], 60)
    market.fail_next(1000, 401)
    config = _config(tmp_path, exchange={"emulator": False, "api_url": market.url})
    before = _snapshot(home / "candles")
    result = run_cli(home, "run", "--config", str(config), timeout_s=600)
    assert result.returncode == 1
    text = _short_and_clean(result, "BTC/USDT", "AuthenticationError", "full log and traceback:")
    assert text.splitlines()[-1].startswith("full log and traceback:")
    log = Path(text.split("full log and traceback:")[1].split("(or run")[0].strip())
    assert log.parent == home / "logs" and "Traceback" in log.read_text()
    assert _snapshot(home / "candles") == before


def test_a_corrupt_stored_file_stops_run_with_exit_3_and_its_repair_before_anything_starts(home, tmp_path):
    """The README's exit code 3: named with `candlecast store repair`, checked before the Prefect server or a fetch."""
    series = SeriesKey("binance", "BTC/USDT", "1h")
    store = CandleStore(home / "candles")
    store.upsert(series, synthetic_candles(series.symbol, 1_699_999_200_000, 200))
    path = store.files(series)[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = _snapshot(home)
    result = run_cli(home, "run", "--config", str(_config(tmp_path)), timeout_s=120)
    assert result.returncode == 3, result.stdout + result.stderr
    text = _short_and_clean(result, str(path), f"candlecast store repair {series}")
    assert text.startswith("corrupt store:")
    assert _snapshot(home) == before, "no Prefect database, no log, no candle written"

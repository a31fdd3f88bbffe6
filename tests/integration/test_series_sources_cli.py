"""A series never mixes two sources: `ingest` and `import` through the CLI, real ccxt against the local emulator.

The issue's case: a demo-like state (the emulator's strong-signal market, pinned clock), then an ingest
of the default synthetic market into it. Before, it appended the other market's candles to the demo's
series; now it is refused in one line before anything is written, and only --allow-source-change adds
them, on purpose and recorded. Unknown exchange ids and symbols end the same way, creating nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.devtools.emulator import ExchangeEmulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey

HOUR, DAY = 3_600_000, 86_400_000
NOW = int(time.time() * 1000) // HOUR * HOUR
BTC = SeriesKey("binance", "BTC/USDT", "1h")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes ({} for a folder never created)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def _one_line(result) -> str:
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    return text


@pytest.fixture
def configs(tmp_path: Path) -> dict[str, Path]:
    """A demo-like market (strong signal, clock pinned two days ago) and the default market, 5 days of BTC each."""
    demo = {
        "name": "demo-like",
        "exchange": {"emulator": True, "synthetic_start": _iso(NOW - 8 * DAY), "synthetic_end": _iso(NOW - 2 * DAY),
                     "synthetic_ar_phi": 0.5, "synthetic_hour_mean": 1.0},
        "data": {"symbols": ["BTC/USDT"], "history_days": 5},
    }  # fmt: skip
    default = {"name": "default-market", "data": {"symbols": ["BTC/USDT"], "history_days": 5}}
    paths = {}
    for name, doc in (("demo", demo), ("default", default)):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(doc))
    return paths


def test_another_market_into_the_demo_state_is_refused_until_allowed(home: Path, configs, tmp_path: Path) -> None:
    first = _cli("ingest", "--config", str(configs["demo"]))
    assert first.exit_code == 0, first.output
    before = _snapshot(home)

    refused = _cli("ingest", "--config", str(configs["default"]))
    assert refused.exit_code == 2
    line = _one_line(refused)
    assert "ar_phi 0.5, hour_mean 1.0" in line and "ar_phi 0.15, hour_mean 0.15" in line, "both sources named"
    assert "--allow-source-change" in line
    assert _snapshot(home) == before, "the state folder is byte for byte unchanged"

    plain = _cli("ingest", "--json")  # the command as written: the state's recorded (demo-like) config
    assert plain.exit_code == 0, plain.output
    [recorded] = CandleStore(home / "candles").sources(BTC)
    assert "ar_phi 0.5, hour_mean 1.0" in recorded["label"], "no candle of another market"

    again = _cli("ingest", "--config", str(configs["demo"]), "--json")
    assert again.exit_code == 0, again.output  # the same source: no false refusal
    assert json.loads(again.stdout)[0]["error"] is None

    allowed = _cli("ingest", "--config", str(configs["default"]), "--allow-source-change", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)[0]["stored"] >= 24, "the default market's candles since the demo's clock"
    status = json.loads(_cli("status", "--config", str(configs["default"]), "--json").stdout)
    [series] = status["series"]
    assert "ar_phi 0.15" in series["source"] and [s["kind"] for s in series["sources"]] == ["emulator", "emulator"]

    # an import is a source too: the exported series, imported back, is refused until allowed
    exported = tmp_path / "binance_BTC-USDT_1h.csv"
    assert _cli("export", str(exported), "-e", "binance", "-s", "BTC/USDT", "-t", "1h").exit_code == 0
    before = _snapshot(home)
    imported = _cli("import", str(exported), "-e", "binance", "-s", "BTC/USDT", "-t", "1h")
    assert imported.exit_code == 2
    assert f"not from imported files (last {exported.name}, csv)" in _one_line(imported) and _snapshot(home) == before
    forced = _cli("import", str(exported), "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--allow-source-change")
    assert forced.exit_code == 0, forced.output
    assert "(0 new)" in forced.output
    table = _cli("status", "--config", str(configs["default"])).stdout
    assert f"imported files (last {exported.name}, csv) |" in table, "the status table shows the current source"


def test_an_unknown_exchange_id_is_refused_with_the_likely_one(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    synthetic_candles("BTC/USDT", NOW - 10 * HOUR, 5).to_csv(path, index=False)
    result = _cli("import", str(path), "-e", "binanse", "-s", "BTC/USDT", "-t", "1h")
    assert result.exit_code == 2
    assert "'binanse'" in _one_line(result) and "did you mean 'binance'" in result.output
    assert _snapshot(home) == {}, "no series, no file"


def test_a_symbol_the_emulator_does_not_list_is_refused_listing_some_it_has(home: Path, configs) -> None:
    result = _cli("ingest", "--config", str(configs["default"]), "--symbols", "DOGE/XYZ")
    assert result.exit_code == 2
    line = _one_line(result)
    assert "'DOGE/XYZ'" in line and "BTC/USDT, ETH/USDT" in line
    assert _snapshot(home) == {}


def test_a_symbol_an_exchange_does_not_list_is_refused_before_any_candle_request(home: Path) -> None:
    candles = {("BTC/USDT", "1h"): synthetic_candles("BTC/USDT", NOW - 48 * HOUR, 48)}
    with ExchangeEmulator(candles) as exchange:
        result = _cli("ingest", "-e", "binance", "--api-url", exchange.url, "--symbols", "BTC/USDT,DOGE/XYZ")
        requests = exchange.request_count
    assert result.exit_code == 2
    assert "binance has no market 'DOGE/XYZ'; it lists 1: BTC/USDT" in _one_line(result)
    assert requests["/api/v3/klines"] == 0 and _snapshot(home) == {}, "nothing requested, nothing created"

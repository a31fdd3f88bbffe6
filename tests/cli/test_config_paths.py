"""A state made with a config keeps meaning that config, from any working directory.

Before: the demo config's relative paths resolved against the working directory, so `candlecast` run
from another folder (or a worker's temp folder) missed files that existed; and a command without
--config on a state made with one used the built-in defaults' market, mixing it into the series.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml
from cli_helpers import candlecast_argv, cli_env, run_cli  # tests/cli/ is on sys.path (rootdir import mode)

from candlecast.data.candle_store import CandleStore
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey

#: A pinned emulator market of one symbol (not the defaults' two), its sentiment written via a relative path.
CONFIG = {
    "name": "paths",
    "exchange": {
        "emulator": True,
        "synthetic_start": "2024-01-01T00:00:00Z",
        "synthetic_end": "2024-01-11T00:00:00Z",
        "synthetic_sentiment_path": "exo/fear_greed.csv",
    },
    "data": {"symbols": ["SOL/USDT"], "history_days": 5},
    "features": {"exogenous": [{"path": "exo/fear_greed.csv"}]},
}


def _run_in(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    """`candlecast ARGS` with ``cwd`` as its working directory."""
    return subprocess.run(
        [*candlecast_argv(), *args], cwd=cwd, env=cli_env(home), capture_output=True, text=True, timeout=300
    )


def test_a_state_made_with_a_relative_path_config_works_from_another_folder(tmp_path):
    project, elsewhere, home = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "state"
    (project / "configs").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "configs" / "paths.yaml").write_text(yaml.safe_dump(CONFIG))

    first = _run_in(project, home, "ingest", "--config", "configs/paths.yaml")
    assert first.returncode == 0, first.stdout + first.stderr
    sentiment = project / "configs" / "exo" / "fear_greed.csv"
    assert sentiment.is_file(), "relative to the config file's folder, not to the working directory"
    assert not (project / "exo").exists()
    recorded = yaml.safe_load((home / "config.yaml").read_text())
    assert recorded["features"]["exogenous"][0]["path"] == str(sentiment)
    assert recorded["data"]["symbols"] == ["SOL/USDT"]

    # no --config, another folder: the state's config, so its paths and its market, never the defaults'
    again = _run_in(elsewhere, home, "ingest", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert [r["series"] for r in yaml.safe_load(again.stdout)] == ["binance:SOL/USDT:1h"]
    assert CandleStore(home / "candles").list_series() == [SeriesKey("binance", "SOL/USDT", "1h")]
    assert not list(elsewhere.iterdir()), "nothing written in the working directory"
    scored = _run_in(elsewhere, home, "score")
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert "no forecast is stored yet" in scored.stdout


def test_a_state_with_candles_and_no_recorded_config_is_refused_in_one_line(tmp_path):
    home = tmp_path / "state"
    key = SeriesKey("binance", "SOL/USDT", "1h")
    CandleStore(home / "candles").upsert(key, synthetic_candles(key.symbol, 1_704_067_200_000, 48))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.rglob("*") if p.is_file()}
    for command in ("ingest", "predict"):
        result = run_cli(home, command, timeout_s=120)
        assert result.returncode == 2, result.stdout + result.stderr
        text = (result.stdout + result.stderr).strip()
        assert len(text.splitlines()) == 1 and "--config" in text and str(home) in text, text
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.rglob("*") if p.is_file()} == before

"""SIGKILL a real `candlecast ingest` process mid-write: the store stays readable and the next run completes it.

Run on the real Binance files of ../shared/data up to 2023 (skipped without them) and on a seeded synthetic market
spanning 2021-2023 (always runs), so the kill test never depends on the shared folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from candlecast.data.candle_store import CandleStore
from candlecast.data.ingest import ingest
from candlecast.devtools.emulator import ExchangeEmulator, load_candle_file
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.expectations.runner import validate_candles
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
KEYS = [SeriesKey("binance", s, "1h") for s in SYMBOLS]
ROOT = Path(__file__).resolve().parents[2]

# The child is the real CLI; only os.replace is wrapped so that, when it is about to rename the file named
# TARGET into place, it says so and stalls: the parent then kills it at exactly that point.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    target, marker, url = sys.argv[1:4]
    real_replace = os.replace

    def stalling_replace(src, dst):
        if os.path.basename(str(dst)) == target and "BTC-USDT" in str(dst):
            open(marker, "w").close()
            time.sleep(120)
        return real_replace(src, dst)

    os.replace = stalling_replace
    from candlecast.deployments.cli import app
    app(["ingest", "-e", "binance", "--symbols", "BTC/USDT,ETH/USDT", "-t", "1h", "--since", "2020-01-01",
         "--api-url", url, "--no-rate-limit", "--concurrency", "1"])
    """
)


SYNTH_START = 1_633_046_400_000  # 2021-10-01: 11,200 hours reach into 2023, so three year files
SYNTH_HOURS = 11_200
REAL_END = 1_675_209_600_000  # 2023-02-01: the real files' first candles up to here also make three year files


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.real_data)])
def emu(request: pytest.FixtureRequest) -> Iterator[ExchangeEmulator]:
    if request.param == "synthetic":
        frames = {(s, "1h"): synthetic_candles(s, SYNTH_START, SYNTH_HOURS, seed=21) for s in SYMBOLS}
        emulator = ExchangeEmulator(frames)
    else:
        shared_data = request.getfixturevalue("shared_data")
        frames = {}
        for s in SYMBOLS:
            _, _, frame = load_candle_file(shared_data / "binance" / f"binance_{s.replace('/', '-')}_1h.csv.gz")
            frames[(s, "1h")] = frame[frame["timestamp"] < REAL_END].reset_index(drop=True)
        emulator = ExchangeEmulator(frames)
    with emulator:
        emulator.now_ms = int(emulator.frame("BTC/USDT", "1h")["timestamp"].iloc[-1]) + 3_600_000
        yield emulator


def _gate(frame: pd.DataFrame, series: SeriesKey):
    return validate_candles(frame, series.timeframe, str(series))


@pytest.mark.parametrize(
    "target",
    [
        "2022.parquet",  # the years before 2022 are in place, 2022's temporary file is complete but not renamed
        "_manifest.json",  # every data file is in place, the manifest is not
    ],
)
def test_sigkill_mid_write_leaves_a_readable_store_and_the_next_run_completes_it(
    home: Path, emu: ExchangeEmulator, tmp_path: Path, target: str
) -> None:
    marker = tmp_path / "stalled"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, target, str(marker), emu.url], cwd=ROOT, env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the ingest process ended before reaching the write"
            assert time.monotonic() < deadline, "the ingest process never reached the write"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()

    store = CandleStore(Settings().candles_dir)
    btc = store.series_dir(KEYS[0])
    assert list(btc.glob(".*.tmp")), "the kill should have left the writer's temporary file behind"
    # readable by candlecast, pandas and DuckDB; what is there is true and whole, a prefix of the source
    source = emu.frame("BTC/USDT", "1h")
    partial = store.read(KEYS[0])
    assert 0 < len(partial) <= len(source) and partial["timestamp"].is_unique
    pd.testing.assert_frame_equal(partial, source.iloc[: len(partial)])
    assert len(pd.read_parquet(store.root)) == len(partial)
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{btc}/*.parquet')").fetchall() == [(len(partial),)]

    # the next run completes it: nothing lost, nothing duplicated, no debris (in-process, to spare a second
    # start-up of the CLI; it is the same function the CLI calls)
    reports = ingest(Settings(), "binance", KEYS, 0, _gate, api_url=emu.url, rate_limit=False)
    assert all(r.error is None for r in reports)
    for key in KEYS:
        pd.testing.assert_frame_equal(store.read(key), emu.frame(key.symbol, "1h"))
        assert store.manifest(key)["rows"] == len(emu.frame(key.symbol, "1h"))
    assert not list(store.root.rglob("*.tmp"))

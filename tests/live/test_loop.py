"""`candlecast live` against the real ccxt client and the emulator's accelerated clock, killed and restarted.

One-minute candles at 60x: a candle closes every real second. The loop is SIGKILLed mid-run and started
again; the store must then hold every closed candle once, and the announcements (``candles.stored``)
must cover every candle closed since the loop first followed the series, with no candle left out and
none announced in two different ranges (a re-sent identical range is a replay the consumers skip).
The paper accounts (``live.paper``) must then hold every announced candle once as a bar, resumed from
their ledgers, with buy-and-hold from the same bars (no champion here: the bars trade no forecast).

In process, with the clock moved by hand: the series that close together are gated as one batch,
where a bad candle of one series is refused by the per-series contract and the others are stored and
announced in the same close (the forecasts of such a batch: tests/trading/test_champion_flows.py).

By websocket (``live.transport: websocket``, the emulator's kline stream): each close's candles come from
the stream with no REST candle request, and a stream dropped while candles close is caught up over REST,
each candle stored and announced once, equal to REST's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.process
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.data.quarantine import list_entries
from candlecast.data.validations import LAST_REFUSED, read_validation
from candlecast.devtools.emulator import KLINES_PATH, ExchangeEmulator, synthetic_emulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.expectations.gate import candle_gate
from candlecast.expectations.project import asset_name, gx_dir
from candlecast.live.clock import newest_closed
from candlecast.live.loop import CANDLES_STORED, LiveLoop
from candlecast.live.paper import paper_dir, paper_summary, read_ledger
from candlecast.live.state import read_journal
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from candlecast.tasks.events import journal_only

pytestmark = pytest.mark.slow

MINUTE = 60_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def _live(cfg: Path, url: str, until: int | None) -> None:
    """The command in a forked child, which leaves through os._exit with the command's outcome.

    The parent may hold Prefect's test-server threads (an earlier test of this pytest worker started
    them): a fork inherits their bookkeeping but not the threads, and the child's normal shutdown then
    fails with exit code 1 after the command succeeded. A child's traceback goes to a file next to the
    config, since its sys.stderr is pytest's in-memory capture.
    """
    from candlecast.deployments.commands.live import live

    code = 1
    try:
        live(cfg, url, None, until)
        code = 0
    except BaseException:
        (cfg.parent / f"live-{os.getpid()}.err").write_text(traceback.format_exc())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _start(cfg: Path, url: str, until: int | None = None) -> multiprocessing.process.BaseProcess:
    """`candlecast live` in a forked process: it inherits this one's imports (GX, MLflow, ccxt), not their 20 s."""
    process = multiprocessing.get_context("fork").Process(target=_live, args=(cfg, url, until))
    process.start()
    return process


def _errors(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("live-*.err")))


def test_sigkill_and_restart_lose_and_double_no_candle(home, tmp_path):
    now = (1_704_067_200_000 + 3 * 86_400_000) // MINUTE * MINUTE + 30_000
    start = now // MINUTE * MINUTE - 2 * 86_400_000
    cfg = tmp_path / "live.yaml"
    config = {
        "name": "live", "exchange": {"emulator": False},
        "data": {"symbols": SYMBOLS, "timeframe": "1m", "history_days": 1},
        "live": {"settle_ms": 200, "max_poll_s": 0.5, "paper": True},
    }  # fmt: skip
    cfg.write_text(yaml.safe_dump(config))
    import candlecast.expectations.gate  # noqa: F401  (imported once here, inherited by the forked loops)
    import candlecast.registry.tracking  # noqa: F401

    with synthetic_emulator(SYMBOLS, "1m", start_ms=start, n=4 * 1440, now_ms=now, speed=60) as emu:
        first = _start(cfg, emu.url)
        settings = Settings()
        deadline = time.time() + 120
        while not any(e["event"] == CANDLES_STORED for e in read_journal(settings)) and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(1)
        os.kill(first.pid, signal.SIGKILL)
        first.join()
        until = emu.now_ms // MINUTE * MINUTE + 3 * MINUTE  # candles close while the loop is down, and after
        second = _start(cfg, emu.url, until)
        second.join(timeout=180)
        assert second.exitcode == 0, _errors(tmp_path)
    store = CandleStore(settings.candles_dir)
    events = [e for e in read_journal(settings) if e["event"] == CANDLES_STORED]
    for symbol in SYMBOLS:
        candles = store.read(SeriesKey("binance", symbol, "1m"))
        ts = candles["timestamp"].tolist()
        assert len(ts) == len(set(ts)) and ts == list(range(ts[0], ts[-1] + MINUTE, MINUTE))
        assert ts[-1] >= until
        ranges = sorted(
            {(e["payload"]["first"], e["payload"]["cutoff"]) for e in events if e["payload"]["symbol"] == symbol}
        )
        covered = [t for lo, hi in ranges for t in range(lo, hi + MINUTE, MINUTE)]
        assert len(covered) == len(set(covered)), f"{symbol}: a candle announced in two ranges {ranges}"
        assert covered == list(range(covered[0], ts[-1] + MINUTE, MINUTE)), f"{symbol}: a candle skipped {ranges}"
        ledger = read_ledger(paper_dir(settings) / SeriesKey("binance", symbol, "1m").slug)
        bars = [r["t"] for r in ledger]
        assert bars == covered, f"{symbol}: the paper bars are not the announced candles, each once"
        closes = candles.set_index("timestamp")["close"]
        paper = next(r for r in paper_summary(settings)["series"] if r["series"] == f"binance:{symbol}:1m")
        (bought,) = ledger[1]["hold_fills"]  # buy-and-hold: bought at the first close, filled at the next open
        assert bought["fee"] > 0 and paper["buy_and_hold_fees"] == bought["fee"]
        assert paper["buy_and_hold"] == pytest.approx(
            bought["qty"] * (closes[bars[-1]] - bought["price"]) - bought["fee"]
        )
        assert paper["fills"] == 0 and paper["pnl"] == 0.0


def test_a_close_is_gated_as_one_batch_and_a_bad_series_holds_back_only_itself(home):
    symbols = [*SYMBOLS, "SOL/USDT"]
    now = (1_704_067_200_000 + 2 * 86_400_000) // MINUTE * MINUTE + 30_000
    start, bad = now // MINUTE * MINUTE - 86_400_000, now // MINUTE * MINUTE  # bad: forming now, closed next
    frames = {(s, "1m"): synthetic_candles(s, start, 1500, timeframe="1m", seed=0) for s in symbols}
    eth = frames[("ETH/USDT", "1m")]
    eth.loc[eth["timestamp"] == bad, "high"] = eth.loc[eth["timestamp"] == bad, "low"] * 0.5  # high under low
    settings = Settings()
    cfg = RunConfig.model_validate(
        {
            "name": "live",
            "exchange": {"emulator": False},
            "data": {"symbols": symbols, "timeframe": "1m", "history_days": 1},
        }
    )
    with ExchangeEmulator(frames, now_ms=now) as emu:  # speed 0: the clock moves when the test moves it
        cfg = cfg.model_copy(update={"exchange": cfg.exchange.model_copy(update={"api_url": emu.url})})
        loop = LiveLoop(
            settings, cfg, lambda t: candle_gate(settings, t), journal_only, api_url=emu.url, predict_here=True
        )
        asyncio.run(loop.run(until_ms=newest_closed(now, MINUTE, cfg.live.settle_ms)))  # the history, not announced
        screened = {s: read_validation(settings, SeriesKey("binance", s, "1m"))["suite"] for s in symbols}
        assert set(screened.values()) == {"candle_contract_1m_live_screen"}  # the three histories in one GX run
        emu.advance(MINUTE)
        asyncio.run(loop.run(until_ms=bad))
    store = CandleStore(settings.candles_dir)
    last = {s: store.last_timestamp(SeriesKey("binance", s, "1m")) for s in symbols}
    assert last == {"BTC/USDT": bad, "ETH/USDT": bad - MINUTE, "SOL/USDT": bad}
    announced = [(e["payload"]["symbol"], e["payload"]["first"], e["payload"]["cutoff"]) for e in read_journal(settings)
                 if e["event"] == CANDLES_STORED]  # fmt: skip
    assert sorted(announced) == [("BTC/USDT", bad, bad), ("SOL/USDT", bad, bad)]
    (entry,) = list_entries(settings)
    assert entry.series.symbol == "ETH/USDT" and entry.report["suite"] == "candle_contract_1m_live"
    assert {f["expectation"] for f in entry.report["failures"]} == {"expect_column_pair_values_a_to_be_greater_than_b"}
    for symbol in ("BTC/USDT", "SOL/USDT"):  # the screen named ETH's candle: the others passed in it, ETH alone
        key = SeriesKey("binance", symbol, "1m")
        assert read_validation(settings, key)["suite"] == "candle_contract_1m_live_screen"
        results = (gx_dir(settings.root) / "uncommitted" / "validations").rglob(f"{asset_name(str(key))}/**/*.json")
        assert len(list(results)) == 2  # a GX result (with its Data Docs page) of each close, written after it
        assert _page(read_validation(settings, key)["data_docs"], key)  # ... and linked from the record then
    refused = read_validation(settings, SeriesKey("binance", "ETH/USDT", "1m"))[LAST_REFUSED]
    assert _page(refused["data_docs"], SeriesKey("binance", "ETH/USDT", "1m"))


def _page(url: str, series: SeriesKey) -> bool:
    """True when ``url`` is a written Data Docs result page of ``series``."""
    page = Path(unquote(urlparse(url).path))
    return page.is_file() and asset_name(str(series)) in page.parts


def test_websocket_closes_are_stored_and_announced_once_and_a_dropped_stream_is_caught_up(home):
    now = (1_704_067_200_000 + 2 * 86_400_000) // MINUTE * MINUTE + 30_000
    start = now // MINUTE * MINUTE - 86_400_000
    settings = Settings()
    cfg = RunConfig.model_validate({
        "name": "live", "exchange": {"emulator": False},
        "data": {"symbols": SYMBOLS, "timeframe": "1m", "history_days": 1},
        "live": {"transport": "websocket", "settle_ms": 200, "max_poll_s": 2},
    })  # fmt: skip
    store = CandleStore(settings.candles_dir)
    keys = [SeriesKey("binance", s, "1m") for s in SYMBOLS]

    async def subscribed(emu, n: int) -> None:  # the loop's stream subscribed and pushed to: the clock may move
        while emu.stream_subscriptions < n:
            await asyncio.sleep(0.02)

    with synthetic_emulator(SYMBOLS, "1m", start_ms=start, n=1500, now_ms=now) as emu:
        gate = lambda t: candle_gate(None, t)  # noqa: E731 (the contract's GX run, without result pages)
        loop = LiveLoop(settings, cfg, gate, journal_only, api_url=emu.url, ws_url=emu.ws_url)
        first = newest_closed(now, MINUTE, 200)
        asyncio.run(loop.run(until_ms=first))  # the history, over REST (nothing stored to continue)

        async def closes() -> list[int]:
            run = asyncio.ensure_future(loop.run(until_ms=first + 5 * MINUTE))
            klines = []
            n = len(SYMBOLS)  # the history's run subscribed once, this one again, and again after the drop
            for advance, drop, streams in ((MINUTE, False, 2 * n), (MINUTE, False, 0), (2 * MINUTE, True, 0),
                                           (MINUTE, False, 3 * n)):  # fmt: skip
                await asyncio.wait_for(subscribed(emu, streams), 20)
                if drop:
                    assert emu.drop_streams() == 1
                before = emu.request_count[KLINES_PATH]
                due = emu.advance(advance) // MINUTE * MINUTE - MINUTE
                while not all(store.last_timestamp(k) == due for k in keys) and not run.done():
                    await asyncio.sleep(0.02)
                klines.append(emu.request_count[KLINES_PATH] - before)
            await asyncio.wait_for(run, 30)
            return klines

        klines = asyncio.run(closes())
        frames = {s: emu.frame(s, "1m").set_index("timestamp") for s in SYMBOLS}
    assert klines[:2] == [0, 0] and klines[3] == 0  # streamed closes: no REST candle request
    assert klines[2] >= len(SYMBOLS)  # the two closes while the stream was down: caught up over REST
    events = [e["payload"] for e in read_journal(settings) if e["event"] == CANDLES_STORED]
    for symbol in SYMBOLS:
        candles = store.read(SeriesKey("binance", symbol, "1m")).set_index("timestamp")
        ts = candles.index.tolist()
        assert ts == list(range(ts[0], first + 6 * MINUTE, MINUTE))  # each candle once, none skipped
        assert candles.equals(frames[symbol].loc[ts, candles.columns])  # the pushed candles are REST's
        covered = [t for e in events if e["symbol"] == symbol for t in range(e["first"], e["cutoff"] + 1, MINUTE)]
        assert sorted(covered) == list(range(first + MINUTE, first + 6 * MINUTE, MINUTE))  # announced once each

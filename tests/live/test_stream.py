"""The emulator's kline websocket against the real ccxt.pro binance client (urls pointed at 127.0.0.1).

Each candle that closes on the emulator's clock (moved by ``advance``, several candles at once included)
is pushed, in ccxt's cache (``exchange.ohlcvs``), and equals what REST ``fetch_ohlcv`` returns for it; a
dropped connection ends the watch with a ccxt error, and the next watch reconnects.
"""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from candlecast.data.exchange import make_exchange
from candlecast.devtools.emulator import synthetic_emulator
from candlecast.live.stream import make_stream_exchange

MINUTE = 60_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


async def _watch_closes(emu, closes: int) -> tuple[dict[str, dict[int, list]], dict[str, dict[int, list]]]:
    pro = make_stream_exchange("binance", emu.url, emu.ws_url)
    rest = make_exchange("binance", emu.url)
    pushed: dict[str, dict[int, list]] = {s: {} for s in SYMBOLS}
    try:
        pairs = [[s, "1m"] for s in SYMBOLS]
        for advance in [0, *([MINUTE] * (closes - 2)), 2 * MINUTE]:  # the last advance closes two candles at once
            if advance:
                emu.advance(advance)
            while any(max(pushed[s], default=0) < emu.now_ms // MINUTE * MINUTE for s in SYMBOLS):
                await asyncio.wait_for(pro.watch_ohlcv_for_symbols(pairs), 5)
                for symbol in SYMBOLS:  # ccxt's cache: a push that came while nobody awaited resolves no watch
                    pushed[symbol].update({c[0]: c for c in pro.ohlcvs.get(symbol, {}).get("1m", [])})
        since = min(min(p) for p in pushed.values())
        fetched = {s: {c[0]: c for c in await rest.fetch_ohlcv(s, "1m", since=since)} for s in SYMBOLS}
        assert emu.drop_streams() == 1  # one connection for every series of the timeframe
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(pro.watch_ohlcv_for_symbols(pairs), 5)
        emu.advance(MINUTE)
        got = await asyncio.wait_for(pro.watch_ohlcv_for_symbols(pairs), 5)  # reconnected
        assert got
    finally:
        await pro.close()
        await rest.close()
    return pushed, fetched


def test_ccxt_pro_receives_each_closed_candle_as_rest_serves_it():
    now = 1_704_067_200_000 + 86_400_000 + 30_000
    with synthetic_emulator(SYMBOLS, "1m", n=3000, now_ms=now) as emu:
        pushed, fetched = asyncio.run(_watch_closes(emu, 4))
        forming = emu.now_ms // MINUTE * MINUTE
    for symbol in SYMBOLS:
        closed = {t: c for t, c in pushed[symbol].items() if t < forming - MINUTE}
        assert sorted(closed) == list(range(now // MINUTE * MINUTE, forming - MINUTE, MINUTE))  # each close, in order
        assert closed == {t: fetched[symbol][t] for t in closed}

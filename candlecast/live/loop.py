"""`candlecast live`: follow the exchange's clock, store each series' candle as it closes, announce it.

One asyncio task per series reads the exchange's time (ccxt ``fetch_time``), sleeps until its next
candle has closed (REST polling aligned to the close: the local emulator speaks REST only; on a real
exchange ccxt.pro's ``watch_ohlcv`` could push it instead), then fetches, gates and stores it with the
existing ingest (candle contract, quarantine, atomic idempotent upsert) in a thread of its own, so a
slow series never delays the others. Then it announces what was stored since its last announcement
as one ``candlecast.candles.stored`` event (``first``..``cutoff``): after downtime, the missed candles
are one batch, and each is forecast from the candles up to it.

Restart safety: the store is the truth. The announced cutoff is recorded after the event (and after
in-process forecasts), so a kill between them re-announces the same range, and the consumers skip
what they already did (forecasts are keyed by series, cutoff and champion version).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import make_exchange
from candlecast.data.ingest import Gate, ingest
from candlecast.data.provenance import Source
from candlecast.live.clock import ClockRate, newest_closed, next_due_ms
from candlecast.live.forecast import forecast_cutoffs
from candlecast.live.monitor import Emit, Monitor
from candlecast.live.state import series_state, update_series_state
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

if TYPE_CHECKING:
    from candlecast.live.paper import PaperTrader

log = logging.getLogger(__name__)

CANDLES_STORED = "candlecast.candles.stored"
FORECAST_STORED = "candlecast.forecast.stored"


def series_resource(series: SeriesKey) -> str:
    """The resource id of a series' events: ``candlecast.series.<exchange>.<symbol>.<timeframe>``."""
    return f"candlecast.series.{series.exchange}.{series.symbol}.{series.timeframe}"


@dataclass
class LiveLoop:
    """Follow every series of ``cfg`` until ``stop`` is set (or each has handled the candle opened at ``until_ms``).

    Args:
        gate_at: The candle contract as a gate, for the exchange time it is given (its live checks).
        emit: How events leave (Prefect's ``emit_event`` from the composition root, plus the journal).
        predict_here: Forecast in this process too (no Prefect deployment listening): the same
            ``forecast_cutoffs`` the triggered predict flow runs, then ``forecast.stored``.
        monitor: Live scoring and drift after each announcement (None: off).
        paper: The paper accounts, handed each announced range on their own thread (None: off).
    """

    settings: Settings
    cfg: RunConfig
    gate_at: Callable[[int], Gate]
    emit: Emit
    api_url: str | None = None
    source: Source | None = None
    predict_here: bool = False
    monitor: Monitor | None = None
    paper: PaperTrader | None = None
    _pool: ThreadPoolExecutor = field(init=False)

    async def run(self, stop: asyncio.Event | None = None, until_ms: int | None = None) -> None:
        """Run every series' follower at once; returns when all have stopped."""
        stop = stop or asyncio.Event()
        series = self.cfg.series
        self._pool = ThreadPoolExecutor(max_workers=len(series), thread_name_prefix="live")
        exchange = make_exchange(self.cfg.exchange.id, self.api_url, self.cfg.exchange.rate_limit)
        try:
            await asyncio.gather(*(self._follow(s, exchange, stop, until_ms) for s in series))
        finally:
            await exchange.close()
            self._pool.shutdown(wait=True)
            if self.paper is not None:
                self.paper.close()

    async def _follow(self, series: SeriesKey, exchange: object, stop: asyncio.Event, until_ms: int | None) -> None:
        step, settle = timeframe_ms(series.timeframe), self.cfg.live.settle_ms
        rate = ClockRate()
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            now = int(await exchange.fetch_time())  # type: ignore[attr-defined]
            rate.observe(now, time.monotonic())
            due = newest_closed(now, step, settle)
            announced = series_state(self.settings, series).get("announced")
            if announced is None or announced < due:
                await loop.run_in_executor(self._pool, self.step, series, now)
            if until_ms is not None and due >= until_ms:
                return
            try:
                wait = rate.wait_s(next_due_ms(now, step, settle), now, self.cfg.live.max_poll_s)
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass

    def step(self, series: SeriesKey, now_ms: int) -> None:
        """Fetch, gate and store what closed (exchange time ``now_ms``), then announce it; never raises."""
        try:
            self._step(series, now_ms)
        except Exception:  # one series' failure is logged and retried at its next close, the others go on
            log.exception("%s: live step failed; retried at the next close", series)

    def _step(self, series: SeriesKey, now_ms: int) -> None:
        since = now_ms - self.cfg.data.history_days * 86_400_000
        (report,) = ingest(
            self.settings, self.cfg.exchange.id, [series], since, self.gate_at(now_ms), source=self.source,
            now_ms=now_ms, api_url=self.api_url, rate_limit=self.cfg.exchange.rate_limit,
        )  # fmt: skip
        if report.error:
            log.error("%s: %s", series, report.error)
        stored = CandleStore(self.settings.candles_dir).last_timestamp(series)
        announced = series_state(self.settings, series).get("announced")
        if stored is None:
            return
        if announced is None:  # first time followed: history is not announced, what closes from now on is
            update_series_state(self.settings, series, announced=stored)
            return
        if stored > announced:
            step = timeframe_ms(series.timeframe)
            self.announce(series, max(announced + step, stored - (self.cfg.live.max_catchup - 1) * step), stored)

    def announce(self, series: SeriesKey, first: int, cutoff: int) -> None:
        """Emit ``candles.stored`` for candles ``first..cutoff`` (forecast them here if asked), then record it."""
        payload = {
            "exchange": series.exchange, "symbol": series.symbol, "timeframe": series.timeframe,
            "first": first, "cutoff": cutoff,
        }  # fmt: skip
        self.emit(CANDLES_STORED, series_resource(series), payload, f"candles:{series}:{first}:{cutoff}")
        if self.predict_here:
            done = forecast_cutoffs(self.settings, self.cfg, series, first, cutoff)
            if done.written:
                self.emit(
                    FORECAST_STORED, series_resource(series),
                    {"symbol": series.symbol, "version": done.model_version, "cutoffs": done.written},
                    f"forecast:{series}:{done.model_version}:{first}:{cutoff}",
                )  # fmt: skip
        update_series_state(self.settings, series, announced=cutoff)
        if self.paper is not None:
            self.paper.submit(series, first, cutoff)
        if self.monitor is not None:
            self.monitor.check(series)

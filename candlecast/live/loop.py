"""`candlecast live`: follow the exchange's clock, store each series' candle as it closes, announce it.

One asyncio task per timeframe follows the exchange's clock. Where the exchange offers ccxt.pro's
``watch_ohlcv`` (``live.transport``: auto, websocket or rest), its closed candles are pushed (live/stream.py,
with REST catching up any gap); otherwise it reads the exchange's time (ccxt ``fetch_time``) and sleeps
until its next candle has closed (REST polling aligned to the close). The series that closed together are
then one batch on a worker thread: fetched through one ccxt client (one market load, requests at once),
gated by the candle contract (one GX run while all are clean), stored with the existing ingest steps
(quarantine, atomic idempotent upsert), announced, and forecast in one forward pass. A series whose
fetch fails twice within ``BATCH_TIMEOUT_MS`` is retried on a thread of its own with the full retries,
and a refused or failed series is left out of the batch's announcement, so neither delays the others
for long. Each series' announcement is one ``candlecast.candles.stored`` event (``first``..``cutoff``):
after downtime, the missed candles are one batch, and each is forecast from the candles up to it.

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
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import RetryPolicy, make_exchange
from candlecast.data.fetching import SeriesFetch, fetch_to_staging
from candlecast.data.ingest import Gate, GateReport, check_sources, ingest, store_staged, summarize
from candlecast.data.provenance import Source
from candlecast.live.clock import ClockRate, newest_closed, next_due_ms
from candlecast.live.forecast import SeriesForecasts, forecast_many
from candlecast.live.monitor import Emit, Monitor
from candlecast.live.state import series_state, update_series_state
from candlecast.live.stream import follow_stream, stream_offered
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

if TYPE_CHECKING:
    from candlecast.live.paper import PaperTrader

log = logging.getLogger(__name__)

CANDLES_STORED = "candlecast.candles.stored"
FORECAST_STORED = "candlecast.forecast.stored"

# A batch's fetch tries a series twice, each request for at most this long, 0.1 s apart (a malformed page
# is refetched once); then that series is fetched on its own thread with ingest's full timeout and
# retries, so one slow series holds the others about twice this long at most.
BATCH_TIMEOUT_MS = 2_000
BATCH_RETRY = RetryPolicy(max_retries=1, base_s=0.1, cap_s=0.1)


def series_resource(series: SeriesKey) -> str:
    """The resource id of a series' events: ``candlecast.series.<exchange>.<symbol>.<timeframe>``."""
    return f"candlecast.series.{series.exchange}.{series.symbol}.{series.timeframe}"


@runtime_checkable
class BatchGate(Protocol):
    """A gate that also checks a close's frames together (expectations.gate.CandleGate is one)."""

    def __call__(self, frame: pd.DataFrame, series: SeriesKey) -> GateReport:
        """One frame's verdict."""

    def many(self, frames: list[tuple[SeriesKey, pd.DataFrame]]) -> list[GateReport]:
        """Each frame's verdict, in order, from as few checks as it can."""

    def keep(self) -> None:
        """What the gate put off the hot path (result pages); the loop runs it after the forecasts."""


@dataclass
class LiveLoop:
    """Follow every series of ``cfg`` until ``stop`` is set (or each has handled the candle opened at ``until_ms``).

    Args:
        gate_at: The candle contract as a gate, for the exchange time it is given (its live checks); a
            ``BatchGate`` checks a close's series together and writes its result pages after the forecasts.
        emit: How events leave (Prefect's ``emit_event`` from the composition root, plus the journal).
        predict_here: Forecast in this process too (no Prefect deployment listening): one forecast per
            candle from the champion, as the triggered predict flow makes them, a close's series in one
            forward pass (``forecast_many``), then ``forecast.stored``.
        monitor: Live scoring and drift after each announcement (None: off).
        paper: The paper accounts, handed each announced range on their own thread (None: off).
    """

    settings: Settings
    cfg: RunConfig
    gate_at: Callable[[int], Gate]
    emit: Emit
    api_url: str | None = None
    ws_url: str | None = None  # an emulator's kline stream (ExchangeEmulator.ws_url), beside api_url
    source: Source | None = None
    predict_here: bool = False
    monitor: Monitor | None = None
    paper: PaperTrader | None = None
    _pool: ThreadPoolExecutor = field(init=False)
    _retrying: set[SeriesKey] = field(init=False, default_factory=set)  # series on a thread of their own

    async def run(self, stop: asyncio.Event | None = None, until_ms: int | None = None) -> None:
        """Run a follower per timeframe at once; returns when all have stopped (and the retries have ended)."""
        stop = stop or asyncio.Event()
        series = self.cfg.series
        by_timeframe: dict[str, list[SeriesKey]] = {}
        for key in series:
            by_timeframe.setdefault(key.timeframe, []).append(key)
        self._pool = ThreadPoolExecutor(max_workers=len(series) + len(by_timeframe), thread_name_prefix="live")
        self._retrying = set()
        streamed = stream_offered(self.cfg.exchange.id, self.cfg.live.transport, self.api_url, self.ws_url)
        exchange = make_exchange(self.cfg.exchange.id, self.api_url, self.cfg.exchange.rate_limit)
        try:
            await asyncio.gather(*(
                follow_stream(self, keys, stop, until_ms) if streamed else self._follow(keys, exchange, stop, until_ms)
                for keys in by_timeframe.values()
            ))  # fmt: skip
        finally:
            await exchange.close()
            self._pool.shutdown(wait=True)
            if self.paper is not None:
                self.paper.close()

    async def _follow(self, keys: list[SeriesKey], exchange: object, stop: asyncio.Event, until_ms: int | None) -> None:
        rate = ClockRate()
        while not stop.is_set():
            wait = await self.poll(keys, exchange, rate, until_ms)
            if wait is None:
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def poll(
        self, keys: list[SeriesKey], exchange: object, rate: ClockRate, until_ms: int | None
    ) -> float | None:
        """One REST poll: take what closed for ``keys``; real seconds to the next close (None: ``until_ms`` done)."""
        step, settle = timeframe_ms(keys[0].timeframe), self.cfg.live.settle_ms
        now = int(await exchange.fetch_time())  # type: ignore[attr-defined]
        rate.observe(now, time.monotonic())
        due = newest_closed(now, step, settle)
        pending = self.pending(keys, due)
        if pending:
            await asyncio.get_running_loop().run_in_executor(self._pool, self.close, pending, now)
        if until_ms is not None and due >= until_ms:
            return None
        return rate.wait_s(next_due_ms(now, step, settle), now, self.cfg.live.max_poll_s)

    def pending(self, keys: list[SeriesKey], due: int) -> list[SeriesKey]:
        """The series of ``keys`` whose candle ``due`` is not announced yet (those retrying on their own left out)."""
        return [k for k in keys if k not in self._retrying and _behind(self.settings, k, due)]

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The loop's worker threads (a close's batch runs on one)."""
        return self._pool

    def close(self, keys: list[SeriesKey], now_ms: int, pushed: dict[SeriesKey, SeriesFetch] | None = None) -> None:
        """Fetch, gate and store what closed for ``keys`` as one batch, then announce it; never raises.

        ``pushed``: series whose candles the stream already staged (the others are fetched over REST). A
        series whose batch fetch failed is handed to ``step`` on a thread of its own (not awaited).
        """
        gate = self.gate_at(now_ms)
        try:
            stored, slow = self._ingest_batch(keys, now_ms, gate, pushed or {})
        except Exception:  # the batch as a whole failed (e.g. the store): each series on its own
            log.exception("live batch of %d series failed; each is retried on its own", len(keys))
            stored, slow = [], keys
        for key in slow:
            self._retrying.add(key)
            self._pool.submit(self._retry, key, now_ms)
        try:
            self.announce_many(stored)
        except Exception:  # the announcements are replayed at the next close (state is written last)
            log.exception("live announcement of %d series failed; retried at the next close", len(stored))
        if isinstance(gate, BatchGate):  # the gate's result pages, on a thread of their own after the forecasts
            self._pool.submit(gate.keep)

    def _ingest_batch(
        self, keys: list[SeriesKey], now_ms: int, gate: Gate, pushed: dict[SeriesKey, SeriesFetch]
    ) -> tuple[list[SeriesKey], list[SeriesKey]]:
        """ingest() of the batch, one client for all (series newly stored, series whose fetch failed)."""
        since = now_ms - self.cfg.data.history_days * 86_400_000
        check_sources(self.settings, keys, self.source, False)
        rest = [k for k in keys if k not in pushed]
        fetched = fetch_to_staging(
            self.settings, self.cfg.exchange.id, rest, since, now_ms=now_ms, api_url=self.api_url,
            rate_limit=self.cfg.exchange.rate_limit, concurrency=len(rest), timeout_ms=BATCH_TIMEOUT_MS,
            policy=BATCH_RETRY,
        ) if rest else {}  # fmt: skip
        fetched = {k: pushed.get(k) or fetched[k] for k in keys}
        ok = {key: f for key, f in fetched.items() if f.error is None}
        gates = _checked_together(gate, {key: f.staged for key, f in ok.items()})
        done = {key: store_staged(self.settings, key, f.staged, gates[key], self.source) for key, f in ok.items()}
        for report in summarize(self.settings, ok, done):
            if report.error:
                log.error("%s: %s", report.series, report.error)
        return [k for k in ok if self._newly_stored(k)], [k for k in keys if k not in ok]

    def _retry(self, series: SeriesKey, now_ms: int) -> None:
        try:
            self.step(series, now_ms)
        finally:
            self._retrying.discard(series)

    def _newly_stored(self, series: SeriesKey) -> bool:
        """True when ``series`` has stored candles past its announcement (recorded here on its first close)."""
        stored = CandleStore(self.settings.candles_dir).last_timestamp(series)
        announced = series_state(self.settings, series).get("announced")
        if stored is None:
            return False
        if announced is None:  # first time followed: history is not announced, what closes from now on is
            update_series_state(self.settings, series, announced=stored)
            return False
        return stored > announced

    def step(self, series: SeriesKey, now_ms: int) -> None:
        """Fetch, gate, store and announce what closed for one series (exchange time ``now_ms``); never raises."""
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
        if self._newly_stored(series):
            self.announce_many([series])

    def announce_many(self, keys: list[SeriesKey]) -> None:
        """Announce each series' newly stored candles, forecast them all in one pass if asked, then record it."""
        ranges = {}
        for series in keys:
            stored = CandleStore(self.settings.candles_dir).last_timestamp(series)
            announced = series_state(self.settings, series).get("announced")
            if stored is None or announced is None or stored <= announced:
                continue
            step = timeframe_ms(series.timeframe)
            ranges[series] = (max(announced + step, stored - (self.cfg.live.max_catchup - 1) * step), stored)
        self._announce(ranges)

    def announce(self, series: SeriesKey, first: int, cutoff: int) -> None:
        """Emit ``candles.stored`` for one series' candles ``first..cutoff`` (forecast here if asked), then record it.

        The same event id for the same range: a replay after a kill before the record changes nothing.
        """
        self._announce({series: (first, cutoff)})

    def _announce(self, ranges: dict[SeriesKey, tuple[int, int]]) -> None:
        for series, (first, cutoff) in ranges.items():
            payload = {
                "exchange": series.exchange, "symbol": series.symbol, "timeframe": series.timeframe,
                "first": first, "cutoff": cutoff,
            }  # fmt: skip
            self.emit(CANDLES_STORED, series_resource(series), payload, f"candles:{series}:{first}:{cutoff}")
        done = forecast_many(self.settings, self.cfg, ranges) if self.predict_here and ranges else {}
        for series, (first, cutoff) in ranges.items():
            if self.predict_here and series not in done:  # its forecast failed: announced again at the next close
                continue
            self._forecast_stored(series, first, cutoff, done.get(series))
            update_series_state(self.settings, series, announced=cutoff)
            if self.paper is not None:
                self.paper.submit(series, first, cutoff)
            if self.monitor is not None:
                self.monitor.check(series)

    def _forecast_stored(self, series: SeriesKey, first: int, cutoff: int, done: SeriesForecasts | None) -> None:
        if done is not None and done.written:
            self.emit(
                FORECAST_STORED, series_resource(series),
                {"symbol": series.symbol, "version": done.model_version, "cutoffs": done.written},
                f"forecast:{series}:{done.model_version}:{first}:{cutoff}",
            )  # fmt: skip


def _behind(settings: Settings, series: SeriesKey, due: int) -> bool:
    """True when the newest closed candle ``due`` has not been announced yet (or the series never followed)."""
    announced = series_state(settings, series).get("announced")
    return announced is None or announced < due


def _checked_together(gate: Gate, staged: dict[SeriesKey, list[Path]]) -> dict[SeriesKey, Gate]:
    """Each series' gate for its staged chunks: a BatchGate's verdicts from one ``many`` call, else ``gate`` itself.

    ``store_staged`` asks its series' gate once per chunk, in order, until one is refused: the answers
    are handed out in that order (a frame of another length than the one checked is checked again).
    """
    if not isinstance(gate, BatchGate):
        return dict.fromkeys(staged, gate)
    chunks = [(key, pd.read_parquet(path)) for key, paths in staged.items() for path in paths]
    verdicts: dict[SeriesKey, list[tuple[int, GateReport]]] = {key: [] for key in staged}
    for (key, frame), report in zip(chunks, gate.many(chunks), strict=True):
        verdicts[key].append((len(frame), report))

    def answer(key: SeriesKey) -> Gate:
        left = iter(verdicts[key])

        def checked(frame: pd.DataFrame, series: SeriesKey) -> GateReport:
            n, report = next(left, (-1, None))
            return report if report is not None and n == len(frame) else gate(frame, series)

        return checked

    return {key: answer(key) for key in staged}

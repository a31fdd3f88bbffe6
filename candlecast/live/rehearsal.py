"""The living loop rehearsed offline: a pinned market whose regime changes, the loop on a clock that waits for it.

`candlecast live --rehearsal` (deployments/rehearsal.py composes it) serves a synthetic market from the
local emulator: a strong learnable component (momentum and a daily cycle) that switches sign part-way
(``Signal.flip_at``). A tiny champion is trained on the history before the loop starts; then the real
``LiveLoop`` follows the emulator's clock while ``drive`` moves that clock one candle at a time, as fast
as the loop keeps up (at least ``Plan.pace_s`` real seconds per candle): each candle is stored,
forecast, scored and judged before the next closes, and the clock stands still while a retrain trains.
So the candles each step sees, the forecasts, the alarm's candle and the retrain's data are the same on
any day and under any load: everything is keyed to the emulator's clock and the seeds are pinned.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from candlecast.config import RunConfig
from candlecast.devtools.emulator import ExchangeEmulator, synthetic_emulator
from candlecast.devtools.synthetic import STRONG_SIGNAL, Signal
from candlecast.live.drift import Alarm
from candlecast.live.loop import CANDLES_STORED, FORECAST_STORED, LiveLoop
from candlecast.live.monitor import DEGRADED, Emit, Monitor
from candlecast.live.paper import PaperTrader
from candlecast.live.state import read_journal, series_state
from candlecast.registry.prediction_store import prediction_store
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC: the market's first candle, on any day


@dataclass(frozen=True)
class Plan:
    """What the rehearsal simulates: the market, the champion's history, the loop's stretch and the change."""

    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    timeframe: str = "4h"
    seed: int = 7
    train_days: int = 200  # the first champion's history; the loop starts where it ends
    change_day: float = 8.0  # the learnable component switches sign this many days into the loop
    days: float = 16.0  # how long the loop runs, in simulated days
    pace_s: float = 0.05  # least real seconds per candle: the accelerated clock's speed
    min_scored: int = 30  # scored forecasts of a champion before any drift alarm (live.min_scored)
    epochs: int = 3  # per sweep trial; the final fit gets one more (early stopping may end it sooner)
    batch_size: int = 32
    retrain_trials: int = 4  # a retrain's trials after the champion's own configuration (live.retrain_trials)

    @property
    def step(self) -> int:
        """One candle, in ms."""
        return timeframe_ms(self.timeframe)

    @property
    def loop_start(self) -> int:
        """Open time of the first candle the loop follows (the champion's data ends before it)."""
        return START_MS + self.train_days * DAY_MS

    @property
    def change_at(self) -> int:
        """Open time of the first candle of the new regime."""
        return self.loop_start + int(self.change_day * DAY_MS) // self.step * self.step

    @property
    def loop_end(self) -> int:
        """Open time of the last candle the loop handles."""
        return self.loop_start + (int(self.days * DAY_MS) // self.step - 1) * self.step

    @property
    def signal(self) -> Signal:
        """The market's learnable component (strong, so the tiny champion learns it) and its change."""
        return Signal(ar_phi=STRONG_SIGNAL.ar_phi, hour_mean=STRONG_SIGNAL.hour_mean, flip_at=self.change_at)


def rehearsal_market(plan: Plan) -> ExchangeEmulator:
    """The (unstarted) emulator of the plan's market, its clock standing at the loop's start (``drive`` moves it)."""
    n = (plan.loop_end - START_MS) // plan.step + 2
    now = plan.loop_start + plan.step // 2  # the first followed candle is still forming: the history is closed
    return synthetic_emulator(
        plan.symbols, plan.timeframe, start_ms=START_MS, n=n, seed=plan.seed, now_ms=now, signal=plan.signal
    )


def rehearsal_config(plan: Plan, api_url: str | None = None, model_name: str = "candlecast-rehearsal") -> RunConfig:
    """A tiny run config of the plan's market: a champion in a minute, the loop polling fast, only drift degrades it.

    With ``api_url`` it fetches from that endpoint (the loop, on ``rehearsal_market``); without, from the
    config's own emulator pinned at the loop's start (the pipeline that trains the first champion): the
    same seeded candles, since the change lies after that clock and a longer series extends a shorter one.
    """
    pinned = {
        "emulator": True, "seed": plan.seed, "synthetic_start": datetime.fromtimestamp(START_MS / 1000, UTC),
        "synthetic_end": datetime.fromtimestamp((plan.loop_start + plan.step // 2) / 1000, UTC),
        "synthetic_ar_phi": plan.signal.ar_phi, "synthetic_hour_mean": plan.signal.hour_mean,
    }  # fmt: skip
    endpoint = {"emulator": False, "api_url": api_url, "rate_limit": False}
    return RunConfig.model_validate(
        {
            "name": "rehearsal",
            "exchange": pinned if api_url is None else endpoint,
            "data": {"symbols": list(plan.symbols), "timeframe": plan.timeframe, "history_days": plan.train_days},
            "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
            "sweep": {"n_trials": 1, "max_epochs": plan.epochs, "seed": 3},  # seed 3's trial: lr 0.007, 2x32 LSTM
            "train": {"max_epochs": plan.epochs + 1, "batch_size": plan.batch_size},
            "promotion": {"model_name": model_name},
            # the rehearsal is about drift: the champion's age neither degrades it nor stops serving
            "predict": {"max_model_age_days": plan.train_days + plan.days},
            "live": {
                "settle_ms": 1_000,
                "max_poll_s": 0.05,
                "max_model_age_days": None,
                "min_scored": plan.min_scored,
                "retrain_trials": plan.retrain_trials,
                "paper": True,  # the champion's forecasts paper-traded on the live candles (live/paper.py)
            },
        }  # fmt: skip
    )


class _Watched(Monitor):
    """The loop's monitor, also telling the driver which candle each series has been judged at."""

    def __init__(self, settings: Settings, cfg: RunConfig, emit: Emit, judged: Callable[[SeriesKey], None]):
        super().__init__(settings, cfg, emit)
        self._judged = judged

    def check(self, series: SeriesKey) -> list[Alarm]:
        try:
            return super().check(series)
        finally:
            self._judged(series)


@dataclass
class Retrain:
    """One retrain the rehearsal ran: for which degraded version, what the gate said, how long it took."""

    degraded: dict[str, Any]
    outcome: Any  # the train flow's PromotionOutcome, or why it did not train
    seconds: float
    search: Any = None  # what its sweep tried (registry.retrain_search.SearchSummary), read after the run


@dataclass
class Rehearsal:
    """What happened, from the stores and the journal: the report `candlecast live --rehearsal` prints."""

    plan: Plan
    horizon: int  # forecast steps: a forecast is scored once they have all closed
    candles: int = 0  # candles closed per series while the loop ran
    forecasts: dict[str, dict[str, int]] = field(default_factory=dict)  # series -> version -> forecasts
    served_from: dict[str, int] = field(default_factory=dict)  # version -> the first cutoff it forecast
    missing: int = 0  # closed candles with no forecast
    doubled: int = 0  # closed candles with more than one
    latency: dict[str, list[float]] = field(default_factory=dict)  # event -> real seconds after the close
    degraded: list[dict[str, Any]] = field(default_factory=list)  # the model.degraded payloads, in order
    retrains: list[Retrain] = field(default_factory=list)
    seconds: float = 0.0

    def candles_after_change(self, at: int) -> int:
        """How many candles after the change's first candle the forecast cut at ``at`` was (negative: before)."""
        return (at - self.plan.change_at) // self.plan.step


def drive(
    settings: Settings,
    cfg: RunConfig,
    plan: Plan,
    emulator: ExchangeEmulator,
    gate_at: Callable[[int], Any],
    emit: Emit,
    retrain: Callable[[str], Any],
    candle_timeout_s: float = 120.0,
) -> Rehearsal:
    """Run the loop over the plan's stretch, one candle at a time; ``retrain(version)`` on each ``model.degraded``.

    The loop runs in a thread of its own (forecasting in process, as `candlecast live --predict-here`);
    this thread moves the emulator's clock past each candle's close (plus the settle lag), waits until
    every series has stored, forecast and judged it, and runs the retrains the loop asked for while the
    clock stands still. Raises RuntimeError naming the series when a candle is not handled in time.
    """
    started = time.monotonic()
    degraded: list[dict[str, Any]] = []
    judged: dict[str, int] = {}

    def on_judged(series: SeriesKey) -> None:
        judged[series.symbol] = _announced(settings, series)

    def emit_and_watch(event: str, resource: str, payload: dict[str, Any], key: str) -> None:
        emit(event, resource, payload, key)
        if event == DEGRADED:
            degraded.append(payload)

    loop = LiveLoop(
        settings, cfg, gate_at, emit_and_watch, api_url=emulator.url, predict_here=True,
        monitor=_Watched(settings, cfg, emit_and_watch, on_judged),
        paper=PaperTrader(settings, cfg, 0.0, None) if cfg.live.paper else None,  # forecasts made in process: no wait
    )  # fmt: skip
    running: dict[str, Any] = {}

    async def follow() -> None:
        running["stop"], running["loop"] = asyncio.Event(), asyncio.get_running_loop()
        await loop.run(running["stop"])

    runner = threading.Thread(target=lambda: asyncio.run(follow()), name="rehearsal-loop", daemon=True)
    report = Rehearsal(plan, cfg.features.horizon)
    closed_at: dict[int, float] = {}
    runner.start()
    try:
        # the loop's first look records the history as seen (announces nothing): only then may the clock move
        _wait(lambda: all(_announced(settings, s) >= 0 for s in cfg.series) or not runner.is_alive(), candle_timeout_s)
        judged.update({s.symbol: max(judged.get(s.symbol, -1), _announced(settings, s)) for s in cfg.series})
        for candle in range(plan.loop_start, plan.loop_end + plan.step, plan.step):
            pace = time.monotonic() + plan.pace_s
            emulator.now_ms = candle + plan.step + cfg.live.settle_ms  # the candle has closed and settled
            closed_at[candle] = time.time()
            _wait(partial(_handled, judged, plan.symbols, candle, runner), candle_timeout_s)
            late = [s for s in plan.symbols if judged.get(s, -1) < candle]
            if late:
                raise RuntimeError(
                    f"the loop did not handle the candle at {candle} of {', '.join(late)} within "
                    f"{candle_timeout_s:g} s{'' if runner.is_alive() else ' (it stopped)'}: see the log"
                )
            while len(report.retrains) < len(degraded):  # the clock stands still while it trains
                asked = degraded[len(report.retrains)]
                t = time.monotonic()
                outcome = retrain(str(asked["version"]))
                report.retrains.append(Retrain(asked, outcome, time.monotonic() - t))
            time.sleep(max(0.0, pace - time.monotonic()))
            report.candles += 1
    finally:
        if "loop" in running:  # the stop event belongs to the loop's thread: set it there
            running["loop"].call_soon_threadsafe(running["stop"].set)
        runner.join(timeout=30)
    report.degraded = degraded
    report.seconds = time.monotonic() - started
    _count_forecasts(settings, cfg, plan, report)
    _latencies(settings, plan, closed_at, report)
    return report


def _handled(judged: dict[str, int], symbols: tuple[str, ...], candle: int, runner: threading.Thread) -> bool:
    """Every series has judged ``candle`` (or the loop has stopped: nothing more will come)."""
    return all(judged.get(s, -1) >= candle for s in symbols) or not runner.is_alive()


def _wait(done: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``done`` every few milliseconds until it holds or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.005)


def _announced(settings: Settings, series: SeriesKey) -> int:
    """The newest candle the loop announced for ``series`` (-1 before it first looked)."""
    return int(series_state(settings, series).get("announced", -1))


def _count_forecasts(settings: Settings, cfg: RunConfig, plan: Plan, report: Rehearsal) -> None:
    """Each closed candle of the stretch forecast exactly once (by the champion of its time), per series."""
    store = prediction_store(settings, cfg.predict.store_url)
    wanted = set(range(plan.loop_start, plan.loop_end + plan.step, plan.step))
    for series in cfg.series:
        rows = store.read_all(series)
        rows = rows[rows["cutoff"].isin(wanted)].drop_duplicates(["cutoff", "model_version"])
        per_cutoff = rows.groupby("cutoff").size()
        report.forecasts[series.symbol] = {str(v): int(n) for v, n in rows.groupby("model_version").size().items()}
        for version, first in rows.groupby("model_version")["cutoff"].min().items():
            report.served_from[str(version)] = min(int(first), report.served_from.get(str(version), int(first)))
        report.missing += len(wanted - set(per_cutoff.index.astype("int64")))
        report.doubled += int((per_cutoff > 1).sum())


def _latencies(settings: Settings, plan: Plan, closed_at: dict[int, float], report: Rehearsal) -> None:
    """Real seconds from the clock passing each candle's close to its stored candle and its stored forecast."""
    for name in (CANDLES_STORED, FORECAST_STORED):
        lat = []
        for e in read_journal(settings):
            if e["event"] != name:
                continue
            cutoffs = e["payload"].get("cutoffs") or [e["payload"]["cutoff"]]
            lat += [e["t"] - closed_at[c] for c in cutoffs if c in closed_at]
        report.latency[name] = lat


def percentiles(values: list[float]) -> str:
    """``p50 x s, p95 y s, max z s`` of a list of seconds (``none`` when empty)."""
    if not values:
        return "none"
    p50, p95 = np.percentile(values, [50, 95])
    return f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(values):.2f} s (n={len(values)})"

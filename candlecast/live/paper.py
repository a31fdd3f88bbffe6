"""Paper trading that follows the live champion: each stored candle is a bar of a NautilusTrader paper account.

After a series' candles are announced (and, when the loop forecasts in process, forecast), the loop
hands the range to ``PaperTrader``, whose one thread feeds every stored candle not yet traded to the
series' ``PaperEngine`` (candlecast.trading.paper: the trade backtest's engine, kept alive). A candle's
order comes from the ForecastStrategy and the sizing policy reading the forecast stored for that
candle's cutoff (its open time), the one that reached the store first: made from the candles up to
that close, never later ones. A slow paper step waits in its own thread, never on the candle path.

State, under ``<home>/live/paper/<series>/``: ``start.json`` (the first candle handed over),
``account.json`` (instrument precision, trading config, first bar), ``ledger.jsonl``, one whole line
per traded bar (the candle, the forecast and target used, the fills, position, cash and equity, and
the same for the buy-and-hold twin the engine runs beside it), appended after the engine stepped,
and ``checkpoint.json`` (atomic, after the line): the strategies' state as that bar arrived. On
restart a fresh engine takes that state, is fed the checkpoint's bar again (it must end at that line)
and then the ledger's bars after it (a whole-ledger replay without a usable checkpoint); its equity,
buy-and-hold and fills must equal the ledger's last line (else it stops with one line saying so). A
kill before a bar's line is written loses that bar from the ledger and the engine alike, so it is
traded again once: never doubled, never lost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.served import store_kind
from candlecast.io import append_jsonl, read_json, write_json, write_text
from candlecast.live.paper_book import paper_dir, paper_summary, read_ledger, summary_line, summary_markdown
from candlecast.registry.prediction_store import RETURNS, prediction_store
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings
from candlecast.trading.config import TradingConfig
from candlecast.trading.engine import instrument_precision
from candlecast.trading.policy import target_exposures
from candlecast.trading.sources import from_prediction_store

__all__ = [  # the book's readers, named here beside the accounts they read
    "PaperAccount", "PaperTrader", "paper_dir", "paper_summary", "read_ledger", "summary_line", "summary_markdown",
    "trading_config",
]  # fmt: skip

log = logging.getLogger(__name__)

#: One summary of every paper account (what `candlecast status` and the rehearsal print).
Publish = Callable[[dict[str, Any]], None]
#: Where a restart resumes: both strategies' state as the newest bar arrived, written after its ledger line.
CHECKPOINT = "checkpoint.json"


def trading_config(cfg: RunConfig) -> TradingConfig:
    """The paper account's trading config: ``live.paper_trading`` (a trading YAML) or the defaults."""
    path = cfg.live.paper_trading
    return TradingConfig.from_yaml(path) if path else TradingConfig()


class PaperAccount:
    """One series' paper account: its engine (rebuilt from the ledger when it exists) and its ledger."""

    def __init__(self, settings: Settings, cfg: RunConfig, series: SeriesKey, tcfg: TradingConfig):
        self.settings, self.cfg, self.series, self.tcfg = settings, cfg, series, tcfg
        self.folder = paper_dir(settings) / series.slug
        self.step = timeframe_ms(series.timeframe)
        self.hold = tcfg.hold or cfg.features.horizon
        self.meta: dict[str, Any] = read_json(self.folder / "account.json") or {}
        self.ledger = read_ledger(self.folder)
        self._fills = sum(len(r["fills"]) for r in self.ledger)  # the account's fills so far (the checkpoint's)
        self.engine: Any = None
        self.replayed = 0  # ledger bars fed again by the rebuild (after the checkpoint's)
        if self.meta:
            self._rebuild()

    @property
    def last_open(self) -> int | None:
        """Open time of the newest traded candle, None before the first."""
        return int(self.ledger[-1]["t"]) if self.ledger else None

    def _rebuild(self) -> None:
        """A fresh engine resumed from the checkpoint (else from the first bar), fed the ledger's bars after it.

        It must end where the ledger's last line says (equity, buy-and-hold, fills), else it stops.
        """
        from candlecast.trading.paper import PaperEngine

        self._repair()
        trading = TradingConfig.model_validate(self.meta["trading"])
        if trading != self.tcfg:
            raise ValueError(
                f"paper account {self.folder} trades another trading config than live.paper_trading: move the "
                "folder away to start a new account, or restore the config it was started with"
            )
        self.hold = int(self.meta["hold"])
        precision = tuple(self.meta["precision"])
        at, saved = self._checkpoint()
        if saved is not None:  # the checkpoint's bar again, from the state it arrived to: the same decision
            self.engine = PaperEngine(self.series.symbol, self.series.timeframe, self.tcfg, precision, self.hold, saved)
            again = self.engine.feed(_candles(self.ledger[at : at + 1]), _targets(self.ledger[at : at + 1]))
            if not _matches(again, self.ledger[at]):
                log.warning(
                    "%s: the paper checkpoint does not rebuild its bar: replaying the whole ledger", self.series
                )
                self.engine.close()
                at, saved = -1, None
        if saved is None:
            self.engine = PaperEngine(self.series.symbol, self.series.timeframe, self.tcfg, precision, self.hold)
        rest = self.ledger[at + 1 :]
        self.replayed = len(rest)
        if rest:
            rebuilt = self.engine.feed(_candles(rest), _targets(rest))
            last, fills = rest[-1], sum(len(r["fills"]) for r in rest)
            if len(rebuilt.account.fills) != fills or not _matches(rebuilt, last):
                raise RuntimeError(
                    f"paper account {self.series}: the ledger's last {len(rest)} bars rebuild to equity "
                    f"{rebuilt.account.equity:.6f} (buy-and-hold {rebuilt.hold.equity:.6f}) with "
                    f"{len(rebuilt.account.fills)} fills, but the ledger ends at {last['equity']:.6f} "
                    f"({last.get('buy_hold', 0.0):.6f}) with {fills}: the ledger was edited or the engine changed; "
                    f"move {self.folder} away to start anew"
                )
        if self.ledger:
            log.info(
                "%s: paper account resumed at bar %s (%d ledger bars replayed), equity %.2f",
                self.series, self.ledger[-1]["t"], len(rest), self.ledger[-1]["equity"],
            )  # fmt: skip

    def _checkpoint(self) -> tuple[int, dict[str, Any] | None]:
        """The checkpoint's line in the ledger and its saved state; (-1, None) without a usable one."""
        saved = read_json(self.folder / CHECKPOINT)
        if not saved or not self.ledger:
            return -1, None
        at = next((i for i in range(len(self.ledger) - 1, -1, -1) if self.ledger[i]["t"] == saved["t"]), -1)
        fills = sum(len(r["fills"]) for r in self.ledger[: at + 1])
        if at < 0 or self.ledger[at]["equity"] != saved["equity"] or fills != saved["fills"]:
            log.warning("%s: the paper checkpoint is not a bar of the ledger: replaying the whole ledger", self.series)
            return -1, None
        return at, saved["state"]

    def _repair(self) -> None:
        """Drop a torn last line, so the next append starts a line of its own."""
        path = self.folder / "ledger.jsonl"
        if path.is_file() and not path.read_text().endswith("\n") and path.stat().st_size:
            write_text("".join(json.dumps(r) + "\n" for r in self.ledger), path)

    def advance(self, first: int, cutoff: int, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Trade every stored candle after the last traded one up to ``cutoff``; returns the new ledger lines.

        A new account starts at ``first`` (the first candle the loop announced with paper on). In
        ``wait_s`` (forecasts by the predict deployment) it waits that long for a candle's forecast
        to reach the store; a forecast that comes later is not traded (the bar has moved on).
        """
        candles = CandleStore(self.settings.candles_dir).read(self.series)
        begun = (read_json(self.folder / "start.json") or {}).get("first", first)  # PaperTrader.submit's record
        start = int(begun) if self.last_open is None else self.last_open + self.step
        todo = candles[candles["timestamp"].between(start, cutoff)].reset_index(drop=True)
        if todo.empty:
            return []
        if self.engine is None:
            self._open(candles, int(todo["timestamp"].iloc[0]))
        forecasts = self._forecasts(todo, wait_s)
        return [self._trade(todo.iloc[[i]], forecasts.get(int(t))) for i, t in enumerate(todo["timestamp"])]

    def _open(self, candles: pd.DataFrame, start: int) -> None:
        """A new account: its instrument fixed from the history before it, its config recorded."""
        from candlecast.trading.paper import PaperEngine

        history = candles[candles["timestamp"] <= start]
        precision = instrument_precision(history)
        self.meta = {
            "series": str(self.series), "start": start, "precision": list(precision), "hold": self.hold,
            "capital": self.tcfg.execution.starting_capital, "trading": self.tcfg.model_dump(mode="json"),
        }  # fmt: skip
        write_json(self.meta, self.folder / "account.json")
        self.engine = PaperEngine(self.series.symbol, self.series.timeframe, self.tcfg, precision, self.hold)

    def _on_grid(self, t: int) -> bool:
        """Forecasts are traded every ``hold`` candles from the account's first bar (the backtest's grid)."""
        return (t - int(self.meta["start"])) // self.step % self.hold == 0

    def _forecasts(self, todo: pd.DataFrame, wait_s: float) -> dict[int, pd.DataFrame]:
        """The stored forecast rows of each candle on the grid (one version: the first stored), waiting ``wait_s``."""
        wanted = [int(t) for t in todo["timestamp"] if self._on_grid(int(t))]
        deadline = time.monotonic() + wait_s
        while True:
            found = forecasts_at(self.settings, self.cfg, self.series, wanted)
            if len(found) == len(wanted) or time.monotonic() >= deadline:
                return found
            time.sleep(0.2)

    def _trade(self, bar: pd.DataFrame, rows: pd.DataFrame | None) -> dict[str, Any]:
        """One bar through the engine, then its ledger line (after the step: a kill between loses neither)."""
        c = bar.iloc[0]
        t = int(c["timestamp"])
        used = self._target(c, rows)
        step = self.engine.feed(bar, {t: used["target"]} if used else {})
        a, h = step.account, step.hold
        record = {
            "t": t, **{k[0]: float(c[k]) for k in ("open", "high", "low", "close", "volume")},
            **(used or {"target": None}), "fills": a.fills, "position": a.position, "cash": a.cash,
            "equity": a.equity, "buy_hold": h.equity, "hold_position": h.position, "hold_fills": h.fills,
        }  # fmt: skip
        append_jsonl(record, self.folder / "ledger.jsonl")
        self.ledger.append(record)
        self._fills += len(a.fills)
        # after the line: a kill between the two leaves the checkpoint a bar behind, replayed from the ledger
        write_json({"t": t, "equity": a.equity, "fills": self._fills, "state": step.state}, self.folder / CHECKPOINT)
        return record

    def _target(self, candle: pd.Series, rows: pd.DataFrame | None) -> dict[str, Any] | None:
        """This candle's forecast as a target exposure; None without one (or with one made on other candles)."""
        if rows is None:
            return None
        t = int(candle["timestamp"])
        frame = from_prediction_store(rows.assign(symbol=self.series.symbol), self.hold, self.cfg.predict.interval)
        if not np.isclose(float(frame["close"].iloc[0]), float(candle["close"]), rtol=1e-6):
            log.warning("%s: the forecast at %s saw another close than the stored candle: not traded", self.series, t)
            return None
        target = float(target_exposures(frame, self.tcfg.policy, 1)[0])
        return {
            "cutoff": t, "version": str(frame["model_version"].iloc[0]),
            "forecast": float(frame["forecast"].iloc[0]), "target": target,
        }  # fmt: skip

    def close(self) -> None:
        """Release the engine (the ledger is the account)."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def _candles(lines: list[dict[str, Any]]) -> pd.DataFrame:
    """The ledger lines' candles, as the engine takes them."""
    rows = [[r["t"], r["o"], r["h"], r["l"], r["c"], r["v"]] for r in lines]
    return pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])


def _targets(lines: list[dict[str, Any]]) -> dict[int, float]:
    return {int(r["t"]): float(r["target"]) for r in lines if r.get("target") is not None}


def _matches(step: Any, line: dict[str, Any]) -> bool:
    """The engine's account (and buy-and-hold, when the line has it) at a bar is the ledger line's."""
    same = np.isclose(step.account.equity, line["equity"], rtol=1e-9, atol=1e-6)
    return bool(
        same and ("hold_fills" not in line or np.isclose(step.hold.equity, line["buy_hold"], rtol=1e-9, atol=1e-6))
    )


def forecasts_at(settings: Settings, cfg: RunConfig, series: SeriesKey, cutoffs: list[int]) -> dict[int, pd.DataFrame]:
    """The stored forecast rows at each cutoff that has one; of several versions, the first stored."""
    if not cutoffs:
        return {}
    rows = prediction_store(settings, cfg.predict.store_url, store_kind(cfg.target)).read_cutoffs(series, cutoffs)
    if rows.empty:
        return {}
    out = {}
    for cutoff, group in rows.groupby(rows["cutoff"].astype("int64")):
        first = group.sort_values("created_at").iloc[0]
        out[int(cutoff)] = group[group["model_version"].astype(str) == str(first["model_version"])]
    return out


class PaperTrader:
    """Every series' paper account, fed on one thread of its own so the candle path never waits on it.

    One thread: a NautilusTrader engine is touched only by the thread that feeds it, and a series'
    bars are traded in order. ``publish`` gets the summary at most every ``publish_s`` and at close
    (a Prefect artifact from the composition root).
    """

    def __init__(self, settings: Settings, cfg: RunConfig, wait_s: float, publish: Publish | None = None):
        if store_kind(cfg.target) != RETURNS:
            raise ValueError("live.paper trades return forecasts: this config's champion forecasts volatility")
        self.settings, self.cfg, self.wait_s, self.publish = settings, cfg, wait_s, publish
        self.tcfg = trading_config(cfg)  # a bad trading file stops the loop at start, not in the thread
        self.accounts: dict[SeriesKey, PaperAccount] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paper")
        self._published = 0.0
        self._begun: set[SeriesKey] = set()
        self.publish_s = 60.0

    def submit(self, series: SeriesKey, first: int, cutoff: int) -> Future[None]:
        """Queue the series' candles up to ``cutoff`` for trading; returns at once.

        The first range ever handed over fixes where the account starts (``start.json``, written here,
        on the caller's thread): a kill before the paper thread got to it must not move the start.
        """
        if series not in self._begun:
            start = paper_dir(self.settings) / series.slug / "start.json"
            if not start.is_file():
                write_json({"first": int(first)}, start)
            self._begun.add(series)
        return self._pool.submit(self._advance, series, first, cutoff)

    def _advance(self, series: SeriesKey, first: int, cutoff: int) -> None:
        try:
            account = self.accounts.get(series)
            if account is None:
                account = self.accounts[series] = PaperAccount(self.settings, self.cfg, series, self.tcfg)
            account.advance(first, cutoff, self.wait_s)
        except Exception:  # logged; the next announcement retries from the ledger's last bar
            log.exception("%s: paper step failed", series)
            self.accounts.pop(series, None)
        if self.publish is not None and time.monotonic() - self._published >= self.publish_s:
            self._publish()

    def _publish(self) -> None:
        self._published = time.monotonic()
        try:
            if self.publish is not None:
                self.publish(paper_summary(self.settings))
        except Exception:  # a Prefect server that went away costs the artifact, not the account
            log.exception("the paper summary was not published")

    def close(self) -> None:
        """Finish the queued steps, publish the summary once more, release the engines."""
        self._pool.shutdown(wait=True)
        if self.publish is not None:
            self._publish()
        for account in self.accounts.values():
            account.close()

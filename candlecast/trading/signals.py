"""Decision support: today's forecast, its odds, the action and the position's risk, per symbol.

The forecast comes from the @champion (loaded once, run on the latest stored candles) or from the
prediction store (what the scheduled prediction just wrote). Either way it passes through the same
forecast frame checks and the same sizing policy as a backtest. Decisions are stored with lineage
(model version, forecast cutoff, policy), one row per symbol and cutoff, so a rerun replaces its rows
and the next run knows the previous target (the no-trade band needs it).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.io import file_lock, write_parquet
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from candlecast.trading.config import TradingConfig
from candlecast.trading.forecasts import validate_forecasts
from candlecast.trading.policy import action, one_day_var, prob_positive, target_exposures
from candlecast.trading.sources import from_prediction_store


def champion_bundle(settings: Settings, cfg: RunConfig):
    """The @champion's ModelBundle (loaded once) and its lineage; a clear error when there is none."""
    import mlflow

    from candlecast.registry import aliases, tracking

    client = tracking.client(settings)
    name = cfg.promotion.model_name
    version = aliases.alias_version(client, name, aliases.CHAMPION)
    if version is None:
        raise ValueError(f"no @champion for {name}: train and promote a model first (candlecast run)")
    model = mlflow.pyfunc.load_model(f"models:/{name}@{aliases.CHAMPION}")
    bundle = model.unwrap_python_model().forecaster
    if bundle.spec.timeframe != cfg.data.timeframe:
        raise ValueError(
            f"{name} v{version} forecasts {bundle.spec.timeframe} candles but the config trades "
            f"{cfg.data.timeframe}: change data.timeframe or promote a {cfg.data.timeframe} model"
        )
    run_id = client.get_model_version(name, version).run_id
    return bundle, {"model_name": name, "model_version": str(version), "run_id": str(run_id)}


def bundle_forecasts(
    bundle, candles: dict[str, pd.DataFrame], hold: int, lineage: dict[str, str], timeframe: str
) -> pd.DataFrame:
    """One forecast per symbol from its latest candles, as a forecast frame for the ``hold`` step."""
    rows = []
    for symbol, frame in candles.items():
        out = bundle.predict(frame.tail(bundle.spec.min_candles + 1).reset_index(drop=True))
        rows.append(out.assign(symbol=symbol, timeframe=timeframe, **lineage))
    coverage = float(bundle.calibration.interval)
    return from_prediction_store(pd.concat(rows, ignore_index=True), hold, coverage)


def store_forecasts(settings: Settings, cfg: RunConfig, series: list[SeriesKey], hold: int) -> pd.DataFrame:
    """The latest stored forecast of each series, as a forecast frame."""
    from candlecast.registry.prediction_store import prediction_store

    store = prediction_store(settings, cfg.predict.store_url)
    latest = [store.latest(s) for s in series]
    missing = [str(s) for s, rows in zip(series, latest, strict=True) if rows is None or rows.empty]
    if missing:
        raise ValueError(f"no stored forecasts for {missing}: run `candlecast predict` (or the predict flow) first")
    rows = [r.assign(symbol=s.symbol, timeframe=s.timeframe) for s, r in zip(series, latest, strict=True)]
    return from_prediction_store(pd.concat(rows, ignore_index=True), hold, cfg.predict.interval)


def decide(
    frame: pd.DataFrame,
    candles: dict[str, pd.DataFrame],
    tcfg: TradingConfig,
    timeframe: str,
    previous: dict[str, float] | None = None,
) -> pd.DataFrame:
    """The decision table: one row per symbol with the forecast, P(up), the target, the action and VaR.

    Each symbol's forecast must have been made on its latest closed candle (checked like any forecast
    frame, and for freshness), so a stale forecast never becomes today's action.
    """
    frame, _ = validate_forecasts(frame, candles, timeframe, min_coverage=0.0)
    latest = {s: int(c["timestamp"].iloc[-1]) for s, c in candles.items()}
    stale = [
        f"{s} (forecast cutoff {_iso(c)}, latest candle {_iso(latest[s])})"
        for s, c in zip(frame["symbol"], frame["cutoff"], strict=True)
        if c != latest[s]
    ]
    if stale:
        raise ValueError(f"forecasts are older than the latest candle for {stale}: predict again before deciding")
    target = target_exposures(frame, tcfg.policy, len(frame))
    before = np.array([(previous or {}).get(s, 0.0) for s in frame["symbol"]])
    actions = [action(float(t), float(p), tcfg.policy.no_trade_band) for t, p in zip(target, before, strict=True)]
    held = np.where(np.array(actions) == "hold", before, target)
    var = one_day_var(frame, held)
    close = frame["close"].to_numpy("float64")
    out = pd.DataFrame(
        {
            "symbol": frame["symbol"],
            "last_candle": [_iso(c) for c in frame["cutoff"]],
            "close": close,
            "cutoff": frame["cutoff"],
            "horizon": frame["horizon"],
            "forecast_log_return": frame["forecast"],
            "forecast_price": close * np.exp(frame["forecast"].to_numpy("float64")),
            "lower_price": close * np.exp(frame["lower"].to_numpy("float64")),
            "upper_price": close * np.exp(frame["upper"].to_numpy("float64")),
            "coverage": frame["coverage"],
            "prob_up": prob_positive(frame),
            "previous_target": before,
            "target": held,
            "action": actions,
            "var_1d_95": var,
            "var_1d_95_value": var * tcfg.execution.starting_capital,
            "policy": tcfg.policy.name,
            "policy_id": policy_id(tcfg),
        }
    )
    for col in ("model_name", "model_version", "run_id"):
        out[col] = frame[col].to_numpy() if col in frame else ""
    return out.reset_index(drop=True)


def policy_id(tcfg: TradingConfig) -> str:
    """A short stable hash of the policy, so stored decisions say which rules made them."""
    text = json.dumps(tcfg.policy.model_dump(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M")


class DecisionStore:
    """``<home>/signals/<symbol slug>.parquet``: every decision, keyed by (cutoff, model version, policy)."""

    KEY = ["cutoff", "model_version", "policy_id"]

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, symbol: str) -> Path:
        return self.root / f"{symbol.replace('/', '-')}.parquet"

    def read(self, symbol: str) -> pd.DataFrame:
        path = self.path(symbol)
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()

    def previous_targets(self, symbols: list[str], before_cutoff: dict[str, int], policy: str) -> dict[str, float]:
        """The last stored target of each symbol under this policy, from a cutoff before the given one."""
        out = {}
        for symbol in symbols:
            rows = self.read(symbol)
            if rows.empty:
                continue
            rows = rows[(rows["policy_id"] == policy) & (rows["cutoff"] < before_cutoff.get(symbol, np.inf))]
            if not rows.empty:
                out[symbol] = float(rows.sort_values(["cutoff", "decided_at"])["target"].iloc[-1])
        return out

    def write(self, decisions: pd.DataFrame) -> list[Path]:
        """Upsert each symbol's rows (a rerun replaces its own rows), atomically, under a lock."""
        stamped = decisions.assign(decided_at=datetime.now(UTC).isoformat())
        paths = []
        with file_lock(self.root / ".lock"):
            for symbol, rows in stamped.groupby("symbol", sort=True):
                old = self.read(symbol)
                if not old.empty:
                    keys = rows[self.KEY].astype(str).agg("|".join, axis=1)
                    old = old[~old[self.KEY].astype(str).agg("|".join, axis=1).isin(keys)]
                merged = pd.concat([old, rows], ignore_index=True) if not old.empty else rows
                path = self.path(str(symbol))
                write_parquet(merged.sort_values(["cutoff", "decided_at"]).reset_index(drop=True), path)
                paths.append(path)
        return paths


def decisions_dir(settings: Settings) -> Path:
    return settings.root / "signals"


@dataclass
class SignalsOutcome:
    decisions: pd.DataFrame
    weights: pd.DataFrame | None
    portfolio: pd.DataFrame | None
    stored: list[Path]
    load_seconds: float = 0.0
    decide_seconds: float = 0.0


def run_signals(
    settings: Settings,
    cfg: RunConfig,
    tcfg: TradingConfig,
    source: str = "champion",
    store: bool = True,
    candles: dict[str, pd.DataFrame] | None = None,
) -> SignalsOutcome:
    """Forecasts (fresh from the champion, or the latest stored), decisions, the portfolio view; stored."""
    from candlecast.data.candle_store import CandleStore
    from candlecast.trading.portfolio import portfolio_view

    started = time.perf_counter()
    hold = tcfg.hold or cfg.features.horizon
    if candles is None:
        stored = CandleStore(settings.candles_dir)
        candles = {s.symbol: stored.read(s) for s in cfg.series}
    empty = [s for s, c in candles.items() if c.empty]
    if empty:
        raise ValueError(f"no candles stored for {empty}: ingest them first (candlecast run or the ingest flow)")
    if source == "champion":
        bundle, lineage = champion_bundle(settings, cfg)
        loaded = time.perf_counter()
        frame = bundle_forecasts(bundle, candles, hold, lineage, cfg.data.timeframe)
    elif source == "store":
        loaded = time.perf_counter()
        frame = store_forecasts(settings, cfg, cfg.series, hold)
    else:
        raise ValueError(f"unknown forecast source {source!r}: choose 'champion' or 'store'")
    ids = policy_id(tcfg)
    decision_store = DecisionStore(decisions_dir(settings))
    cutoffs = dict(zip(frame["symbol"], frame["cutoff"].astype("int64"), strict=True))
    previous = decision_store.previous_targets(list(candles), cutoffs, ids)
    decisions = decide(frame, candles, tcfg, cfg.data.timeframe, previous)
    weights = summary = None
    if len(candles) > 1:
        weights, summary = portfolio_view(frame, candles, tcfg.policy)
    paths = decision_store.write(decisions) if store else []
    done = time.perf_counter()
    return SignalsOutcome(decisions, weights, summary, paths, loaded - started, done - loaded)

"""Decision support: today's forecast, its odds, the action and the position's risk, per symbol.

The forecast comes from the @champion (loaded once, run on the latest stored candles) or from the
prediction store (what the scheduled prediction just wrote). Either way it passes through the same
forecast frame checks and the same sizing policy as a backtest. Decisions are stored with lineage
(model version, forecast cutoff, policy), one file per run, so a rerun replaces its own file and the
next run knows the previous targets (the no-trade band needs them).
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
from candlecast.io import write_parquet
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings
from candlecast.trading.config import TradingConfig
from candlecast.trading.forecasts import validate_forecasts
from candlecast.trading.policy import action, horizon_sigma, one_day_var, prob_positive, target_exposures
from candlecast.trading.risk_source import sizing_volatility
from candlecast.trading.sources import from_prediction_store


def champion_bundle(settings: Settings, cfg: RunConfig):
    """The @champion's bundle (loaded once, in the lean runtime when it carries its export) and its lineage."""
    from candlecast.registry.loading import load_version
    from candlecast.registry.local_registry import CHAMPION, alias_version, reader

    client = reader(settings)
    name = cfg.promotion.model_name
    version = alias_version(client, name, CHAMPION)
    if version is None:
        raise ValueError(f"no @champion for {name}: train and promote a model first (candlecast run)")
    bundle = load_version(client, name, version)
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
    """One forecast per symbol from its latest candles (every series in one forward pass), as a forecast frame."""
    need = bundle.spec.min_candles + 1
    tails = [frame.tail(need).assign(symbol=symbol) for symbol, frame in candles.items()]
    out = bundle.predict_many(pd.concat(tails, ignore_index=True))
    if bundle.calibration is None:
        raise ValueError("the champion forecasts risk, not returns: signals need a returns model's forecasts")
    rows = out.assign(timeframe=timeframe, **lineage)
    return from_prediction_store(rows, hold, float(bundle.calibration.interval))


def store_forecasts(settings: Settings, cfg: RunConfig, series: list[SeriesKey], hold: int) -> pd.DataFrame:
    """The latest stored forecast of each series, as a forecast frame."""
    from candlecast.registry.prediction_store import prediction_store

    store = prediction_store(settings, cfg.predict.store_url)
    rows, missing = [], []
    for key in series:
        latest = store.latest(key)
        if latest is None or latest.empty:
            missing.append(str(key))
        else:
            rows.append(latest.assign(symbol=key.symbol, timeframe=key.timeframe))
    if missing:
        raise ValueError(f"no stored forecasts for {missing}: run `candlecast predict` (or the predict flow) first")
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
            "volatility": horizon_sigma(frame),  # what sized the target and the VaR
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
    """``<home>/signals/<policy id>/cutoff=<ms>_v<version>.parquet``: one file per run of decisions.

    One file per (policy, newest cutoff, model version) holds every symbol's row, so a run is one
    atomic write, a rerun replaces its own file, and the previous targets come from the newest file
    or two instead of one file per symbol.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, policy: str, cutoff: int, version: str) -> Path:
        """The file of one run's decisions."""
        return self.root / policy / f"cutoff={int(cutoff)}_v{version or 'none'}.parquet"

    def files(self, policy: str) -> list[Path]:
        """This policy's decision files, newest cutoff first."""
        found = (self.root / policy).glob("cutoff=*.parquet")
        return sorted(found, key=lambda p: (int(p.stem.split("=")[1].split("_v")[0]), p.stat().st_mtime), reverse=True)

    def read(self, policy: str) -> pd.DataFrame:
        """Every stored decision under a policy, newest cutoff first."""
        files = self.files(policy)
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()

    def previous_targets(self, symbols: list[str], before_cutoff: dict[str, int], policy: str) -> dict[str, float]:
        """The last stored target of each symbol under this policy, from a cutoff before its current one."""
        out: dict[str, float] = {}
        for path in self.files(policy):
            rows = pd.read_parquet(path, columns=["symbol", "cutoff", "target"])
            for symbol, cutoff, target in rows.itertuples(index=False):
                if symbol in symbols and symbol not in out and cutoff < before_cutoff.get(symbol, np.inf):
                    out[symbol] = float(target)
            if len(out) == len(set(symbols)):
                break
        return out

    def write(self, decisions: pd.DataFrame) -> list[Path]:
        """One atomic file per (policy, model version) of this run, named by its newest cutoff."""
        stamped = decisions.assign(decided_at=datetime.now(UTC).isoformat())
        paths = []
        for (policy, version), rows in stamped.groupby(["policy_id", "model_version"], sort=True):
            path = self.path(str(policy), int(rows["cutoff"].max()), str(version))
            write_parquet(rows.reset_index(drop=True), path)
            paths.append(path)
        return paths


def decisions_dir(settings: Settings) -> Path:
    """Where decisions are stored: ``<home>/signals``."""
    return settings.root / "signals"


@dataclass
class SignalsOutcome:
    """The decisions, the portfolio view (two or more symbols), the stored files and the time taken."""

    decisions: pd.DataFrame
    weights: pd.DataFrame | None
    portfolio: pd.DataFrame | None
    stored: list[Path]
    load_seconds: float = 0.0
    decide_seconds: float = 0.0
    volatility_note: str = ""


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
    from candlecast.trading.portfolio import portfolio_view, return_window

    started = time.perf_counter()
    hold = tcfg.hold or cfg.features.horizon
    if source not in ("champion", "store"):
        raise ValueError(f"unknown forecast source {source!r}: choose 'champion' or 'store'")
    bundle, lineage = champion_bundle(settings, cfg) if source == "champion" else (None, {})
    if candles is None:
        # the newest files only: the model's window and warm-up, and the portfolio's month of returns
        need = max(return_window(timeframe_ms(cfg.data.timeframe)) + 1, bundle.spec.min_candles + 1 if bundle else 0)
        stored = CandleStore(settings.candles_dir)
        candles = {s.symbol: stored.read_recent(s, need) for s in cfg.series}
    empty = [s for s, c in candles.items() if c.empty]
    if empty:
        raise ValueError(f"no candles stored for {empty}: ingest them first (candlecast run or the ingest flow)")
    loaded = time.perf_counter()
    if bundle is not None:
        frame = bundle_forecasts(bundle, candles, hold, lineage, cfg.data.timeframe)
    else:
        frame = store_forecasts(settings, cfg, cfg.series, hold)
    frame, vol_note = sizing_volatility(settings, cfg, frame, candles, source, timeframe_ms(cfg.data.timeframe))
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
    return SignalsOutcome(decisions, weights, summary, paths, loaded - started, done - loaded, vol_note)

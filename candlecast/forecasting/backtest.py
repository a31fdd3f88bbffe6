"""`candlecast backtest` as a plain function: load candles from a file or the store, walk every model forward.

The folds are the evaluation folds the pipeline uses for the same config (candlecast.forecasting.splits), so a
table printed here and a promotion decision read the same windows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.neural import neural_forecaster
from candlecast.forecasting.retrain import STALE
from candlecast.forecasting.splits import Fold, evaluation_folds_for
from candlecast.forecasting.targets import TARGETS, BacktestResult, Walk, target_of
from candlecast.forecasting.walkforward import backtest, markdown_table
from candlecast.io import write_text
from candlecast.models import MODELS
from candlecast.schema import CANDLE_COLUMNS, SeriesKey, timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)

_TIMEFRAMES = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w"]


@dataclass(frozen=True)
class Source:
    """One series to backtest: its candles and the names the features and the report use."""

    name: str  # e.g. binance_BTC-USDT_1h
    symbol: str  # e.g. BTC/USDT (for cross-asset features)
    timeframe: str
    candles: pd.DataFrame


def load_source(text: str, settings: Settings | None = None, warn: Callable[[str], None] | None = None) -> Source:
    """A candle file (CSV, CSV.GZ or parquet with CANDLE_COLUMNS) or a stored series EXCHANGE:SYMBOL:TIMEFRAME.

    A file's rows with an empty (NaN) price or volume are left out, and ``warn`` (and the log) gets one
    line naming them: scored, they would turn every metric of the table into NaN without a word.
    """
    path = Path(text)
    if path.suffix in (".csv", ".gz", ".parquet") or path.exists():
        candles = _read_candle_file(path)
        candles = candles[CANDLE_COLUMNS].sort_values("timestamp").drop_duplicates("timestamp", keep="last")
        empty = candles.isna().any(axis=1).to_numpy()
        if empty.any():
            message = _empty_rows(path, candles[empty])
            log.warning(message)
            if warn is not None:
                warn(message)
            candles = candles[~empty]
        if len(candles) < 2:
            raise ValueError(f"{path} holds {len(candles)} complete candle(s): a backtest needs a series of them")
        name = path.name.split(".")[0]
        return Source(
            name, symbol_of(name), infer_timeframe(candles["timestamp"].to_numpy()), candles.reset_index(drop=True)
        )
    key = SeriesKey.parse(text)
    candles = CandleStore((settings or Settings()).candles_dir).read(key)
    if candles.empty:
        raise ValueError(f"no candles stored for {key}: ingest it first (candlecast run) or pass a file")
    return Source(key.slug, key.symbol, key.timeframe, candles)


def symbol_of(name: str) -> str:
    """The pair a file name carries as BASE-QUOTE (``binance_BTC-USDT_1h``, ``btc-usdt``), else the name itself."""
    pair = next((part for part in name.split("_") if re.fullmatch(r"[A-Za-z0-9]+-[A-Za-z0-9]+", part)), None)
    return pair.replace("-", "/").upper() if pair else name


def _read_candle_file(path: Path) -> pd.DataFrame:
    """The file's table, or a ValueError naming the file and what a candle file holds."""
    import pyarrow as pa

    if not path.is_file():
        raise ValueError(f"candle file {path} does not exist")
    needs = f"a candle file needs a header {','.join(CANDLE_COLUMNS)} and one candle per row"
    try:
        candles = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"candle file {path} is empty: {needs}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pa.ArrowException, OSError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"candle file {path} cannot be read ({reason}): {needs}") from None
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}: {needs}")
    return candles


def _empty_rows(path: Path, rows: pd.DataFrame) -> str:
    """One line naming the rows with an empty value: the file's line (CSV) or row, and the candle's time."""
    from datetime import UTC, datetime

    first = 2 if path.suffix != ".parquet" else 0  # a CSV's line 1 is its header
    where = "line" if first else "row"
    named = [
        f"{where} {i + first} ({datetime.fromtimestamp(ts / 1000, UTC):%Y-%m-%d %H:%M})"
        for i, ts in zip(rows.index[:3], rows["timestamp"].to_numpy()[:3], strict=True)
    ]
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    columns = sorted(c for c in CANDLE_COLUMNS if rows[c].isna().any())
    return (
        f"{path}: {len(rows)} candle(s) with an empty {'/'.join(columns)} left out: {', '.join(named)}{more} "
        "(the windows across them are skipped)"
    )


def infer_timeframe(timestamps: np.ndarray) -> str:
    """The ccxt timeframe whose length is the most common spacing of the candles."""
    steps, counts = np.unique(np.diff(timestamps), return_counts=True)
    step = int(steps[np.argmax(counts)]) if len(steps) else 0
    for tf in _TIMEFRAMES:
        if timeframe_ms(tf) == step:
            return tf
    raise ValueError(f"candles are {step} ms apart, which is no ccxt timeframe: resample them first")


def run_backtest(
    source: Source,
    models: list[str],
    cfg: RunConfig,
    cross: list[Source] | None = None,
    on_fold: Callable[[str, int, dict[str, float]], None] | None = None,
) -> tuple[BacktestResult, list[Fold]]:
    """Features, folds and every named model on one series, for the config's target; the result and the folds."""
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"timeframe": source.timeframe})})
    fc = cfg.features
    contexts = {c.symbol: c.candles for c in cross or []}
    if contexts:
        fc = fc.model_copy(update={"cross_assets": sorted(contexts)})
        cfg = cfg.model_copy(update={"features": fc})
    frame = series_features(source.candles, fc, source.timeframe, cross=contexts)
    arrays = SeriesArrays.from_frame(source.name, frame, fc.horizon)
    arrays.mark_windows(fc.lookback, timeframe_ms(source.timeframe))
    folds = evaluation_folds_for(arrays.timestamps, cfg)
    result = backtest(target_of(cfg), named_factories(models, cfg), [arrays], folds, Walk.of(cfg), on_fold)
    return result, folds


def write_tables(result: BacktestResult, out_dir: Path, name: str, header: str) -> list[Path]:
    """The summary and per-fold tables as CSV and markdown, written atomically, named by series and target.

    ``<name>_<target>_summary.csv``, ``_per_fold.csv`` and ``.md``: the returns and the volatility
    backtests of one file land side by side instead of overwriting each other.
    """
    name = f"{name}_{result.target.key}"
    paths = {
        out_dir / f"{name}_summary.csv": result.summary.to_csv(),
        out_dir / f"{name}_per_fold.csv": result.per_fold.to_csv(index=False),
        out_dir / f"{name}.md": f"{header}\n\n{markdown_table(result.summary, result.target.table_columns)}\n",
    }
    for path, text in paths.items():
        write_text(text, path)
    return list(paths)


def named_factories(names: Sequence[str], cfg: RunConfig) -> dict[str, Callable[[], Forecaster]]:
    """Factories for the target's baselines and the architectures (with default hyperparameters) by name."""
    target = target_of(cfg)
    known = sorted([*target.baselines, *MODELS])
    factories: dict[str, Callable[[], Forecaster]] = {}
    for name in names:
        if name in target.baselines:
            factories[name] = partial(target.baseline, name, cfg)
        elif name in MODELS:
            factories[name] = partial(_with_defaults, cfg, name)
        else:
            raise ValueError(f"unknown model {name!r} for the {cfg.target} target: {_elsewhere(name, known)}")
    return factories


def _elsewhere(name: str, known: list[str]) -> str:
    """The advice for a model this target lacks: the target that has it (`--target volatility`), else the list."""
    owners = [key for key, target in TARGETS.items() if name in target.baselines]
    if owners:
        return f"it is a {owners[0]} baseline: add `--target {owners[0]}` (this target's models: {known})"
    return f"choose from {known}"


def _with_defaults(cfg: RunConfig, name: str) -> Forecaster:
    """An architecture with its default hyperparameters: a fresh dict each time, as the forecaster keeps it."""
    return neural_forecaster(cfg, name, {})


def objective_name(cfg: RunConfig) -> str:
    """What the sweep minimises for the config's target (e.g. rmse_ratio, qlike_ratio)."""
    return target_of(cfg).objective_name


def fold_objective(model: Forecaster, series: list[SeriesArrays], fold: Fold, cfg: RunConfig) -> float:
    """One sweep fold's score, next to the target's reference on the same windows (< 1 beats it).

    Trials score the fold's model without the refit at the test start: they rank hyperparameters,
    and a refit per trial would double the sweep. The final evaluation refits (``backtest.refit``).
    """
    return target_of(cfg).objective(model, series, fold, Walk.of(cfg, refit=STALE), cfg)

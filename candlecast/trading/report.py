"""What people look at: plots, a markdown summary and an MLflow run linked to the traded model version.

The report folder is built in a temporary sibling and renamed into place at the end, so a failed run
leaves the previous report or none, never half of one.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from candlecast.io import write_parquet, write_text
from candlecast.settings import Settings
from candlecast.trading.backtest import TradeResult
from candlecast.trading.sources import BUY_AND_HOLD
from candlecast.trading.stats import markdown

PLOTS = ("equity.png", "drawdown.png", "positions.png", "volatility.png")


def write_report(result: TradeResult, out_dir: Path, header: str) -> dict[str, Path]:
    """Table (CSV, markdown), equity curves (parquet) and the three plots, into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        table = result.table
        write_text(table.to_csv(), tmp / "table.csv")
        write_parquet(_equities(result), tmp / "equity.parquet")
        _plot_equity(result, tmp / "equity.png")
        _plot_drawdown(result, tmp / "drawdown.png")
        _plot_positions(result, tmp / "positions.png")
        _plot_volatility(result, tmp / "volatility.png")
        write_text(summary_markdown(result, header), tmp / "summary.md")
        _swap_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = ["summary.md", "table.csv", "equity.parquet", *PLOTS]
    return {name: out_dir / name for name in names}


def summary_markdown(result: TradeResult, header: str) -> str:
    """The report's text: window, policy and costs, the table, the stops, the plots."""
    cfg, window = result.config, result.window
    p, x = cfg.policy, cfg.execution
    lines = [
        f"# Trading backtest: {header}",
        "",
        f"Bars {_day(window.start)} to {_day(window.end)} (UTC), holding period {window.horizon} candles. "
        f"{_policy_words(result)} (band {p.no_trade_band:g}, max leverage {p.max_leverage:g}, "
        f"max position {p.max_position:g}, drawdown stop {p.max_drawdown}, shorts {'on' if p.allow_short else 'off'}). "
        f"Execution `{x.mode}` (latency {x.latency_ms} ms), taker fee {x.taker_fee_bps:g} bp, maker fee "
        f"{x.maker_fee_bps:g} bp, slippage {x.slippage_bps:g} bp, starting capital {x.starting_capital:,.0f}.",
        "",
        markdown(result.table),
        "",
        *_comparison_lines(result.table),
        *_stop_lines(result),
        "Equity is marked to market from the fills (NautilusTrader, MARGIN/NETTING venue) at every bar close. "
        "`turnover` is traded notional per year in starting capitals; `exposure` is the mean gross exposure; "
        "`hit rate` is the share of bars held whose return was positive.",
        "",
        *[f"![{name}]({name})" for name in PLOTS],
    ]
    return "\n".join(lines) + "\n"


def _policy_words(result: TradeResult) -> str:
    p = result.config.policy
    if "forecast_vol_ratio" in result.table.columns:  # --portfolio: the weights are the targets, no policy sizing
        return "Portfolio weights as targets, long only and fully invested"
    return f"Policy `{p.name}` at target vol {p.target_vol:g}" if p.name == "vol_target" else f"Policy `{p.name}`"


_SIZING_NOTE = (
    "Sizing: realized over target volatility, the share of bars breaching the portfolio's one-bar VaR95 "
    "(Kupiec p), the mean squared error of each day's realized volatility against the target and its "
    "one-sided Diebold-Mariano p-value against the reference sizing."
)
_PORTFOLIO_NOTE = (
    "Portfolio: realized over forecast volatility of the exposures held, the share of bars breaching "
    "their one-bar VaR95 (Kupiec p), and the one-sided Diebold-Mariano p-value of the squared daily "
    "returns against equal weight's (small: the row's daily variance is lower)."
)


def _comparison_lines(table: pd.DataFrame) -> list[str]:
    """With --sizing-from (trading.sizing) or --portfolio (trading.weighting): its columns and what they mean."""
    from candlecast.trading.sizing import SIZING_COLUMNS
    from candlecast.trading.weighting import PORTFOLIO_COLUMNS

    if "vol_ratio" in table.columns:
        return [markdown(table, SIZING_COLUMNS), "", _SIZING_NOTE, ""]
    if "forecast_vol_ratio" in table.columns:
        return [markdown(table, PORTFOLIO_COLUMNS), "", _PORTFOLIO_NOTE, ""]
    return []


def _stop_lines(result: TradeResult) -> list[str]:
    stops = [f"{n} hit the drawdown stop at {_day(int(r.stop_ms))}" for n, r in result.runs.items() if r.stop_ms]
    return ["; ".join(stops) + ": flat from then on.", ""] if stops else []


def log_to_mlflow(
    settings: Settings, result: TradeResult, report: dict[str, Path], experiment: str, run_name: str
) -> str:
    """One MLflow run: policy as params, every strategy's statistics as metrics, the report as artifacts.

    When the traded forecasts come from a registered version, the run carries its name, version and
    training run id as tags, and the version gets a tag pointing back at this run.
    """
    from candlecast.registry import tracking

    client = tracking.client(settings)
    tags = tracking.lineage_tags() | {f"candlecast.{k}": v for k, v in result.lineage.items()}
    run = client.create_run(tracking.experiment_id(settings, experiment), run_name=run_name, tags=tags)
    run_id = run.info.run_id
    try:
        for key, value in _params(result).items():
            client.log_param(run_id, key, value)
        for name, stats in result.table.iterrows():
            for stat, value in stats.items():
                if pd.notna(value):
                    client.log_metric(run_id, f"{name}.{stat}", float(value))
        for path in report.values():
            client.log_artifact(run_id, str(path), artifact_path="trade_backtest")
        _link_version(client, result.lineage, run_id)
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _link_version(client, lineage: dict[str, str], run_id: str) -> None:
    name, version = lineage.get("model_name"), lineage.get("model_version")
    if name and version:
        client.set_model_version_tag(name, version, "trade_backtest.run_id", run_id)


def _params(result: TradeResult) -> dict[str, str]:
    flat = {f"policy.{k}": v for k, v in result.config.policy.model_dump().items()}
    flat |= {f"execution.{k}": v for k, v in result.config.execution.model_dump().items()}
    flat |= {"hold": result.window.horizon, "window_start": result.window.start, "window_end": result.window.end}
    return {k: str(v) for k, v in flat.items()}


def _equities(result: TradeResult) -> pd.DataFrame:
    parts = [run.equity.reset_index().assign(strategy=name) for name, run in result.runs.items()]
    return pd.concat(parts, ignore_index=True)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(10, 4.5), dpi=110)


def _times(run) -> pd.DatetimeIndex:
    return pd.to_datetime(run.equity.index, unit="ms", utc=True)


def _plot_equity(result: TradeResult, path: Path) -> None:
    fig, ax = _figure()
    for name, run in result.runs.items():
        style = {"color": "black", "linewidth": 1.6} if name == BUY_AND_HOLD else {"linewidth": 1.0}
        ax.plot(_times(run), run.equity["equity"] / run.equity["equity"].iloc[0], label=name, **style)
    ax.set(title="Equity (marked to market, after fees and slippage)", ylabel="growth of 1")
    ax.axhline(1.0, color="grey", linewidth=0.5)
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)


def _plot_drawdown(result: TradeResult, path: Path) -> None:
    fig, ax = _figure()
    for name, run in result.runs.items():
        equity = run.equity["equity"]
        ax.plot(_times(run), equity / equity.cummax() - 1.0, label=name, linewidth=1.0)
    ax.set(title="Drawdown from the equity peak", ylabel="drawdown")
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)


def _plot_positions(result: TradeResult, path: Path) -> None:
    name = next(iter(result.runs))
    run = result.runs[name]
    fig, ax = _figure()
    for col in [c for c in run.equity.columns if c.startswith("exposure_")]:
        ax.plot(_times(run), run.equity[col].fillna(0.0), label=col.removeprefix("exposure_"), linewidth=0.8)
    ax.set(title=f"Position of {name} (exposure, fraction of equity)", ylabel="exposure")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)


def _plot_volatility(result: TradeResult, path: Path) -> None:
    """Realized volatility over a trailing week against what the run aimed at (target) or forecast."""
    fig, ax = _figure()
    step = int(pd.Series(next(iter(result.runs.values())).equity.index).diff().median())
    bars = max(int(7 * 86_400_000 / step), 2)
    scale = (365.25 * 86_400_000 / step) ** 0.5
    for name, run in result.runs.items():
        realized = run.equity["equity"].pct_change().rolling(bars).std() * scale
        (line,) = ax.plot(_times(run), realized, label=f"{name} realized", linewidth=1.0)
        if "forecast_vol" in run.equity:
            forecast = (run.equity["forecast_vol"] ** 2).rolling(bars, min_periods=1).mean() ** 0.5
            ax.plot(_times(run), forecast, linestyle="--", color=line.get_color(), linewidth=0.8)
    if result.config.policy.name == "vol_target" and not any("forecast_vol" in r.equity for r in result.runs.values()):
        ax.axhline(result.config.policy.target_vol, color="black", linestyle="--", linewidth=0.8, label="target")
    ax.set(title="Realized volatility over a trailing week (dashed: forecast)", ylabel="annualized volatility")
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    path.write_bytes(buffer.getvalue())  # inside the temporary report folder: the folder swap is the atomic step


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp`` with renames only (the old report is removed after the swap)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _day(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")

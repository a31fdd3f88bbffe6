"""Trading tasks: forecasts to trade, the NautilusTrader backtest, today's signals. Each wraps one core call.

Tasks pass references (the forecast file, the report folder), never frames, and publish what people
read (the summary, the decisions) as Prefect artifacts.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from candlecast.config import RunConfig
from candlecast.settings import Settings
from candlecast.trading import runner
from candlecast.trading.config import TradingConfig
from candlecast.trading.signals import run_signals


@task(name="walk-forward-forecasts")
def walk_forward_forecasts(cfg: RunConfig, models: list[str], hold: int, path: Path) -> Path:
    """Out-of-sample forecasts of every model on the stored series, saved for the trade (and for audits)."""
    frames = runner.walk_forward_frames([str(s) for s in cfg.series], models, cfg, hold, Settings())
    return runner.save_frames(frames, path)


@task(name="registered-forecasts")
def registered_forecasts(cfg: RunConfig, hold: int, path: Path, version: str | None = None) -> tuple[Path, dict]:
    """The registered model's stored forecasts (with the naive references), saved; returns their lineage."""
    frames, lineage = runner.store_frames(Settings(), cfg, hold, version)
    return runner.save_frames(frames, path), lineage


@task(name="trade-backtest")
def trade(cfg: RunConfig, tcfg: TradingConfig, forecast_file: Path, out_dir: Path, lineage: dict) -> dict:
    """Every strategy through NautilusTrader next to buy-and-hold; the report logged to MLflow."""
    settings = Settings()
    market = runner.store_market(settings, cfg)
    frames = runner.file_frames(forecast_file)
    header = f"{', '.join(sorted(market.candles))} {market.timeframe}, {', '.join(frames)}"
    outcome = runner.trade(market, frames, tcfg, out_dir, header, lineage, settings, f"{cfg.name}-trading")
    create_markdown_artifact(
        key="trade-backtest", markdown=outcome.report["summary.md"].read_text(), description=header
    )
    return {
        "table": outcome.table.reset_index().to_dict(orient="records"),
        "report": {k: str(v) for k, v in outcome.report.items()},
        "mlflow_run_id": outcome.mlflow_run_id,
        "engine_seconds": outcome.engine_seconds,
    }


@task(name="signals")
def signals(cfg: RunConfig, tcfg: TradingConfig, source: str) -> dict:
    """Today's decisions per symbol and the portfolio view, stored with lineage and shown as an artifact."""
    outcome = run_signals(Settings(), cfg, tcfg, source=source, store=True)
    shown = ["symbol", "last_candle", "close", "forecast_price", "prob_up", "action", "target", "var_1d_95"]
    rows = outcome.decisions[[*shown, "model_version", "policy"]].round(6).to_dict(orient="records")
    create_table_artifact(key="signals", table=rows, description="today's decisions per symbol")
    return {"decisions": rows, "stored": [str(p) for p in outcome.stored]}

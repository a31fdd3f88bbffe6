"""The paper accounts' Prefect side: their summary as a markdown artifact when the loop reports to a server."""

from __future__ import annotations

from typing import Any

from candlecast.config import RunConfig
from candlecast.live.paper import PaperTrader, summary_markdown
from candlecast.settings import Settings

ARTIFACT_KEY = "paper-pnl"


def publish_summary(summary: dict[str, Any]) -> None:
    """One version of the ``paper-pnl`` artifact: every account and the book, PnL next to buy-and-hold."""
    from prefect.artifacts import create_markdown_artifact

    book = summary["book"] or {"pnl": 0.0, "buy_and_hold": 0.0}
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown="# Live paper trading\n\n" + summary_markdown(summary),
        description=f"paper PnL {book['pnl']:,.2f} vs buy-and-hold {book['buy_and_hold']:,.2f} after the same costs",
    )


def paper_trader(settings: Settings, cfg: RunConfig, predict_here: bool, to_prefect: bool) -> PaperTrader | None:
    """The loop's paper accounts when ``live.paper`` is on: no wait for forecasts made in process."""
    if not cfg.live.paper:
        return None
    wait = 0.0 if predict_here else cfg.live.paper_wait_s
    return PaperTrader(settings, cfg, wait, publish_summary if to_prefect else None)

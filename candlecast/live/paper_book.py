"""The paper book: every paper account, read from its files, per series and in total, beside buy-and-hold.

Files only (no engine): `candlecast status`, the ``paper-pnl`` artifact and the rehearsal read it.
Each account's buy-and-hold is its twin on the same venue (candlecast.trading.paper): the same
capital bought at the account's first bar, after the same fees and slippage, at the same cap, so
``excess`` (PnL minus buy-and-hold's PnL) is what the strategy's decisions earned. The book adds
the accounts: its capital, equity, PnL, fees and fills are sums, its drawdown that of the summed
equity (an account counts its starting capital before its first bar).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candlecast.io import read_json, read_jsonl
from candlecast.live.state import live_dir
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

#: What each number is, where it is shown (the status table's caption, the artifact's note).
MEANING = (
    "PnL: the account's equity (cash after every fill, fee and slippage, plus the position at the last close) "
    "minus its starting capital. Buy-and-hold: the same capital bought at the account's first bar on the same "
    "venue (same cap, fees, slippage and drawdown stop), then held. Excess: PnL minus buy-and-hold's PnL. "
    "Max drawdown: the largest fall of equity from its peak since the first bar."
)


def paper_dir(settings: Settings) -> Path:
    """``<home>/live/paper``: one folder per series."""
    return live_dir(settings) / "paper"


def read_ledger(folder: Path) -> list[dict[str, Any]]:
    """The ledger's whole lines, oldest first (a torn last line, from a kill mid-write, is not a bar)."""
    return read_jsonl(folder / "ledger.jsonl")


def max_drawdown(equity: np.ndarray, capital: float) -> float:
    """The largest fall from a running peak (the starting capital is the first), as a fraction of that peak."""
    curve = np.concatenate([[capital], np.asarray(equity, dtype="float64")])
    return float(np.max(1.0 - curve / np.maximum.accumulate(curve)))


def _measures(capital: float, equity: np.ndarray, hold: np.ndarray, fees: float, hold_fees: float) -> dict[str, Any]:
    """The numbers shown for an account or the book, from its equity and its buy-and-hold's, bar by bar."""
    pnl, bh = float(equity[-1]) - capital, float(hold[-1]) - capital
    return {
        "capital": capital, "equity": float(equity[-1]), "pnl": pnl, "pnl_pct": pnl / capital,
        "buy_and_hold": bh, "buy_and_hold_pct": bh / capital, "excess": pnl - bh, "excess_pct": (pnl - bh) / capital,
        "fees": fees, "buy_and_hold_fees": hold_fees, "max_drawdown": max_drawdown(equity, capital),
        "buy_and_hold_max_drawdown": max_drawdown(hold, capital),
    }  # fmt: skip


def paper_summary(settings: Settings) -> dict[str, Any]:
    """Every paper account (``series``, one dict each) and the ``book`` of them all, in the quote currency."""
    rows, curves = [], []
    for folder in sorted(p for p in paper_dir(settings).glob("*") if p.is_dir()):
        meta, ledger = read_json(folder / "account.json") or {}, read_ledger(folder)
        if not meta or not ledger:
            continue
        capital, last = float(meta["capital"]), ledger[-1]
        equity = np.array([r["equity"] for r in ledger], dtype="float64")
        hold = np.array([r["buy_hold"] for r in ledger], dtype="float64")
        fees = sum(f["fee"] for r in ledger for f in r["fills"])
        hold_fees = sum(f["fee"] for r in ledger for f in r.get("hold_fills", []))
        rows.append(
            {
                "series": meta["series"], "bars": len(ledger), "first": int(ledger[0]["t"]), "last": int(last["t"]),
                **_measures(capital, equity, hold, fees, hold_fees), "position": float(last["position"]),
                "fills": sum(len(r["fills"]) for r in ledger),
                "forecasts": sum(r.get("target") is not None for r in ledger),
            }
        )  # fmt: skip
        closes = np.array([r["t"] for r in ledger], dtype="int64") + timeframe_ms(
            SeriesKey.parse(meta["series"]).timeframe
        )
        curves.append((capital, pd.DataFrame({"equity": equity, "hold": hold}, index=closes)))
    return {"series": rows, "book": _book(rows, curves)}


def _book(rows: list[dict[str, Any]], curves: list[tuple[float, pd.DataFrame]]) -> dict[str, Any] | None:
    """The accounts together: sums, and the drawdown of their summed equity at every bar close of any of them."""
    if not rows:
        return None
    times = sorted(set().union(*(c.index for _, c in curves)))
    total = sum(c.reindex(times).ffill().fillna(capital) for capital, c in curves)
    capital = sum(r["capital"] for r in rows)
    return {
        "series": len(rows), "bars": sum(r["bars"] for r in rows), "first": min(r["first"] for r in rows),
        "last": max(r["last"] for r in rows), "fills": sum(r["fills"] for r in rows),
        **_measures(capital, total["equity"].to_numpy(), total["hold"].to_numpy(),
                    sum(r["fees"] for r in rows), sum(r["buy_and_hold_fees"] for r in rows)),
    }  # fmt: skip


def summary_line(summary: dict[str, Any]) -> str:
    """The book in one line (the end of a rehearsal): PnL next to buy-and-hold after the same costs."""
    book = summary["book"]
    if book is None:
        return "paper: no account has traded a bar yet (live.paper: true starts them)"
    return (
        f"paper: PnL {book['pnl']:+,.2f} vs buy-and-hold {book['buy_and_hold']:+,.2f} after the same costs "
        f"(excess {book['excess']:+,.2f}; fees {book['fees']:,.2f} vs {book['buy_and_hold_fees']:,.2f}) over "
        f"{book['bars']} bars of {book['series']} series, {book['fills']} fills, max drawdown "
        f"{100 * book['max_drawdown']:.1f}%"
    )


def summary_markdown(summary: dict[str, Any]) -> str:
    """Every account and the book as a markdown table, with what each number is (the Prefect artifact)."""
    lines = [
        "| series | bars | traded forecasts | fills | fees | position | equity | PnL | buy-and-hold | excess "
        "| max drawdown |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["series"]:
        lines.append(
            f"| {r['series']} | {r['bars']} | {r['forecasts']} | {r['fills']} | {r['fees']:,.2f} "
            f"| {r['position']:g} | {_cells(r)} |"
        )
    book = summary["book"]
    if book is not None:
        lines.append(f"| **book** | {book['bars']} | | {book['fills']} | {book['fees']:,.2f} | | {_cells(book)} |")
    return "\n".join(lines) + "\n\n" + MEANING


def _cells(r: dict[str, Any]) -> str:
    return " | ".join(
        [
            f"{r['equity']:,.2f}", money(r["pnl"], r["pnl_pct"]), money(r["buy_and_hold"], r["buy_and_hold_pct"]),
            money(r["excess"], r["excess_pct"]), f"{100 * r['max_drawdown']:.2f}%",
        ]
    )  # fmt: skip


def money(value: float, pct: float) -> str:
    """An amount in the quote currency with its percent of the capital: ``-1,234.50 (-1.23%)``."""
    return f"{value:,.2f} ({100 * pct:+.2f}%)"

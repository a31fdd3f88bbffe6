"""Performance statistics of an equity curve; the tearsheet ratios come from empyrical-reloaded.

Returns are bar-to-bar changes of the marked-to-market equity, annualized by the number of bars in a
year (crypto trades around the clock). Turnover, fees, exposure and the hit rate are computed here
because they need the fills and the positions, which empyrical does not see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlecast.trading.policy import YEAR_MS

#: The table's columns in order, with the label the terminal and the markdown summary print.
COLUMNS = {
    "total_return": "return",
    "annual_return": "annual",
    "annual_volatility": "vol",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown": "max DD",
    "turnover": "turnover",
    "fees": "fees",
    "exposure": "exposure",
    "hit_rate": "hit rate",
    "trades": "fills",
}


def performance(equity: pd.DataFrame, fills: pd.DataFrame, step_ms: int, capital: float) -> dict[str, float]:
    """Every statistic of one strategy run over its equity curve and fills."""
    import empyrical

    value = equity["equity"].to_numpy("float64")
    returns = pd.Series(value[1:] / value[:-1] - 1.0, index=equity.index[1:])
    bars_per_year = YEAR_MS / step_ms
    years = len(returns) / bars_per_year
    traded = float((fills["qty"].abs() * fills["price"]).sum()) if len(fills) else 0.0
    held = np.abs(equity["gross_exposure"].to_numpy("float64"))[:-1] > 1e-9  # position held into the next bar
    stats = {
        "total_return": float(value[-1] / value[0] - 1.0),
        "annual_return": _finite(empyrical.annual_return(returns, annualization=bars_per_year)),
        "annual_volatility": _finite(empyrical.annual_volatility(returns, annualization=bars_per_year)),
        "sharpe": _finite(empyrical.sharpe_ratio(returns, annualization=bars_per_year)),
        "sortino": _finite(empyrical.sortino_ratio(returns, annualization=bars_per_year)),
        "max_drawdown": _finite(empyrical.max_drawdown(returns)),
        "turnover": traded / capital / max(years, 1e-9),  # traded notional per year, in starting capitals
        "fees": float(fills["fee"].sum()) if len(fills) else 0.0,
        "exposure": float(np.mean(equity["gross_exposure"].to_numpy("float64")[1:-1])) if len(equity) > 2 else 0.0,
        "time_in_market": float(held.mean()) if len(held) else 0.0,
        "hit_rate": float((returns.to_numpy()[held] > 0).mean()) if held.any() else float("nan"),
        "t_stat": _t_stat(returns.to_numpy()),
        "trades": float(len(fills)),
        "bars": float(len(returns)),
        "final_equity": float(value[-1]),
    }
    return stats


def _t_stat(returns: np.ndarray) -> float:
    """Mean bar return over its standard error: how far from chance the PnL is (i.i.d. approximation)."""
    sd = returns.std(ddof=1) if len(returns) > 1 else 0.0
    return float(returns.mean() / sd * np.sqrt(len(returns))) if sd > 0 else 0.0


def _finite(value: float) -> float:
    value = float(value)
    return value if np.isfinite(value) else float("nan")


def markdown(table: pd.DataFrame, columns: dict[str, str] = COLUMNS) -> str:
    """The strategies' statistics as a GitHub markdown table (percentages where they read better)."""
    cols = [c for c in columns if c in table.columns]
    lines = ["| strategy | " + " | ".join(columns[c] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(format_stat(c, row[c]) for c in cols) + " |")
    return "\n".join(lines)


def format_stat(column: str, value: float) -> str:
    """A statistic as the table prints it: percentages for returns and shares, thousands for money."""
    if not np.isfinite(value):
        return "-"
    if column in ("total_return", "annual_return", "annual_volatility", "max_drawdown", "exposure", "hit_rate"):
        return f"{value:.1%}"
    if column == "var95_breaches":
        return f"{value:.2%}"
    if column == "tracking_mse":
        return f"{value:.4f}"
    if column in ("trades", "fees"):
        return f"{value:,.0f}"
    return f"{value:.2f}"

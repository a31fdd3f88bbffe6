"""Symbols in ccxt's unified form (BASE/QUOTE), checked before they name a series.

A series is stored under its symbol, so a symbol in an exchange's own spelling ('BTCUSDT') would
create a second, bogus series beside 'BTC/USDT'. Fetching checks symbols against the exchange's
market list (``pagination``); an import has no exchange to ask, so it checks the unified form and
suggests the likely spelling.
"""

from __future__ import annotations

import re

_UNIFIED = re.compile(r"^[A-Z0-9][A-Z0-9.]*/[A-Z0-9][A-Z0-9.]*$")
#: Quote currencies to split an exchange-style id such as 'BTCUSDT' with, longest first.
_QUOTES = sorted(
    ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BRL", "JPY", "BTC", "ETH", "BNB"),
    key=len,
    reverse=True,
)


def check_symbol(symbol: str) -> str:
    """``symbol`` if it is a unified spot symbol such as 'BTC/USDT'.

    Raises:
        ValueError: Any other spelling, with the unified one suggested when it can be guessed.
    """
    if _UNIFIED.match(symbol):
        return symbol
    guess = suggest_symbol(symbol)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    raise ValueError(
        f"symbol {symbol!r} is not in ccxt's unified form BASE/QUOTE{hint}: write it as ccxt does, e.g. 'BTC/USDT'"
    )


def suggest_symbol(symbol: str) -> str | None:
    """The unified spelling ``symbol`` most likely means: 'btc-usdt' and 'BTCUSDT' -> 'BTC/USDT'; else None."""
    text = symbol.strip().upper()
    for separator in ("/", "-", "_", " ", ":"):
        parts = text.split(separator)
        if len(parts) == 2 and all(parts):
            candidate = "/".join(parts)
            return candidate if _UNIFIED.match(candidate) else None
    quote = next((q for q in _QUOTES if text.endswith(q) and len(text) > len(q)), None)
    candidate = f"{text[: -len(quote)]}/{quote}" if quote else ""
    return candidate if _UNIFIED.match(candidate) else None

"""`candlecast emulate`: a local Binance-shaped exchange for demos and tests."""

from __future__ import annotations

from typing import Annotated

import typer

from deployments.commands.common import console


def emulate(
    symbols: Annotated[str, typer.Option(help="comma-separated unified symbols")] = "BTC/USDT,ETH/USDT",
    timeframe: str = "1h",
    days: Annotated[int, typer.Option(help="days of synthetic history up to now")] = 30,
    port: int = 8765,
    seed: int = 7,
) -> None:
    """Serve seeded synthetic candles through a local Binance-shaped API on 127.0.0.1 until Ctrl-C."""
    import time

    from candlecast.emulator import synthetic_emulator
    from candlecast.schema import timeframe_ms

    step = timeframe_ms(timeframe)
    now = int(time.time() * 1000)
    n = days * 86_400_000 // step
    start = (now // step - n + 1) * step
    emulator = synthetic_emulator(
        symbols.split(","), timeframe=timeframe, start_ms=start, n=n, seed=seed, now_ms=now, port=port
    )
    with emulator as emu:
        console.print(f"emulating Binance at {emu.url} ({symbols}, {timeframe}, {days} days); Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command()(emulate)

"""`candlecast emulate`: a local Binance-shaped exchange for demos and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from candlecast.deployments.commands.common import console


def emulate(
    files: Annotated[
        list[Path] | None,
        typer.Option("--file", "-f", help="replay a candle file (EXCHANGE_BASE-QUOTE_TF.csv[.gz]); repeatable"),
    ] = None,
    symbols: Annotated[str, typer.Option(help="comma-separated unified symbols (synthetic)")] = "BTC/USDT,ETH/USDT",
    timeframe: Annotated[str, typer.Option(help="timeframe of the synthetic candles")] = "1h",
    days: Annotated[int, typer.Option(min=1, help="days of synthetic history up to now")] = 30,
    seed: int = 7,
    port: int = 8765,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second (0: the clock stands still)")] = 1.0,
    rate_limit: Annotated[float | None, typer.Option(help="klines requests per second before answering 429")] = None,
    chaos: Annotated[float, typer.Option(min=0, max=1, help="share of klines requests that get a random fault")] = 0.0,
    faults: Annotated[str | None, typer.Option(help="comma-separated faults for --chaos (default: all)")] = None,
) -> None:
    """Serve candles through a local Binance-shaped API on 127.0.0.1 until Ctrl-C.

    Replayed files start with the clock just after their last candle (so every candle is closed); a
    synthetic history ends now. With --speed the clock runs on and new synthetic candles appear.
    """
    import time

    from candlecast.devtools.emulator import FAULTS, ExchangeEmulator, synthetic_emulator
    from candlecast.schema import timeframe_ms

    options: dict[str, Any] = {"port": port, "speed": speed, "rate_limit": rate_limit}  # ExchangeEmulator's
    try:
        if files:
            emulator = ExchangeEmulator.from_files(files, **options)
            emulator.now_ms = max(
                int(emulator.frame(s, tf)["timestamp"].iloc[-1]) + timeframe_ms(tf) for s, tf in emulator.series
            )
            what = ", ".join(f"{s} {tf}" for s, tf in emulator.series)
        else:
            step = timeframe_ms(timeframe)
            now = int(time.time() * 1000)
            n = days * 86_400_000 // step + 1
            start = (now // step - n + 1) * step
            # a long synthetic future, so the running clock keeps finding candles to serve
            emulator = synthetic_emulator(
                symbols.split(","), timeframe=timeframe, start_ms=start, n=n + 30 * 86_400_000 // step, seed=seed,
                now_ms=now, **options,
            )  # fmt: skip
            what = f"synthetic {symbols} {timeframe}, {days} days"
        if chaos:
            emulator.chaos(chaos, faults.split(",") if faults else FAULTS, seed=seed)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with emulator as emu:
        console.print(f"emulating Binance at {emu.url} ({what}); Ctrl-C stops")
        console.print(f"  candlecast ingest --exchange binance --api-url {emu.url} --symbols ... --no-rate-limit")
        console.print(f"  candlecast live --config ... --api-url {emu.url} --ws-url {emu.ws_url}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    """Add `candlecast emulate` to the CLI."""
    app.command()(emulate)

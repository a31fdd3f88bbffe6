"""How a fold's model meets its test block: as fitted before the calibration block, or refit as production does.

``stale`` scores the model fitted on the training range (early-stopped on its block) straight through
the test block: it stopped learning an early-stopping block, a calibration block and three purge gaps
before the test block begins. ``cutoff`` (the default) refits it at the test start on every window
whose targets are known by then (training, early-stopping and calibration rows), with what the fold
chose on its early-stopping block (the epoch count, ridge's penalty): the same ``refit`` the shipped
model gets at the data cutoff (candlecast.registry.refit). ``every`` refits again each ``every`` candles
inside the test block, as the live loop retrains. The intervals and VaR quantiles still come from the
calibration block's residuals of the model fitted before it: the refit model has seen those rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.interface import Forecaster
from candlecast.schema import Range


@dataclass(frozen=True)
class Refit:
    """The backtest's refit policy (``backtest.refit`` and ``backtest.refit_every``)."""

    mode: Literal["stale", "cutoff"] = "cutoff"
    every: int | None = None  # candles between refits inside a test block (None: only at its start)


CUTOFF = Refit()  # the default: refit at each test start
STALE = Refit("stale")


def known_at(s: SeriesArrays, t: int, step_ms: int) -> SeriesArrays:
    """The rows up to sample time ``t`` with every target step that closes after ``t`` hidden.

    What the data holds when the candle opening at ``t`` has closed, exactly as at a data cutoff:
    the step-k target of origin r is known once the candle opening at r + k candles has closed.
    """
    out = s.until(t)
    steps = np.arange(1, out.targets.shape[1] + 1)
    late = out.timestamps[:, None] + steps[None, :] * step_ms > t
    out.targets = np.where(late, np.nan, out.targets)
    return out


def refit_starts(test: Range, step_ms: int, refit: Refit) -> list[int]:
    """When the model is refit inside a test block: its start, then every ``refit.every`` candles."""
    if refit.mode == "stale":
        return []
    every = (refit.every or (test.end - test.start) // step_ms + 1) * step_ms
    return list(range(test.start, test.end + 1, every))


def forecast_test(
    model: Forecaster,
    series: list[SeriesArrays],
    rows: list[np.ndarray],
    test: Range,
    step_ms: int,
    refit: Refit,
    view: Callable[[SeriesArrays], SeriesArrays] = lambda s: s,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Forecasts of the test windows ``rows`` (per series), refitting at each of ``refit_starts``.

    Each refit gets the series as they stand at its start (``known_at``, then the target's ``view``)
    and fits on every window from the first candle to it; it forecasts the windows up to the next one.
    """
    starts = refit_starts(test, step_ms, refit)
    if not starts:
        return [model.forecast(view(s).inputs_only(), r) for s, r in zip(series, rows, strict=True)]
    first = min(int(s.timestamps[0]) for s in series)
    parts: list[list[tuple[np.ndarray, np.ndarray | None]]] = [[] for _ in series]
    for start, end in zip(starts, [*(t - 1 for t in starts[1:]), test.end], strict=True):
        chunks = [r[Range(start, end).mask(s.timestamps[r])] for s, r in zip(series, rows, strict=True)]
        if not any(len(c) for c in chunks):
            continue
        model.refit([view(known_at(s, start, step_ms)) for s in series], Range(first, start))
        for i, (s, c) in enumerate(zip(series, chunks, strict=True)):
            if len(c):
                parts[i].append(model.forecast(view(s).inputs_only(), c))
    out = []
    for s, r, p in zip(series, rows, parts, strict=True):
        if not p:  # no test window in this series: the model's own empty shapes
            out.append(model.forecast(view(s).inputs_only(), r))
            continue
        raws = [b for _, b in p if b is not None]  # a model gives bounds for every window or for none
        out.append((np.concatenate([a for a, _ in p]), np.concatenate(raws) if raws else None))
    return out

"""Lightning forecasters. MODELS is the explicit registry: config names a key, never an import path.

``lstm_family`` searches the architecture too: its hyperparameters carry ``architecture``.
"""

from collections.abc import Callable
from typing import Any

from candlecast.models.attention_lstm import AttentionLSTMModule
from candlecast.models.attention_lstm import search_space as attention_lstm_search_space
from candlecast.models.base import ForecastModule
from candlecast.models.cnn_lstm import CNNLSTMModule
from candlecast.models.cnn_lstm import search_space as cnn_lstm_search_space
from candlecast.models.losses import HeadLoss, LogVarianceQLike, PointQuantileLoss, pinball_loss
from candlecast.models.lstm import LSTMModule
from candlecast.models.lstm import search_space as lstm_search_space

MODELS: dict[str, tuple[type[ForecastModule], Callable[[Any], dict[str, Any]]]] = {
    "lstm": (LSTMModule, lstm_search_space),
    "attention_lstm": (AttentionLSTMModule, attention_lstm_search_space),
    "cnn_lstm": (CNNLSTMModule, cnn_lstm_search_space),
}
FAMILY = "lstm_family"
MODEL_CHOICES: frozenset[str] = frozenset([*MODELS, FAMILY])


def family_search_space(trial: Any) -> dict[str, Any]:
    """The architecture as one more choice; each architecture's own space is prefixed to stay distinct."""
    architecture = trial.suggest_categorical("architecture", sorted(MODELS))
    return {"architecture": architecture, **MODELS[architecture][1](_Prefixed(trial, architecture))}


def search_space_of(name: str) -> Callable[[Any], dict[str, Any]]:
    """The Optuna search space of a model name; the family's space chooses the architecture too."""
    return family_search_space if name == FAMILY else MODELS[name][1]


def resolve(name: str, hparams: dict[str, Any]) -> tuple[type[ForecastModule], dict[str, Any]]:
    """The class and constructor arguments for a model name and its (sweep) hyperparameters."""
    if name == FAMILY:
        params = dict(hparams)
        return MODELS[params.pop("architecture")][0], params
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose from {sorted(MODEL_CHOICES)}")
    return MODELS[name][0], dict(hparams)


class _Prefixed:
    """An Optuna trial whose parameter names carry the architecture, e.g. 'cnn_lstm.hidden_size'."""

    def __init__(self, trial: Any, prefix: str):
        self._trial, self._prefix = trial, prefix

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        suggest = getattr(self._trial, attr)
        return lambda name, *a, **kw: suggest(f"{self._prefix}.{name}", *a, **kw)


__all__ = [
    "FAMILY",
    "MODELS",
    "MODEL_CHOICES",
    "AttentionLSTMModule",
    "ForecastModule",
    "HeadLoss",
    "LogVarianceQLike",
    "PointQuantileLoss",
    "CNNLSTMModule",
    "LSTMModule",
    "family_search_space",
    "pinball_loss",
    "resolve",
    "search_space_of",
]

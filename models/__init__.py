"""Lightning forecasters. MODELS is the explicit registry: config names a key, never an import path."""

from collections.abc import Callable
from typing import Any

from models.base import BaseForecaster
from models.lstm import LSTMForecaster
from models.lstm import search_space as lstm_search_space

MODELS: dict[str, tuple[type[BaseForecaster], Callable[[Any], dict[str, Any]]]] = {
    "lstm": (LSTMForecaster, lstm_search_space),
}

__all__ = ["MODELS", "BaseForecaster", "LSTMForecaster"]

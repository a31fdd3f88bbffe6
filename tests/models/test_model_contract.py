"""The contract every forecaster in MODELS passes: shapes, learning, hyperparameters, determinism."""

import lightning.pytorch as pl
import pytest
import torch

from models import MODELS

N_FEATURES, HORIZON, LOOKBACK = 5, 3, 12


class _FixedTrial:
    """Enough of optuna.Trial to draw the first choice of every parameter."""

    def suggest_int(self, name, low, high, **_):
        return low

    def suggest_float(self, name, low, high, **_):
        return low

    def suggest_categorical(self, name, choices):
        return choices[0]


@pytest.fixture(params=sorted(MODELS))
def model_name(request) -> str:
    return request.param


def test_output_shape(model_name):
    cls, _ = MODELS[model_name]
    model = cls(n_features=N_FEATURES, horizon=HORIZON)
    out = model(torch.randn(7, LOOKBACK, N_FEATURES))
    assert out.shape == (7, HORIZON)


def test_hparams_match_constructor_and_search_space(model_name):
    cls, space = MODELS[model_name]
    params = space(_FixedTrial())
    model = cls(n_features=N_FEATURES, horizon=HORIZON, **params)
    for key, value in params.items():
        assert model.hparams[key] == value
    assert model.hparams["horizon"] == HORIZON


def test_overfits_a_tiny_batch(model_name):
    cls, _ = MODELS[model_name]
    pl.seed_everything(0, verbose=False)
    model = cls(n_features=N_FEATURES, horizon=HORIZON, lr=1e-2)
    x, y = torch.randn(16, LOOKBACK, N_FEATURES), torch.randn(16, HORIZON)
    opt = model.configure_optimizers()
    first = None
    for _ in range(300):
        opt.zero_grad()
        loss = model.training_step((x, y), 0)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.05 * first


def test_seeded_construction_is_deterministic(model_name):
    cls, _ = MODELS[model_name]
    pl.seed_everything(3, verbose=False)
    a = cls(n_features=N_FEATURES, horizon=HORIZON)
    pl.seed_everything(3, verbose=False)
    b = cls(n_features=N_FEATURES, horizon=HORIZON)
    x = torch.randn(2, LOOKBACK, N_FEATURES)
    assert torch.equal(a(x), b(x))

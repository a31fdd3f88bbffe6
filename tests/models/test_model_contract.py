"""The contract every forecaster in MODELS passes: shapes, learning, hyperparameters, determinism."""

import lightning.pytorch as pl
import optuna
import pytest
import torch

from candlecast.models import FAMILY, MODELS, family_search_space, pinball_loss, resolve

N_FEATURES, HORIZON, LOOKBACK = 5, 3, 12
QUANTILES = [0.1, 0.9]


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


def test_output_is_a_point_and_quantiles_per_step(model_name):
    cls, _ = MODELS[model_name]
    model = cls(n_features=N_FEATURES, horizon=HORIZON, quantiles=QUANTILES)
    out = model(torch.randn(7, LOOKBACK, N_FEATURES))
    assert out.shape == (7, HORIZON, 1 + len(QUANTILES))


def test_hparams_match_constructor_and_search_space(model_name):
    cls, space = MODELS[model_name]
    params = space(_FixedTrial())
    model = cls(n_features=N_FEATURES, horizon=HORIZON, quantiles=QUANTILES, **params)
    for key, value in params.items():
        assert model.hparams[key] == value
    assert model.hparams["horizon"] == HORIZON and list(model.hparams["quantiles"]) == QUANTILES
    rebuilt = cls(**model.hparams)  # what loading a bundle does
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in model.parameters())


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


def test_quantile_head_learns_the_quantiles(model_name):
    """Inputs carry no information: the heads must learn the target's 10% and 90% quantiles."""
    cls, _ = MODELS[model_name]
    pl.seed_everything(1, verbose=False)
    model = cls(n_features=N_FEATURES, horizon=1, lr=2e-2)
    opt = model.configure_optimizers()
    x = torch.zeros(128, 2, N_FEATURES)
    for _ in range(200):
        y = torch.randn(128, 1)
        opt.zero_grad()
        model.training_step((x, y), 0).backward()
        opt.step()
    q = model(x[:1])[0, 0, 1:]
    assert q[0].item() == pytest.approx(-1.28, abs=0.25) and q[1].item() == pytest.approx(1.28, abs=0.25)


def test_seeded_construction_is_deterministic(model_name):
    cls, _ = MODELS[model_name]
    pl.seed_everything(3, verbose=False)
    a = cls(n_features=N_FEATURES, horizon=HORIZON)
    pl.seed_everything(3, verbose=False)
    b = cls(n_features=N_FEATURES, horizon=HORIZON)
    x = torch.randn(2, LOOKBACK, N_FEATURES)
    assert torch.equal(a(x), b(x))


def test_cnn_lstm_is_causal_within_the_window():
    """The convolution pads on the left only: changing the last input step changes nothing before it."""
    cls, _ = MODELS["cnn_lstm"]
    model = cls(n_features=N_FEATURES, horizon=HORIZON).eval()
    x = torch.randn(1, LOOKBACK, N_FEATURES)
    y = x.clone()
    y[:, -1] += 1.0
    conv = lambda t: model.conv(model.pad(t.transpose(1, 2)))  # noqa: E731
    assert torch.equal(conv(x)[..., :-1], conv(y)[..., :-1])


def test_pinball_loss_values():
    y = torch.tensor([[1.0]])
    pred = torch.tensor([[[0.0, 2.0]]])  # quantiles 0.1 and 0.9
    # 0.1 * (1 - 0) = 0.1 ; (0.9 - 1) * (1 - 2) = 0.1
    assert pinball_loss(pred, y, torch.tensor([0.1, 0.9])).item() == pytest.approx(0.1)


def test_the_architecture_is_a_choice_of_the_family_search_space():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        params = family_search_space(trial)
        cls, kwargs = resolve(FAMILY, params)
        assert cls is MODELS[params["architecture"]][0]
        cls(n_features=N_FEATURES, horizon=HORIZON, **kwargs)  # every drawn set builds its model
        seen.add(params["architecture"])
        study.tell(trial, 0.0)
    assert seen == set(MODELS)

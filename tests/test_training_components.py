"""training.config, training.evaluate, training.augment, training.models, training.engine."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from ipdpp_train.augment import contrastive_view, random_crop, weak_augment
from ipdpp_train.config import AugmentConfig, CEConfig, Config, EvalConfig
from ipdpp_train.config_io import apply_overrides, config_from_dict, load_config, to_toml
from ipdpp_train.engine import derive_seed, make_schedule
from ipdpp_train.evaluate import evaluate_predictions, shot_thresholds
from ipdpp_train.models import build_encoder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_config_round_trip_and_overrides(tmp_path):
    config = apply_overrides(
        Config(), ["stage1.epochs=7", "data.class_order=[1, 0]", 'run.methods=["exact"]']
    )
    assert config.stage1.epochs == 7 and config.data.class_order == [1, 0]
    assert config.run.methods == ("exact",)
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config))
    assert load_config(path) == config
    assert config_from_dict(tomllib.loads(to_toml(Config()))) == Config()


@pytest.mark.parametrize(
    ("table", "error", "match"),
    [
        ({"stage1": {"epoch": 3}}, ValueError, "stage1.epoch"),
        ({"nonsense": {}}, ValueError, "nonsense"),
        ({"stage1": {"epochs": "many"}}, TypeError, "stage1.epochs"),
        ({"stage1": {"temperature": -1.0}}, ValueError, "stage1.temperature"),
        ({"stage2": {"finetune": "half"}}, ValueError, "stage2.finetune"),
        ({"stage2": {"alpha": "other"}}, ValueError, "stage2.alpha"),
        ({"run": {"methods": ["ce", "ce"]}}, ValueError, "run.methods"),
        ({"run": {"device": "tpu"}}, ValueError, "run.device"),
        ({"eval": {"many_threshold": 10.0}}, ValueError, "given together"),
        ({"data": {"class_order": "sorted"}}, ValueError, "class_order"),
        ({"data": {"source": "npz", "n_max": 10}}, ValueError, "used as given"),
        ({"data": {"profile": "flat"}}, ValueError, "data.profile"),
        ({"data": {"val_fraction": 1.0}}, ValueError, "data.val_fraction"),
        ({"data": {"image_size": 2}}, ValueError, "data.image_size"),
        ({"ce": {"steps": 0}}, ValueError, "ce.steps"),
        ({"stage1": {"warmup_steps": -1}}, ValueError, "stage1.warmup_steps"),
        ({"run": {"save_every": 0}}, ValueError, "run.save_every"),
        ({"eval": {"val_every": 0}}, ValueError, "eval.val_every"),
    ],
)
def test_config_errors_name_the_key(table, error, match):
    with pytest.raises(error, match=match):
        config_from_dict(table)


def test_override_syntax_errors():
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides(Config(), ["epochs=3"])
    with pytest.raises(ValueError, match="unknown section"):
        apply_overrides(Config(), ["stage9.epochs=3"])


CIFAR10_LT = (5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50)


def test_shot_thresholds_standard_derived_and_configured():
    # The standard 100 / 20 wherever they give every group a class (here the digits-LT sizes).
    standard = shot_thresholds(EvalConfig(), (120, 71, 43, 25, 15, 9, 5, 3, 2, 1))
    assert (standard.many, standard.few) == (100.0, 20.0)
    assert "standard" in standard.describe()
    # CIFAR-10-LT has no class below 20 images: derived thresholds, and the reason is stated.
    derived = shot_thresholds(EvalConfig(), CIFAR10_LT)
    assert (derived.many, derived.few) == (1077.0, 232.0)  # 50 * 100 ** (2/3), 50 * 100 ** (1/3)
    assert "would leave the few group(s) empty" in derived.describe()
    assert [derived.group(n) for n in CIFAR10_LT] == ["many"] * 3 + ["medium"] * 4 + ["few"] * 3
    # A tiny dataset (every class below 20): both upper groups would be empty.
    tiny = shot_thresholds(EvalConfig(), (16, 10, 6, 4))
    assert "many and medium" in tiny.note
    assert (tiny.many, tiny.few) == (10.0, 6.0)
    assert [tiny.group(n) for n in (16, 10, 6, 4)] == ["many", "medium", "medium", "few"]
    # On the CIFAR-100-LT range (500 ... 5) the log-thirds rule gives about the standard 100 / 20.
    wide = shot_thresholds(EvalConfig(), (500, 300, 5))  # no medium class: derived
    assert (wide.many, wide.few) == (107.0, 23.0)
    fixed = shot_thresholds(EvalConfig(many_threshold=500.0, few_threshold=200.0), CIFAR10_LT)
    groups = [fixed.group(n) for n in CIFAR10_LT]
    assert groups == ["many"] * 5 + ["medium"] * 2 + ["few"] * 3  # CIFAR-10-LT convention


def test_evaluate_predictions_hand_example():
    thresholds = shot_thresholds(EvalConfig(many_threshold=10.0, few_threshold=3.0), (20, 5, 1))
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    predictions = np.array([0, 0, 1, 0, 2, 0, 0, 0])
    m = evaluate_predictions(predictions, labels, (20, 5, 1), thresholds)
    assert m.per_class == (100.0, 50.0, 25.0)
    assert m.groups == ("many", "medium", "few")
    assert (m.overall, m.many, m.medium, m.few) == (50.0, 100.0, 50.0, 25.0)
    empty = evaluate_predictions(predictions, labels, (20, 20, 20), thresholds)
    assert empty.many == pytest.approx(175 / 3) and math.isnan(empty.few)
    with pytest.raises(ValueError, match="same shape"):
        evaluate_predictions(predictions[:3], labels, (20, 5, 1), thresholds)


def _batch(channels=1, size=8, n=6):
    return torch.rand((n, channels, size, size), generator=torch.Generator().manual_seed(0))


def test_random_crop_is_a_window_of_the_padded_image():
    x = _batch()
    out = random_crop(x, 2, torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert torch.equal(random_crop(x, 0, torch.Generator()), x)


@pytest.mark.parametrize("channels", [1, 3])
def test_views_are_deterministic_and_in_range(channels):
    x = _batch(channels)
    config = AugmentConfig()
    a = contrastive_view(x, config, torch.Generator().manual_seed(5))
    b = contrastive_view(x, config, torch.Generator().manual_seed(5))
    c = contrastive_view(x, config, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    w = weak_augment(x, config, torch.Generator().manual_seed(5))
    assert w.shape == x.shape


@pytest.mark.parametrize(("arch", "dim"), [("small_cnn", 32), ("resnet32", 64), ("resnet18", 512)])
def test_encoders_shapes(arch, dim):
    config = config_from_dict({"model": {"arch": arch, "width": 8}}).model
    encoder = build_encoder(config, 3, [0.5] * 3, [0.25] * 3)
    assert encoder.feature_dim == dim
    assert encoder(torch.rand(2, 3, 16, 16)).shape == (2, dim)


def test_schedule_in_epochs_and_in_steps():
    # 10 epochs of 10 steps, 2 warm-up epochs.
    epochs = make_schedule(CEConfig(epochs=10, warmup_epochs=2), 1.0, steps_per_epoch=10)
    assert (epochs.epochs, epochs.total_steps, epochs.warmup_steps) == (10, 100, 20)
    assert epochs.lr(0, 0) == pytest.approx(0.05)
    assert epochs.lr(2, 0) == pytest.approx(1.0)
    assert epochs.lr(6, 0) == pytest.approx(0.5)
    assert epochs.lr(9, 9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 79 / 80)))
    # steps: whole epochs covering the requested steps, whatever the dataset size.
    for per_epoch, expected in ((7, 143), (1000, 1), (3, 334)):
        fitted = make_schedule(CEConfig(steps=1000, warmup_steps=50), 0.1, per_epoch)
        assert fitted.epochs == expected and fitted.total_steps == expected * per_epoch
        assert fitted.warmup_steps == min(50, fitted.total_steps)
    # warmup_steps None: warmup_epochs worth of steps.
    assert make_schedule(CEConfig(steps=100, warmup_epochs=2), 0.1, 5).warmup_steps == 10


def test_seeds():
    assert derive_seed(1, "a") == derive_seed(1, "a") != derive_seed(1, "b")
    assert 0 <= derive_seed(2**40, "x") < 2**63


def test_progress_falls_back_to_lines_without_tqdm(monkeypatch, capsys):
    from ipdpp_train.engine import _Progress

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # makes `import tqdm.auto` fail
    progress = _Progress("stage1 (BNS)", 0, 2, enabled=True)
    assert progress.bar is None
    progress.update(1, {"loss": 0.5, "lr": 0.001, "seconds": 1.0})
    progress.close()
    assert "stage1 (BNS) epoch 1/2 loss=0.5 lr=0.001" in capsys.readouterr().err

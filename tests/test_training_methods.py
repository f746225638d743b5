"""The method registry: every built-in and a variant end to end, the logit-adjusted losses, post-hoc
τ chosen on validation only, stage 2's scores and samplers, and variant config errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from _training import K_PER_CLASS, tiny_table, write_tiny_npz
from torch import nn

import ipdpp
from ipdpp_train import stage2 as stage2_module
from ipdpp_train.baselines import choose_posthoc_tau
from ipdpp_train.config import AugmentConfig
from ipdpp_train.config_io import config_from_dict, load_config, to_toml
from ipdpp_train.data import load_long_tailed, to_device
from ipdpp_train.evaluate import ShotThresholds, Validator
from ipdpp_train.losses import (
    LogitAdjusted,
    ldam_drw_loss,
    log_prior,
    logit_adjusted_cross_entropy,
    make_criterion,
)
from ipdpp_train.methods import BUILTIN_METHODS, DEFAULT_METHODS
from ipdpp_train.models import Classifier, small_cnn
from ipdpp_train.pipeline import run_experiment
from ipdpp_train.scores import diversity_features, fold_of, score_pass, scoring_view

COUNTS = (16, 10, 6, 4)


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _rounds(run_dir: Path, method: str) -> list[dict]:
    saved = torch.load(run_dir / method / "checkpoint.pt", weights_only=False)
    return saved["state"]["rounds"]


def test_every_builtin_and_a_variant_end_to_end(tiny_npz, tmp_path):
    new = [m for m in BUILTIN_METHODS if m not in DEFAULT_METHODS]
    table = tiny_table(tiny_npz, tmp_path, methods=[*new, "exact-kmin-oof"])
    table["variants"] = [
        {"name": "exact-kmin-oof", "sampler": "exact", "k": "min", "finetune": "classifier",
         "scores": "out-of-fold", "loss": "logit-adjusted", "loss_tau": 0.5},
    ]  # fmt: skip
    result = run_experiment(config_from_dict(table))
    assert list(result.metrics) == [*new, "exact-kmin-oof"]
    for metrics in result.metrics.values():
        assert 0 <= metrics.overall <= 100 and len(metrics.per_class) == 4
    run_dir = tmp_path / "tiny"
    results = json.loads((run_dir / "results.json").read_text())
    notes = results["method_notes"]
    assert notes["exact-kmin-oof"] == {
        "k_per_class": min(COUNTS),
        "finetune": "classifier",
        "scores": "out-of-fold",
    }
    assert notes["ce+crt"]["finetune"] == "classifier" and "scores" not in notes["ce+crt"]
    assert notes["ce+la"]["posthoc_tau"] in table.get("eval", {}).get(
        "posthoc_tau_grid", (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    )
    assert "| CE + classifier re-training (cRT) |" in result.table
    assert "| exact-kmin-oof |" in result.table
    # ce+crt and ce+la need the CE model: it is trained once, in ce/, though not reported.
    assert (run_dir / "ce" / "checkpoint.pt").is_file() and "ce" not in result.metrics
    # ce+la is the CE model itself with shifted logits.
    assert isinstance(result.models["ce+la"], LogitAdjusted)
    # cRT keeps the CE encoder, re-trains a new head.
    ce = torch.load(run_dir / "ce" / "checkpoint.pt", weights_only=False)["modules"]["model"]
    crt = result.models["ce+crt"].state_dict()
    assert all(torch.equal(crt[f"encoder.inner.{k[8:]}"], v) for k, v in ce.items()
               if k.startswith("encoder."))  # fmt: skip
    assert not torch.equal(crt["head.weight"], ce["head.weight"])
    # Sampled items per epoch: min(k, N_c) per class for every subset sampler and cRT.
    for method in ("fixed-random", "features", "greedy"):
        log = json.loads((run_dir / method / "log.json").read_text())
        assert [r["subset"] for r in log if "subset" in r] == [sum(min(5, n) for n in COUNTS)] * 2
    features_log = json.loads((run_dir / "features" / "log.json").read_text())
    assert features_log[0]["feature_map"] in ("linear", "random-fourier")
    # The out-of-fold variant trained one copy per fold beside the model.
    saved = torch.load(run_dir / "exact-kmin-oof" / "checkpoint.pt", weights_only=False)
    assert set(saved["modules"]) == {"model", "scorer0", "scorer1"}


def test_fixed_random_draws_once_and_pairs_with_random(tiny_npz, tmp_path):
    table = tiny_table(tiny_npz, tmp_path, methods=["random", "fixed-random"])
    table["stage2"].update(epochs=4, resample_every=1)
    run_experiment(config_from_dict(table))
    fixed = _rounds(tmp_path / "tiny", "fixed-random")
    drawn = _rounds(tmp_path / "tiny", "random")
    assert [r["round"] for r in fixed] == [0, 1, 2, 3]
    assert all(np.array_equal(r["subset"], fixed[0]["subset"]) for r in fixed)
    # Round 0 uses the seed every method shares, so the fixed subset is random's first one;
    # random then re-draws.
    assert np.array_equal(fixed[0]["subset"], drawn[0]["subset"])
    assert not all(np.array_equal(r["subset"], drawn[0]["subset"]) for r in drawn[1:])


def test_samplers_and_scorings_are_paired_by_seed_and_round(tiny_npz, tmp_path, monkeypatch):
    # Given the same subsets, samplers that use p (exact, greedy, the feature kernel) and the
    # scoring rules (augmented, clean, out-of-fold: its copies have their own streams) must end
    # with identical weights: nothing of stage 2's randomness is keyed by the method.
    def same_subset(labels, p, k, *, mode, alpha, seed, features=None):
        rng = np.random.default_rng(seed)
        return np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:k] for c in np.unique(labels)]
        )

    monkeypatch.setattr(ipdpp, "balanced_subset", same_subset)
    table = tiny_table(tiny_npz, tmp_path, methods=["exact", "greedy", "features", "e-clean",
                                                    "e-oof"])  # fmt: skip
    table["variants"] = [
        {"name": "e-clean", "sampler": "exact", "scores": "clean"},
        {"name": "e-oof", "sampler": "exact", "scores": "out-of-fold"},
    ]
    result = run_experiment(config_from_dict(table))
    weights = [result.models[m].state_dict() for m in result.models]
    for other in weights[1:]:
        assert all(torch.equal(weights[0][k], other[k]) for k in weights[0])


def test_logit_adjusted_loss_and_balanced_softmax_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], dtype=torch.float64)
    labels = torch.tensor([1, 0])
    counts = (50, 10, 2)
    prior = log_prior(counts, dtype=torch.float64)
    tau = 0.7
    expected = 0.0
    for z, y in zip(logits.tolist(), labels.tolist()):
        shifted = [zj + tau * math.log(n / sum(counts)) for zj, n in zip(z, counts)]
        expected -= shifted[y] - math.log(sum(math.exp(s) for s in shifted))
    got = logit_adjusted_cross_entropy(logits, labels, prior, tau)
    assert float(got) == pytest.approx(expected / 2, rel=1e-12)
    # Balanced softmax (Ren et al. 2020): -log(n_y e^{z_y} / sum_j n_j e^{z_j}) = tau 1.
    balanced = 0.0
    for z, y in zip(logits.tolist(), labels.tolist()):
        weights = [n * math.exp(zj) for zj, n in zip(z, counts)]
        balanced -= math.log(weights[y] / sum(weights))
    got = logit_adjusted_cross_entropy(logits, labels, prior, 1.0)
    assert float(got) == pytest.approx(balanced / 2, rel=1e-12)
    with pytest.raises(ValueError, match="counts"):
        log_prior((3, 0, 1))
    with pytest.raises(ValueError, match="prior_log"):
        logit_adjusted_cross_entropy(logits, labels, prior[:2], 1.0)


def test_ldam_drw_loss_by_hand():
    cosines = torch.tensor([[0.9, -0.2, 0.1], [0.3, 0.4, -0.5]], dtype=torch.float64)
    labels = torch.tensor([2, 0])
    counts = (81, 16, 1)
    margins = [0.5 * (1 / n) ** 0.25 for n in counts]  # 0.5 * (n_min / n)^(1/4)
    w = [(1 - 0.9999) / (1 - 0.9999**n) for n in counts]
    w = [3 * v / sum(w) for v in w]
    plain, weighted, total = 0.0, 0.0, 0.0
    for z, y in zip(cosines.tolist(), labels.tolist()):
        s = [30.0 * (zj - (margins[y] if j == y else 0.0)) for j, zj in enumerate(z)]
        nll = -(s[y] - math.log(sum(math.exp(v) for v in s)))
        plain += nll / 2
        weighted += w[y] * nll
        total += w[y]
    assert float(ldam_drw_loss(cosines, labels, counts, False)) == pytest.approx(plain, rel=1e-12)
    got = ldam_drw_loss(cosines, labels, counts, True)
    assert float(got) == pytest.approx(weighted / total, rel=1e-12)
    # Deferred: the criterion re-weights from 80 % of the phase on (epoch 8 of 10).
    criterion = make_criterion("ldam-drw", 1.0, counts, 10, torch.device("cpu"))
    assert float(criterion(cosines, labels, 7)) == pytest.approx(plain, rel=1e-12)
    assert float(criterion(cosines, labels, 8)) == pytest.approx(weighted / total, rel=1e-12)


def _biased_validator(labels: torch.Tensor) -> Validator:
    # Items are one-hot "images" of their class; a balanced validation split of 3 classes.
    x = torch.nn.functional.one_hot(labels, 3).double()
    thresholds = ShotThresholds(10.0, 2.0, "test")
    return Validator(x, labels, x, labels, (50, 10, 2), thresholds, 64)


def test_posthoc_tau_is_chosen_on_validation():
    # Logits favour the head class by its log prior: tau = 1 removes the bias exactly, and the
    # validation split (where every class is as frequent) rewards that.
    prior = log_prior((50, 10, 2), dtype=torch.float64)
    model = nn.Linear(3, 3, bias=True).double()
    with torch.no_grad():
        model.weight.copy_(0.5 * torch.eye(3, dtype=torch.float64))
        model.bias.copy_(prior)
    labels = torch.arange(3).repeat(4)
    tau, scores = choose_posthoc_tau(model, (50, 10, 2), _biased_validator(labels), (0.0, 1.0))
    assert tau == 1.0 and scores == {"0": pytest.approx(100 / 3), "1": 100.0}
    # Ties go to the first (least) τ.
    tau, _ = choose_posthoc_tau(model, (50, 10, 2), _biased_validator(labels), (1.0, 1.5))
    assert tau == 1.0
    empty = _biased_validator(labels[:0])
    with pytest.raises(ValueError, match="posthoc_tau"):
        choose_posthoc_tau(model, (50, 10, 2), empty, (0.0,))


def test_posthoc_tau_ignores_the_test_labels(tiny_npz, tmp_path):
    data = dict(np.load(tiny_npz))
    data["y_test"] = np.random.default_rng(1).permutation(data["y_test"])
    permuted = tmp_path / "permuted.npz"
    np.savez(permuted, **data)
    chosen = []
    for name, npz in (("a", tiny_npz), ("b", permuted)):
        table = tiny_table(npz, tmp_path / name, methods=["ce", "ce+la"])
        table["ce"].update(epochs=12, warmup_epochs=1)
        table["eval"] = {"posthoc_tau_grid": [0.0, 1.0, 4.0, 16.0]}  # large τ: too far
        result = run_experiment(config_from_dict(table))
        notes = json.loads((tmp_path / name / "tiny" / "results.json").read_text())
        chosen.append((notes["method_notes"]["ce+la"], result.metrics["ce"].per_class))
    assert chosen[0][0] == chosen[1][0]  # τ and every validation score
    assert len(set(chosen[0][0]["posthoc_validation"].values())) > 1  # τ mattered
    assert chosen[0][1] != chosen[1][1]  # while the test results did change


def test_posthoc_tau_needs_validation_images_before_training(tiny_npz, tmp_path):
    table = tiny_table(tiny_npz, tmp_path, val_per_class=0, methods=["ce+la"])
    with pytest.raises(ValueError, match='posthoc_tau = "validation" needs validation'):
        run_experiment(config_from_dict(table))
    assert not (tmp_path / "tiny" / "ce").exists()


def _tiny_model(seed: int = 0) -> tuple[Classifier, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = Classifier(small_cnn(1, (0.5,), (0.25,), width=4), 4)
    x = torch.rand(40, 1, 8, 8)
    return model, x, torch.arange(4).repeat(10)


def test_augmented_scores_differ_from_clean_and_are_keyed_by_round():
    model, x, y = _tiny_model()
    model.train()
    augment = AugmentConfig(flip=True, crop_padding=2)
    clean, _ = score_pass(model, x, y)
    again = score_pass(model, x, y, scoring_view(augment, 0, 3, x.device))[0]
    view = score_pass(model, x, y, scoring_view(augment, 0, 3, x.device))[0]
    other_round = score_pass(model, x, y, scoring_view(augment, 0, 4, x.device))[0]
    assert model.training  # eval mode during scoring only
    assert torch.equal(view, again) and not torch.equal(view, other_round)
    assert not torch.allclose(view, clean)
    with torch.no_grad():
        model.eval()
        by_hand = torch.softmax(model(x).double(), 1)[torch.arange(40), y]
    assert torch.allclose(clean, by_hand, atol=1e-6)


def test_out_of_fold_scores_come_from_a_copy_that_never_trained_on_the_item(
    tiny_npz, tmp_path, monkeypatch
):
    trained: dict[str, list[np.ndarray]] = {}
    real_epoch = stage2_module.supervised_epoch

    def spy_epoch(model, optimizer, data, indices, *args):
        purpose = next(a for a in args if isinstance(a, str))
        trained.setdefault(purpose, []).append(np.asarray(indices).copy())
        return real_epoch(model, optimizer, data, indices, *args)

    scored: list[tuple[int, torch.Tensor]] = []
    real_score = stage2_module.score_pass

    def spy_score(model, x, y, *args, **kwargs):
        scored.append((id(model), x.clone()))
        return real_score(model, x, y, *args, **kwargs)

    monkeypatch.setattr(stage2_module, "supervised_epoch", spy_epoch)
    monkeypatch.setattr(stage2_module, "score_pass", spy_score)
    table = tiny_table(tiny_npz, tmp_path, methods=["exact"])
    table["stage2"].update(scores="out-of-fold", resample_every=1)
    config = config_from_dict(table)
    run_experiment(config)
    data = to_device(load_long_tailed(config.data), torch.device("cpu"))
    folds = fold_of(data.host.y_train, 2, 0)
    assert np.bincount(folds).tolist() == [18, 18]  # class-stratified halves of 36 items
    assert len(scored) == 2 * 3  # two copies score their own fold in each of three rounds
    copies = set()
    for model_id, x in scored:
        rows = [int(torch.nonzero((data.x_train == row).flatten(1).all(1))[0]) for row in x]
        (fold,) = set(folds[rows].tolist())  # every scoring call sees one fold only
        assert sorted(rows) == np.flatnonzero(folds == fold).tolist()
        copies.add((model_id, fold))
    assert len(copies) == 2  # the same copy scores the same fold in every round
    for f in (0, 1):
        for indices in trained[f"stage2-oof{f}"]:
            assert indices.size and not (folds[indices] == f).any()  # never its own fold
    # The main model trained on whole subsets; the copies on their complements of them.
    main = trained["stage2"]
    for epoch, subset in enumerate(main):
        for f in (0, 1):
            assert sorted(trained[f"stage2-oof{f}"][epoch]) == sorted(subset[folds[subset] != f])


def test_diversity_features_lift_when_the_features_lack_rank():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [40, 12])
    features = rng.standard_normal((52, 16))
    rows, kind = diversity_features(features, labels, 5, seed=0)
    assert kind == "linear" and rows.shape == (52, 16)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    rows, kind = diversity_features(features, labels, 20, seed=0)
    assert kind == "random-fourier" and rows.shape == (52, 40)
    p = rng.uniform(0.1, 0.9, 52)
    kept = ipdpp.balanced_subset(labels, p, 20, seed=1, features=rows)
    assert np.bincount(labels[kept]).tolist() == [20, 12]


VARIANT_ERRORS = [
    ({"name": "v", "samplr": "exact"}, "variants[0].samplr"),
    ({"name": "v", "sampler": "magic"}, "variants[0].sampler must be one of"),
    ({"name": "v", "k": "max"}, "variants[0].k must be one of"),
    ({"name": "v", "k": 0}, "variants[0].k must be positive"),
    ({"name": "v", "finetune": "half"}, "variants[0].finetune must be one of"),
    ({"name": "v", "loss": "focal"}, "variants[0].loss must be one of"),
    ({"name": "v", "posthoc_tau": "test"}, "variants[0].posthoc_tau must be a number"),
    ({"name": "v", "posthoc_tau": -1.0}, "variants[0].posthoc_tau must be >= 0"),
    ({"name": "v", "scores": "noisy"}, "variants[0].scores must be one of"),
    ({"name": "v", "encoder": "scratch", "sampler": "exact"}, 'variants[0]: encoder = "scratch"'),
    ({"name": "v", "finetune": "none"}, 'variants[0].finetune = "none"'),
    ({"name": "v", "loss": "ldam-drw"}, 'variants[0].loss = "ldam-drw" trains from scratch'),
    ({"name": "exact"}, "variants[0].name 'exact' is already a built-in"),
    ({"name": "a/b"}, "cannot name an output folder"),
    ({"sampler": "exact"}, "variants[0].name is required"),
]


@pytest.mark.parametrize(("variant", "message"), VARIANT_ERRORS)
def test_variant_errors_name_the_key(tmp_path, variant, message):
    table = tiny_table(tmp_path / "x.npz", tmp_path)
    table["variants"] = [variant]
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[").replace(
        "]", r"\]")):  # fmt: skip
        config_from_dict(table)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("stage2", "scores", "noisy", "stage2.scores must be one of augmented, clean"),
        ("stage2", "score_folds", 1, "stage2.score_folds must be >= 2"),
        ("eval", "posthoc_tau_grid", [], "eval.posthoc_tau_grid must be a non-empty"),
        ("eval", "posthoc_tau_grid", [0.0, -1.0], "eval.posthoc_tau_grid must be a non-empty"),
    ],
)
def test_scoring_and_grid_errors_name_the_key(tmp_path, section, key, value, message):
    table = tiny_table(tmp_path / "x.npz", tmp_path)
    table.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=message):
        config_from_dict(table)


def test_variants_read_from_toml_and_round_trip(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text(
        '[run]\nmethods = ["ce", "exact-kmin"]\n\n'
        '[[variants]]\nname = "exact-kmin"\nsampler = "exact"\nk = "min"\n'
        'finetune = "classifier"\n\n[[variants]]\nname = "k7"\nk = 7\nposthoc_tau = 0.5\n'
    )
    config = load_config(path)
    assert [v.name for v in config.variants] == ["exact-kmin", "k7"]
    assert config.variants[1].k == 7 and config.variants[1].posthoc_tau == 0.5
    again = tmp_path / "again.toml"
    again.write_text(to_toml(config))
    assert load_config(again) == config
    table = tiny_table(tmp_path / "x.npz", tmp_path, methods=["exact-kmin"])
    with pytest.raises(ValueError, match="run.methods must be distinct entries of .*exact"):
        config_from_dict(table)
    table["variants"] = [{"name": "twice"}, {"name": "twice"}]
    with pytest.raises(ValueError, match=r"variants\[1\].name 'twice' is already an earlier"):
        config_from_dict(table)


def test_k_rules_and_subset_size(tiny_npz, tmp_path):
    table = tiny_table(tiny_npz, tmp_path, methods=["k10x", "k3"])
    table["stage2"].update(epochs=1, k_per_class=None)
    table["variants"] = [{"name": "k10x", "sampler": "random", "k": "10x-min"},
                         {"name": "k3", "sampler": "random", "k": 3}]  # fmt: skip
    run_experiment(config_from_dict(table))
    for method, k in (("k10x", 10 * min(COUNTS)), ("k3", 3)):
        rounds = _rounds(tmp_path / "tiny", method)
        assert len(rounds[0]["subset"]) == sum(min(k, n) for n in COUNTS), method
    assert K_PER_CLASS == 5

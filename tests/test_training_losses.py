"""training.losses (BNS, paper Eq. 12, and the released-code variant) and the group sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ipdpp_train.losses import bns_loss, bns_loss_code, same_class_partners
from ipdpp_train.samplers import class_group_batches, shard, shuffled_batches


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def _reference_bns(q, v, labels, m, tau):
    """Eq. 12 written as loops over anchors, partners and negatives."""
    q = F.normalize(q, dim=1).tolist()
    v = F.normalize(v, dim=1).tolist()
    labels = labels.tolist()
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    total = 0.0
    for i, yi in enumerate(labels):
        same = [j for j, y in enumerate(labels) if y == yi]
        start = same.index(i)
        group = [same[(start + s) % len(same)] for s in range(min(m, len(same) - 1) + 1)]
        negatives = [j for j, y in enumerate(labels) if y != yi]
        terms = 0.0
        for a in group:
            terms += _log_sigmoid(dot(q[a], v[i]) / tau)
            terms += sum(_log_sigmoid(-dot(q[a], v[j]) / tau) for j in negatives)
        total += -terms / len(group)
    return total / len(labels)


def test_bns_hand_value_two_images():
    # q = v = e1 for both images, different classes, tau = 1: each anchor has positive logit 1
    # and one negative with logit 1, so L = -log sig(1) - log sig(-1) = log(1 + e^-1) + log(1 + e).
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1])
    expected = math.log1p(math.exp(-1)) + math.log1p(math.e)
    assert bns_loss(q, q.clone(), labels, m=0, temperature=1.0).item() == pytest.approx(expected)


def test_same_class_pairs_are_never_negatives():
    # Class 0 all at e1, class 1 all at e2, tau = 0.05: same-class similarity 20, cross-class 0.
    # If any same-class key were a negative a term log sig(-20) ~ -20 would appear. As written,
    # every anchor scores -log sig(20) + (#other-class keys) * log 2.
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    labels = torch.tensor([0, 0, 0, 1, 1])
    z = torch.stack([e1, e1, e1, e2, e2])
    for m in (0, 1, 2, 5):
        loss = bns_loss(z, z.clone(), labels, m=m, temperature=0.05).item()
        expected = -_log_sigmoid(20.0) + (3 * 2 + 2 * 3) / 5 * math.log(2)
        assert loss == pytest.approx(expected, rel=1e-6), m


@pytest.mark.parametrize("m", [0, 1, 2, 4])
def test_bns_matches_loop_reference(m):
    gen = torch.Generator().manual_seed(m)
    labels = torch.tensor([2, 0, 1, 0, 2, 0, 2, 1, 0, 3])  # class sizes 4, 2, 3, 1
    q = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    v = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    got = bns_loss(q, v, labels, m=m, temperature=0.3).item()
    assert got == pytest.approx(_reference_bns(q, v, labels, m, 0.3), rel=1e-10)


def test_partners_are_cyclic_same_class_members():
    labels = torch.tensor([0, 1, 0, 0, 1, 2])
    index, valid = same_class_partners(labels, 2)
    assert index.tolist() == [[0, 2, 3], [1, 4, 1], [2, 3, 0], [3, 0, 2], [4, 1, 4], [5, 5, 5]]
    assert valid.tolist() == [
        [True, True, True],
        [True, True, False],
        [True, True, True],
        [True, True, True],
        [True, True, False],
        [True, False, False],
    ]
    assert torch.all(labels[index] == labels[:, None])


def test_bns_rejects_bad_input():
    q = torch.randn(3, 2)
    with pytest.raises(ValueError, match="same shape"):
        bns_loss(q, torch.randn(3, 3), torch.tensor([0, 1, 0]), 1, 0.5)
    with pytest.raises(ValueError, match="labels must have shape"):
        bns_loss(q, q, torch.tensor([0, 1]), 1, 0.5)
    with pytest.raises(ValueError, match="temperature"):
        bns_loss(q, q, torch.tensor([0, 1, 0]), 1, 0.0)
    with pytest.raises(ValueError, match="m must be"):
        bns_loss(q, q, torch.tensor([0, 1, 0]), -1, 0.5)


def test_code_variant_hand_value():
    # Two classes, two images each, all views of class 0 at e1 and of class 1 at e2, tau = 1:
    # same-label pairs of distinct views have cos 1, different-label pairs cos 0, so
    # L = -log sig(e) - log sig(-1).
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    z = torch.stack([e1, e1, e2, e2])
    labels = torch.tensor([0, 0, 1, 1])
    expected = -_log_sigmoid(math.e) - _log_sigmoid(-1.0)
    assert bns_loss_code(z, z.clone(), labels, 1.0).item() == pytest.approx(expected)


def test_class_group_batches_give_partners():
    labels = np.repeat(np.arange(5), [40, 17, 7, 3, 1])
    m = 3
    for epoch in range(3):
        batches = class_group_batches(labels, 32, m, seed=4, epoch=epoch)
        seen = np.concatenate(batches)
        assert set(seen.tolist()) == set(range(len(labels)))  # every image at least once
        for batch in batches:
            assert len(batch) <= 32
            # Whole groups only: m + 1 images of a class, or all of a class smaller than that.
            for c, count in zip(*np.unique(labels[batch], return_counts=True)):
                size = np.sum(labels == c)
                assert count % (m + 1) == 0 if size > m else count == size
            for i in batch:
                same = np.sum(labels[batch] == labels[i]) - 1
                assert same >= min(m, np.sum(labels == labels[i]) - 1)
    again = class_group_batches(labels, 32, m, seed=4, epoch=2)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_shuffled_batches_and_shard():
    batches = shuffled_batches(10, 3, seed=0, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [len(b) for b in shuffled_batches(10, 3, 0, 0, drop_last=True)] == [3, 3, 3]
    parts = [shard(batches, r, 2) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 2
    with pytest.raises(ValueError, match="cannot be shared"):
        shard(batches[:1], 0, 2)

"""Epoch batch orders: plain shuffles and stage 1's same-class groups.

Both are pure functions of (labels or size, seed, epoch), so a resumed run replays the same
batches, and both shard whole batches across DistributedDataParallel ranks.
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_group_batches", "shard", "shuffled_batches"]


def _rng(seed: int, epoch: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, purpose])


def shuffled_batches(
    n: int, batch_size: int, seed: int, epoch: int, *, drop_last: bool = False
) -> list[np.ndarray]:
    """A random permutation of range(n) cut into batches of ``batch_size`` (int64 arrays)."""
    if n < 0 or batch_size < 1:
        raise ValueError(f"need n >= 0 and batch_size >= 1; got n={n}, batch_size={batch_size}")
    perm = _rng(seed, epoch, 1).permutation(n)
    stop = (n // batch_size) * batch_size if drop_last else n
    return [perm[i : i + batch_size] for i in range(0, stop, batch_size)]


def class_group_batches(
    labels: np.ndarray, batch_size: int, partners: int, seed: int, epoch: int
) -> list[np.ndarray]:
    """Batches made of same-class groups of ``partners + 1`` images, for the BNS loss.

    Each class is shuffled and cut into groups of ``g = partners + 1``; a class with at least g
    images fills its last, short group with other random members of the class, so every image
    in a batch has ``partners`` same-class companions whenever its class has that many images.
    The groups are shuffled together and packed whole into batches of about ``batch_size``
    images (``batch_size`` rounded down to a multiple of g, at least g). Every image appears at
    least once per epoch.

    Parameters
    ----------
    labels : numpy.ndarray
        int (N,) class labels.
    batch_size : int
        Target images per batch (>= 1).
    partners : int
        m >= 0, same-class companions per image.
    seed, epoch : int
        The order is a deterministic function of both.

    Returns
    -------
    list of numpy.ndarray
        int64 index arrays; the last batch may be smaller.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,); got {labels.shape}")
    if batch_size < 1 or partners < 0:
        raise ValueError(f"need batch_size >= 1 and partners >= 0; got {batch_size}, {partners}")
    g = partners + 1
    rng = _rng(seed, epoch, 2)
    groups: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        for start in range(0, len(members), g):
            group = members[start : start + g]
            short = g - len(group)
            if short and len(members) >= g:
                others = np.setdiff1d(members, group)
                group = np.concatenate([group, rng.choice(others, short, replace=False)])
            groups.append(group)
    order = rng.permutation(len(groups))
    per_batch = max(1, batch_size // g)
    batches = []
    for start in range(0, len(order), per_batch):
        batches.append(np.concatenate([groups[i] for i in order[start : start + per_batch]]))
    return batches


def shard(batches: list[np.ndarray], rank: int, world_size: int) -> list[np.ndarray]:
    """Rank ``rank``'s share of whole batches; every rank gets the same number of batches
    (the last ``len % world_size`` batches are dropped), which DistributedDataParallel needs to
    keep its all-reduces in step."""
    if world_size == 1:
        return batches
    usable = (len(batches) // world_size) * world_size
    if usable == 0:
        raise ValueError(
            f"{len(batches)} batch(es) cannot be shared by {world_size} processes; "
            "use a smaller batch size"
        )
    return batches[rank:usable:world_size]

"""The conditional MAF + RQS of SuperCalo (thesis Sec. 4.3), built from zuko parts.

Chain (data x → latent z, zuko's direction): B1 → P_rev → B2 → P_rand → B3 → P_rev → … → B8, no
permutation after the last block. Each B_i is a conditional MADE (context enters the first masked layer
together with x, which equals the thesis' separate input layers summed) whose outputs parametrize a
monotonic RQS per feature: K widths, K heights, K − 1 inner derivatives (23 parameters for K = 8) on
[−bound, bound]; outside, the map is the identity, i.e. linear tails whose slope (1) equals the spline's
boundary derivative. The base is a standard diagonal normal. Random permutations come from their own
generator seeded with `permutation_seed`, so the flow is reproducible from its config; orders are stored
as buffers as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import LongTensor
from zuko.distributions import DiagNormal
from zuko.flows import MaskedAutoregressiveTransform
from zuko.lazy import Flow, LazyTransform, UnconditionalDistribution, UnconditionalTransform
from zuko.transforms import MonotonicRQSTransform, PermutationTransform


def permutation_orders(features: int, transforms: int, seed: int = 0) -> list[LongTensor]:
    """The `transforms − 1` permutations between blocks: reverse, random, reverse, random, …"""
    generator = torch.Generator().manual_seed(int(seed))
    orders = []
    for i in range(transforms - 1):
        if i % 2 == 0:
            orders.append(torch.arange(features - 1, -1, -1))
        else:
            orders.append(torch.randperm(features, generator=generator))
    return orders


def superres_maf(
    features: int,
    context: int,
    transforms: int = 8,
    hidden_features: Sequence[int] = (128, 128),
    bins: int = 8,
    bound: float = 14.0,
    permutation_seed: int = 0,
) -> Flow:
    """A conditional MAF p(x (…, features) | c (…, context)) with RQS bijectors and reverse/random permutations."""
    univariate = partial(MonotonicRQSTransform, bound=float(bound))
    shapes = [(bins,), (bins,), (bins - 1,)]
    chain: list[LazyTransform] = []
    orders = permutation_orders(features, transforms, permutation_seed)
    for i in range(transforms):
        chain.append(
            MaskedAutoregressiveTransform(
                features=features,
                context=context,
                univariate=univariate,
                shapes=shapes,
                hidden_features=tuple(int(h) for h in hidden_features),
            )
        )
        if i < len(orders):
            chain.append(UnconditionalTransform(PermutationTransform, orders[i], buffer=True))
    base = UnconditionalDistribution(DiagNormal, torch.zeros(features), torch.ones(features), buffer=True)
    return Flow(chain, base)

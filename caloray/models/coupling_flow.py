"""Conditional coupling flows with rational-quadratic splines (zuko based): fast in both directions.

A coupling block transforms one half of the features with monotonic RQS whose parameters a subnet computes
from the other half and the condition; inverting it costs one subnet pass, like the forward. With
`bayesian=True` the last layer of every subnet is a `BayesianLinear` (the stable Bayesian INN, thesis
Sec. 4.2.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import zuko
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.transforms import MonotonicRQSTransform

from caloray.models.bayesian import BayesianLinear

#: Seed of the generator that draws the coupling masks: fixed, so masks depend only on (features, blocks) and
#: building a flow consumes no global random numbers beyond the weight initialization.
MASK_SEED = 12


def coupling_masks(features: int, blocks: int) -> list[torch.Tensor]:
    """(blocks,) boolean masks of length `features` (True: the conditioning half, left unchanged).

    Blocks come in pairs: a random half of the features conditions the other, then the complement, so every
    feature is transformed once per pair and mixed with different partners in the next pair.
    """
    if features < 2:
        raise ValueError(f"a coupling flow needs at least 2 features, got {features}")
    generator = torch.Generator().manual_seed(MASK_SEED)
    masks = []
    for block in range(blocks):
        if block % 2 == 0:
            mask = torch.zeros(features, dtype=torch.bool)
            mask[torch.randperm(features, generator=generator)[: features // 2]] = True
        else:
            mask = ~masks[-1]
        masks.append(mask)
    return masks


def conditional_spline_coupling(
    features: int,
    context: int,
    blocks: int,
    hidden_features: Sequence[int],
    bins: int,
    bound: float,
    bayesian: bool = False,
    prior_std: float = 1.0,
    init_log_var: float = -9.0,
) -> zuko.flows.Flow:
    """A zuko flow of `blocks` RQS coupling blocks on [−bound, bound] (identity outside), standard normal base.

    Each subnet is an MLP (ReLU) with `hidden_features` taking the conditioning half and the `context` values,
    and returning 3·bins − 1 spline parameters per transformed feature.
    """
    univariate = partial(MonotonicRQSTransform, bound=float(bound))
    shapes = [(bins,), (bins,), (bins - 1,)]
    transforms = []
    for mask in coupling_masks(features, blocks):
        transform = GeneralCouplingTransform(
            features=features,
            context=context,
            mask=mask,
            univariate=univariate,
            shapes=shapes,
            hidden_features=tuple(int(h) for h in hidden_features),
        )
        if bayesian:
            last = transform.hyper[-1]
            transform.hyper[-1] = BayesianLinear(last.in_features, last.out_features, prior_std, init_log_var)
        transforms.append(transform)
    base = zuko.lazy.UnconditionalDistribution(
        zuko.distributions.DiagNormal, torch.zeros(features), torch.ones(features), buffer=True
    )
    return zuko.flows.Flow(transforms, base)

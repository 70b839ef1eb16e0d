"""Conditional coupling flows with rational-quadratic splines (zuko based): fast in both directions.

A coupling block transforms one half of the features with monotonic RQS whose parameters a subnet computes
from the other half and the condition; inverting it costs one subnet pass, like the forward. With
`bayesian=True` the last layer of every subnet is a `BayesianLinear` (the stable Bayesian INN, thesis
Sec. 4.2.4).

`coupling_log_prob` and `coupling_sample` evaluate such a flow directly (the zuko modules hold the weights, so
checkpoints are unchanged): one subnet pass and one `caloray.models.rqs` spline call per block, with no zuko
transform objects, which is several times faster on CPU for the small subnets of the ShowerINN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import zuko
from torch import Tensor
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.transforms import MonotonicRQSTransform

from caloray.models.bayesian import BayesianLinear
from caloray.models.rqs import rqs_call_and_ladj, rqs_inverse_bins_first_, zuko_spline_settings

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


def _blocks(flow: zuko.flows.Flow) -> list[tuple[GeneralCouplingTransform, Tensor, Tensor, int, float, float]]:
    """(block, conditioning indices, transformed indices, bins, bound, slope) of each block of a flow built by
    `conditional_spline_coupling`."""
    blocks = []
    for block in flow.transform.transforms:
        settings = zuko_spline_settings(getattr(block, "univariate", None))
        if not isinstance(block, GeneralCouplingTransform) or settings is None:
            raise TypeError(f"not an RQS coupling block: {type(block).__name__}")
        bins = int(block.shapes[0][0])
        blocks.append((block, block.mask.nonzero().squeeze(-1), (~block.mask).nonzero().squeeze(-1), bins, *settings))
    return blocks


def _spline_parameters(block: GeneralCouplingTransform, x_a: Tensor, context: Tensor) -> Tensor:
    """Packed spline parameters (B, D_b, 3·bins − 1) from the conditioning half x_a (B, D_a) and context (B, C)."""
    return block.hyper(torch.cat([x_a, context], dim=-1)).unflatten(-1, (-1, block.total))


def coupling_log_prob(flow: zuko.flows.Flow, x: Tensor, context: Tensor) -> Tensor:
    """log p(x | context) (B,) of features x (B, D) with context (B, C): the same density as
    `flow(context).log_prob(x)` (differentiable, for training)."""
    ladj_total = x.new_zeros(x.shape[0])
    for block, idx_a, idx_b, bins, bound, slope in _blocks(flow):
        x_a = x.index_select(-1, idx_a)
        phi = _spline_parameters(block, x_a, context)
        y_b, ladj = rqs_call_and_ladj(x.index_select(-1, idx_b), phi, bins, bound, slope)
        x = x.index_copy(-1, idx_b, y_b)
        ladj_total = ladj_total + ladj
    return flow.base(None).log_prob(x) + ladj_total


def _fixed_linear(layer: torch.nn.Module) -> tuple[Tensor, Tensor | None] | None:
    """(weight (out, in), bias (out,) or None) when `layer` applies one affine map to every row, else None."""
    if isinstance(layer, BayesianLinear):
        return layer.fixed_weight_and_bias()
    weight = getattr(layer, "weight", None)
    if isinstance(layer, (torch.nn.Linear, zuko.nn.Linear)) and weight is not None and weight.dim() == 2:
        return weight, layer.bias
    return None


def _features_first_subnet(block: GeneralCouplingTransform) -> list[Callable[[Tensor], Tensor]]:
    """The subnet of `block` as steps on features-first inputs, (D_a + C, b) → (3·bins − 1, D_b, b).

    The rows of the last layer are reordered parameter-major (row p·D_b + f computes parameter p of transformed
    feature f, zuko's row f·(3·bins − 1) + p), so each spline parameter comes out as one contiguous row of D_b·b
    values: the layout `rqs_inverse_bins_first_` reads. Same dot products, so the same numbers.
    """
    layers = list(block.hyper)
    n_transformed = int((~block.mask).sum())
    order = torch.arange(n_transformed * block.total).view(n_transformed, block.total).T.reshape(-1)
    steps: list[Callable[[Tensor], Tensor]] = []
    for position, layer in enumerate(layers):
        last = position == len(layers) - 1
        affine = _fixed_linear(layer)
        if isinstance(layer, torch.nn.ReLU):
            steps.append(torch.relu_)
        elif affine is not None:
            weight, bias = affine
            if last:
                order = order.to(weight.device)
                weight, bias = weight[order], None if bias is None else bias[order]
            steps.append(weight.matmul if bias is None else partial(torch.addmm, bias[:, None], weight))
        elif last:  # e.g. a Bayesian layer in training mode (a weight draw per row)
            steps.append(lambda h, layer=layer, order=order: layer(h.T).index_select(1, order.to(h.device)).T)
        else:
            steps.append(lambda h, layer=layer: layer(h.T).T)
    steps.append(lambda h: h.view(block.total, n_transformed, -1))
    return steps


#: Showers per pass of `coupling_sample`: large enough that every step is a long vectorized pass (and uses both
#: threads), small enough that a block's spline parameters (≈ 17 kB per ds1-photons shower) stay in cache.
SAMPLE_CHUNK = 1024


@torch.no_grad()
def coupling_sample(flow: zuko.flows.Flow, context: Tensor, chunk: int = SAMPLE_CHUNK) -> Tensor:
    """One sample x (B, D) per context row (B, C): base noise from the global RNG mapped through the inverse
    blocks, last to first (the same distribution as `flow(context).sample()`, and the same numbers up to
    rounding).

    Rows go `chunk` at a time through all blocks, features-first ((D, chunk)): the subnets then write their spline
    parameters bins-first and each spline step is a contiguous pass (`rqs_inverse_bins_first_`).
    """
    z = flow.base(None).sample((context.shape[0],))
    blocks = [(idx_a, idx_b, _features_first_subnet(block), bins, bound, slope)
              for block, idx_a, idx_b, bins, bound, slope in reversed(_blocks(flow))]
    for start in range(0, z.shape[0], chunk):
        rows = slice(start, start + chunk)
        z_t, context_t = z[rows].T.contiguous(), context[rows].T
        for idx_a, idx_b, subnet, bins, bound, slope in blocks:
            h = torch.cat([z_t.index_select(0, idx_a), context_t])
            for step in subnet:
                h = step(h)
            y = z_t.index_select(0, idx_b)
            x = rqs_inverse_bins_first_(y.view(-1), h.view(h.shape[0], -1), bins, bound, slope)
            z_t.index_copy_(0, idx_b, x.view_as(y))
        z[rows] = z_t.T
    return z

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

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
import zuko
from torch import Tensor
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.transforms import MonotonicRQSTransform

from caloray.models.bayesian import BayesianLinear
from caloray.models.chunks import for_each_chunk
from caloray.models.rqs import InverseSplineWorkspace, rqs_call_and_ladj, zuko_spline_settings

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


def _with_bias_column(weight: Tensor, bias: Tensor | None) -> Tensor:
    """[b | W] (out, 1 + in): the affine map as one product with an input whose first row is ones (features-first),
    so the product writes its output in place with no separate pass to broadcast the bias."""
    bias = weight.new_zeros(weight.shape[0]) if bias is None else bias
    return torch.cat([bias[:, None], weight], dim=1).contiguous()


@dataclass(frozen=True)
class _InverseBlock:
    """One coupling block prepared for `coupling_sample` (features-first products, parameter-major spline rows).

    `hidden`: [b | W] of each hidden layer (each followed by a ReLU), the first one's input columns ordered
    (1, context, conditioning half); `sizes` and `slopes`: [b | W] of the last layer's rows for the widths and
    heights (2·bins·D_b rows) and the interior derivatives ((bins − 1)·D_b rows), row p·D_b + f computing parameter
    p of transformed feature f (zuko's row f·(3·bins − 1) + p), so each spline parameter comes out as one
    contiguous row of D_b·b values. Same dot products (the bias one term more), so the same numbers up to rounding.
    `module`: the block itself when its subnet is not a chain of fixed affine maps and ReLUs (e.g. a Bayesian layer
    in training mode, a weight draw per row); the parameters are then computed rows-first and transposed.
    """

    idx_a: Tensor
    idx_b: Tensor
    bins: int
    bound: float
    slope: float
    hidden: list[Tensor]
    sizes: Tensor | None
    slopes: Tensor | None
    module: GeneralCouplingTransform | None


def _inverse_block(block: GeneralCouplingTransform, idx_a: Tensor, idx_b: Tensor, bins: int, bound: float,
                   slope: float, context: int) -> _InverseBlock:
    layers = list(block.hyper)
    affine = [_fixed_linear(layer) for layer in layers[::2]]
    chain = (all(a is not None for a in affine) and len(layers) % 2 == 1
             and all(isinstance(layer, torch.nn.ReLU) for layer in layers[1::2]))
    if not chain:
        return _InverseBlock(idx_a, idx_b, bins, bound, slope, [], None, None, block)
    weights = [_with_bias_column(*a) for a in affine]
    first = weights[0]  # columns (1, conditioning half, context) → (1, context, conditioning half)
    n_a = idx_a.numel()
    weights[0] = torch.cat([first[:, :1], first[:, 1 + n_a:], first[:, 1: 1 + n_a]], dim=1).contiguous()
    n_b, total = idx_b.numel(), block.total
    order = torch.arange(n_b * total, device=first.device).view(n_b, total).T.reshape(-1)
    last = weights.pop()[order]
    return _InverseBlock(idx_a, idx_b, bins, bound, slope, weights, last[: 2 * bins * n_b].contiguous(),
                         last[2 * bins * n_b:].contiguous(), None)


class _Workspace:
    """Buffers for one chunk of `chunk` showers: the subnet inputs and activations (features-first, first row ones)
    and one spline workspace per size of the transformed half (their zero rows are written once)."""

    def __init__(self, blocks: list[_InverseBlock], n_features: int, n_context: int, chunk: int,
                 like: Tensor) -> None:
        widths = [weight.shape[0] for block in blocks for weight in block.hidden]
        self.chunk = chunk
        self.input = like.new_empty(1 + n_context + n_features, chunk)
        self.input[0] = 1
        self.hidden = [like.new_empty(1 + width, chunk) for width in sorted(set(widths))[-1:] * 2]
        for buffer in self.hidden:
            buffer[0] = 1
        self.spline = {}
        for block in blocks:
            key = block.bins, block.bound, block.slope, block.idx_b.numel() * chunk
            if key not in self.spline:
                self.spline[key] = InverseSplineWorkspace(*key, like)


def _invert_block(block: _InverseBlock, z_t: Tensor, context_t: Tensor, work: _Workspace) -> None:
    """z_t (D, b) ← the block's inverse, in place; context_t (C, b)."""
    b, n_context, bins = z_t.shape[1], context_t.shape[0], block.bins
    n_b = block.idx_b.numel()
    spline = work.spline[bins, block.bound, block.slope, n_b * b]
    if block.module is None:
        n_in = 1 + n_context + block.idx_a.numel()
        torch.index_select(z_t, 0, block.idx_a, out=work.input[1 + n_context: n_in])
        h = work.input[:n_in]
        for position, weight in enumerate(block.hidden):
            out = work.hidden[position % 2][: 1 + weight.shape[0]]
            torch.relu_(torch.mm(weight, h, out=out[1:]))
            h = out
        torch.mm(block.sizes, h, out=spline.sizes.view(-1, b))
        torch.mm(block.slopes, h, out=spline.slopes.view(-1, b))
    else:
        phi = _spline_parameters(block.module, z_t.index_select(0, block.idx_a).T, context_t.T)  # (b, D_b, 3K − 1)
        packed = phi.permute(2, 1, 0)
        spline.sizes.view(2 * bins, n_b, b).copy_(packed[: 2 * bins])
        spline.slopes.view(bins - 1, n_b, b).copy_(packed[2 * bins:])
    x = spline.inverse_(z_t.index_select(0, block.idx_b).view(-1))
    z_t.index_copy_(0, block.idx_b, x.view(n_b, b))


#: Showers per pass of `coupling_sample`: small enough that a block's spline workspace (≈ 30 kB per ds1-photons
#: shower) stays mostly in a core's L2 cache (2 MB here), large enough that the per-operation overhead (≈ 40
#: operations per block) stays small; 128 was the fastest of 64–512 (`python -m bench --only inn`).
SAMPLE_CHUNK = 128

#: Showers per pass on a GPU, where each operation should be one large kernel (≈ 30 kB of workspace per shower).
GPU_SAMPLE_CHUNK = 16384


@torch.no_grad()
def coupling_sample(flow: zuko.flows.Flow, context: Tensor, chunk: int | None = None,
                    workers: int | None = None) -> Tensor:
    """One sample x (B, D) per context row (B, C): base noise from the global RNG mapped through the inverse
    blocks, last to first (the same distribution as `flow(context).sample()`, and the same numbers up to
    rounding).

    Rows go `chunk` at a time (default: `SAMPLE_CHUNK` on CPU, `GPU_SAMPLE_CHUNK` elsewhere) through all blocks,
    features-first ((D, chunk)): the subnets are plain products writing their spline parameters bins-first into a
    reused `caloray.models.rqs.InverseSplineWorkspace`, whose steps are contiguous passes. On CPU the chunks are
    shared among `workers` single-threaded threads (default: torch's intra-op thread count;
    `caloray.models.chunks.for_each_chunk`). The base noise is drawn first, so the result does not depend on
    `chunk` or `workers`.
    """
    z = flow.base(None).sample((context.shape[0],))
    n_rows, n_features = z.shape
    n_context = context.shape[1]
    chunk = (SAMPLE_CHUNK if z.device.type == "cpu" else GPU_SAMPLE_CHUNK) if chunk is None else int(chunk)
    blocks = [_inverse_block(*block, context=n_context) for block in reversed(_blocks(flow))]
    per_thread = threading.local()  # each thread's workspaces, by chunk size

    def invert(rows: slice) -> None:
        z_t, context_t = z[rows].T.contiguous(), context[rows].T.contiguous()
        size = z_t.shape[1]
        workspaces = per_thread.__dict__.setdefault("workspaces", {})
        if size not in workspaces:
            workspaces[size] = _Workspace(blocks, n_features, n_context, size, z)
        work = workspaces[size]
        work.input[1: 1 + n_context] = context_t
        for block in blocks:
            _invert_block(block, z_t, context_t, work)
        z[rows] = z_t.T

    for_each_chunk(invert, n_rows, chunk, workers, z.device)
    return z

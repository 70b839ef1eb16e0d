"""The K members of an ensemble of zuko MAFs evaluated as one batched module (grouped weights).

A member loop runs K small forward passes, each a chain of tiny matrix products and spline kernels;
here every MADE layer of all K members is one batched product (`torch.baddbmm` over (K, rows, features))
and every spline transform one call on (K, rows, features) parameters, so kernel launches and Python
overhead are paid once instead of K times. The numbers are those of the member loop (same weights, same
spline formulas as zuko's `MonotonicRQSTransform`); `tests/models/test_models_stacked.py` checks them
against `Ensemble.log_prob_features`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import zuko
from torch import Tensor
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.nn import MaskedLinear

from caloray.models.rqs import rqs_call_and_ladj
from caloray.models.rqs import zuko_spline_settings as _spline_settings


def stackable(flows: Sequence[torch.nn.Module]) -> bool:
    """True when every flow is a zuko MAF whose transforms are all masked autoregressive ones with plain
    MADE hyper-networks (masked linear layers and parameter-free activations), of identical structure."""
    if not flows or not all(isinstance(flow, zuko.flows.MAF) for flow in flows):
        return False
    layouts = set()
    for flow in flows:
        layout = []
        for transform in flow.transform.transforms:
            if not isinstance(transform, MaskedAutoregressiveTransform):
                return False
            for layer in transform.hyper:
                if isinstance(layer, MaskedLinear):
                    layout.append(tuple(layer.weight.shape))
                elif any(True for _ in layer.parameters()) or len(list(layer.children())):
                    return False
                else:
                    layout.append(type(layer).__name__)
            if _spline_settings(transform.univariate) is None or len(transform.shapes) != 3:
                return False
        layouts.add(tuple(layout))
    return len(layouts) == 1


class StackedMAF(torch.nn.Module):
    """log p_k(x | c) of K zuko MAFs of one structure, all members in one pass.

    The masked weights are copied at construction (rebuild after changing the members' weights).
    """

    def __init__(self, flows: Sequence[zuko.flows.MAF]) -> None:
        super().__init__()
        if not stackable(flows):
            raise ValueError("StackedMAF needs zuko MAFs of one structure with plain MADE hyper-networks")
        self.n_members = len(flows)
        self.base = flows[0].base
        self.splines, self.shapes, self.totals, self.activations = [], [], [], []
        for position, first in enumerate(flows[0].transform.transforms):
            members = [flow.transform.transforms[position] for flow in flows]
            self.splines.append(_spline_settings(first.univariate))
            self.shapes.append(first.shapes)
            self.totals.append(first.total)
            acts = []
            for index, layer in enumerate(first.hyper):
                if isinstance(layer, MaskedLinear):
                    # (K, in, out) masked weights and (K, 1, out) biases, for baddbmm.
                    weights = torch.stack([(m.hyper[index].mask * m.hyper[index].weight).detach().mT for m in members])
                    biases = torch.stack([m.hyper[index].bias.detach()[None, :] for m in members])
                    self.register_buffer(f"w_{position}_{index}", weights.contiguous(), persistent=False)
                    self.register_buffer(f"b_{position}_{index}", biases.contiguous(), persistent=False)
                    acts.append(None)
                else:
                    acts.append(layer)
            self.activations.append(acts)

    def _hyper(self, position: int, inputs: Tensor) -> Tensor:
        """MADE output (K, R, features · total) from inputs (K, R, in) or (R, in) shared by all members."""
        h = inputs
        for index, activation in enumerate(self.activations[position]):
            if activation is not None:
                h = activation(h)
                continue
            weight = getattr(self, f"w_{position}_{index}")
            bias = getattr(self, f"b_{position}_{index}")
            if h.dim() == 2:  # shared input: one (R, in) × (in, K·out) product for all members
                k, n_in, n_out = weight.shape
                flat = weight.permute(1, 0, 2).reshape(n_in, k * n_out)
                h = (h @ flat).reshape(h.shape[0], k, n_out).transpose(0, 1) + bias
            else:
                h = torch.baddbmm(bias, h, weight)
        return h

    def log_prob(self, x: Tensor, context: Tensor) -> Tensor:
        """x (R, D) features shared by all members, context (R, C) → (K, R) member log-densities."""
        shared = True
        y = x
        ladj_total = torch.zeros((), dtype=x.dtype, device=x.device)
        for position in range(len(self.splines)):
            if shared:
                inputs = torch.cat([y, context], dim=-1)
            else:
                inputs = torch.cat([y, context.expand(self.n_members, -1, -1)], dim=-1)
            phi = self._hyper(position, inputs)
            phi = phi.unflatten(-1, (-1, self.totals[position]))
            if shared:
                y = y.expand(self.n_members, -1, -1)
                shared = False
            y, ladj = rqs_call_and_ladj(y, phi, self.shapes[position][0][0], *self.splines[position])
            ladj_total = ladj_total + ladj
        return self.base(None).log_prob(y) + ladj_total


def stacked_log_prob_features(model: torch.nn.Module) -> Callable[[Tensor, Tensor], Tensor] | None:
    """A batched-member equivalent of `Ensemble.log_prob_features` for ensembles of Flow-I members
    (`LayerEnergyFlow`), or None when `model` is not one (or its flows cannot be stacked).

    The returned function maps layer energies (B, L) MeV and candidate energies (B, Kc) MeV to
    log p_ens (B, Kc) = logsumexp_k log p_k − log K, like the member loop. Weights are copied once, here.
    """
    from caloray.models.ensemble import Ensemble
    from caloray.models.layer_flow import LayerEnergyFlow

    if not isinstance(model, Ensemble) or not all(isinstance(m, LayerEnergyFlow) for m in model.members):
        return None
    if not stackable([member.flow for member in model.members]):
        return None
    stacked = StackedMAF([member.flow for member in model.members])
    # The feature and condition maps are parameter-free and shared by construction: member 0's serve all.
    first = model.members[0]
    log_members = math.log(len(model.members))

    @torch.no_grad()
    def log_prob_features(layer_energies_mev: Tensor, incident_energies_mev: Tensor) -> Tensor:
        n_showers, n_candidates = incident_energies_mev.shape
        y = first.layer_transform(layer_energies_mev).repeat_interleave(n_candidates, dim=0)
        log_p = stacked.log_prob(y, first.context(incident_energies_mev.reshape(-1)))
        return (torch.logsumexp(log_p, dim=0) - log_members).reshape(n_showers, n_candidates)

    return log_prob_features

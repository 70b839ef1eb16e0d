"""Ensembles of K independently initialized surrogates of one kind."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from caloray.models.base import Batch, Surrogate


class Ensemble(Surrogate):
    """K members of the same kind, combined as in spec §1 and §3.

    - `log_prob` / `log_prob_features`: the likelihood of the ensemble is the *mean of the members'
      likelihoods*, log p_ens = logsumexp_k(log p_k) − log K (not the mean of log-likelihoods).
    - `sample`: each member generates an equal share. Row i of the request goes to member i mod K
      (`member_assignment`), so with B = q·K + r the members 0 … r−1 generate q + 1 rows and the others q;
      deterministic, and output row i is always conditioned on input row i. Tensor keyword arguments whose
      first dimension is B (e.g. VoxelFlow's `layer_energies`) are split the same way.
    - `predict` (regressors): the mean of the members' predictions.
    - `loss`: the sum of the members' losses, so every member receives exactly its own gradient (with Adam,
      one optimizer over all parameters equals independent per-member optimizers).

    Built from `member_kind` and one config per member (use `Ensemble.from_members` for existing models).
    """

    kind = "ensemble"

    def __init__(self, member_kind: str, member_configs: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        from caloray.models.registry import build

        if member_kind == self.kind:
            raise ValueError("an ensemble cannot contain ensembles")
        if not member_configs:
            raise ValueError("an ensemble needs at least one member")
        self.member_kind = member_kind
        self.members = torch.nn.ModuleList([build(member_kind, dict(config)) for config in member_configs])

    @classmethod
    def from_members(cls, members: Sequence[Surrogate]) -> Ensemble:
        """Wrap existing (e.g. separately trained) models of one kind; their weights are copied."""
        kinds = {member.kind for member in members}
        if len(kinds) != 1:
            raise ValueError(f"ensemble members must share one kind, got {sorted(kinds)}")
        ensemble = cls(members[0].kind, [member.config() for member in members])
        for target, source in zip(ensemble.members, members, strict=True):
            target.load_state_dict(source.state_dict())
        reference = next(iter(members[0].state_dict().values()), None)
        if reference is not None and reference.is_floating_point():
            ensemble.to(reference.dtype)
        return ensemble

    def config(self) -> dict[str, Any]:
        return {"member_kind": self.member_kind, "member_configs": [m.config() for m in self.members]}

    def __len__(self) -> int:
        return len(self.members)

    def member_assignment(self, n_rows: int, device: torch.device | None = None) -> Tensor:
        """(n_rows,) long: the member generating each requested row (row i → member i mod K)."""
        return torch.arange(n_rows, device=device) % len(self.members)

    def _log_mean_exp(self, log_probs: list[Tensor]) -> Tensor:
        return torch.logsumexp(torch.stack(log_probs, dim=0), dim=0) - math.log(len(log_probs))

    def log_prob(self, batch: Batch, **kwargs: Any) -> Tensor:
        """log of the mean member likelihood, (B,); keyword arguments go to every member."""
        return self._log_mean_exp([member.log_prob(batch, **kwargs) for member in self.members])

    def log_prob_features(self, *args: Any, **kwargs: Any) -> Tensor:
        """Ensemble version of the members' `log_prob_features` (e.g. (B, K_candidates))."""
        return self._log_mean_exp([member.log_prob_features(*args, **kwargs) for member in self.members])

    def loss(self, batch: Batch, **kwargs: Any) -> Tensor:
        return torch.stack([member.loss(batch, **kwargs) for member in self.members]).sum()

    def predict(self, batch: Batch, **kwargs: Any) -> Tensor:
        """Mean of the members' `predict` outputs."""
        return torch.stack([member.predict(batch, **kwargs) for member in self.members]).mean(0)

    @torch.no_grad()
    def sample(self, incident_energies: Tensor, **kwargs: Any) -> Batch:
        """Sample with equal shares per member (see class docstring); same keys as the members' samples."""
        n_rows = incident_energies.shape[0]
        assignment = self.member_assignment(n_rows, incident_energies.device)
        output: Batch = {}
        for k, member in enumerate(self.members):
            rows = torch.nonzero(assignment == k).squeeze(-1)
            if rows.numel() == 0:
                continue
            member_kwargs = {
                key: value.index_select(0, rows)
                if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == n_rows
                else value
                for key, value in kwargs.items()
            }
            part = member.sample(incident_energies.index_select(0, rows), **member_kwargs)
            for key, value in part.items():
                if key not in output:
                    output[key] = value.new_empty((n_rows, *value.shape[1:]))
                output[key][rows] = value
        return output

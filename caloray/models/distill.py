"""A Flow-II that samples fast: an inverse-autoregressive student distilled from the MAF teacher (CaloFlow).

The teacher `VoxelFlow` (MAF) evaluates its density in one pass per block but samples with one pass per voxel.
The student has one MADE block per teacher block, used in the sampling direction (z → x in one pass each, an
IAF), and is trained to reproduce the teacher's map: for data features x_0 the teacher's forward pass gives the
intermediate states x_1 … x_K (x_K = z); student block k maps x_k → x_{k−1}, trained by the mean squared error
per block plus the end-to-end error of the whole student chain from z (CaloFlow's teacher–student training).
A fraction `base_fraction` of every batch instead starts from z ~ N(0, 1) and runs the teacher's slow inverse (one
pass per voxel), so the student also learns the map where the teacher samples, not only where data encode.
The teacher stays frozen inside the student and provides its likelihood (`log_prob`), so one checkpoint
serves generation (student) and calibration (teacher).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from caloray.errors import ConfigError
from caloray.models.base import Batch, Surrogate
from caloray.models.features import incident_1d
from caloray.models.spline_flow import conditional_spline_maf
from caloray.models.voxel_flow import VoxelFlow


class VoxelFlowStudent(Surrogate):
    """IAF student of a `VoxelFlow` teacher (same features, condition and spline bound).

    Args:
        teacher_config: the teacher's `config()`; or give `teacher_checkpoint`, a voxel-flow checkpoint whose
            weights are loaded (weights_only) and frozen. A saved student holds the teacher's weights itself.
        hidden_features: student MADE hidden sizes (default: the teacher's).
        bins: student RQS bins (default: the teacher's).
        voxel_layer: optional; must equal the teacher's (filled in from the geometry by `caloray train`).
        end_to_end_weight: weight of the whole-chain reconstruction term in the loss.
        base_fraction: share of each batch whose teacher states start from base samples z ~ N(0, 1) (teacher
            inverse, slow: one MADE pass per voxel and block) instead of the data's encoding.
    """

    kind = "voxel-flow-student"

    def __init__(
        self,
        teacher_config: dict[str, Any] | None = None,
        teacher_checkpoint: str | None = None,
        hidden_features: Sequence[int] | None = None,
        bins: int | None = None,
        voxel_layer: Sequence[int] | None = None,
        end_to_end_weight: float = 1.0,
        base_fraction: float = 0.5,
    ) -> None:
        super().__init__()
        teacher_state = None
        if teacher_checkpoint is not None:
            from caloray.models.serialization import read_checkpoint

            payload = read_checkpoint(teacher_checkpoint)
            if payload["kind"] != VoxelFlow.kind:
                raise ConfigError(f"{teacher_checkpoint}: teacher_checkpoint holds a {payload['kind']!r}, "
                                  f"expected a {VoxelFlow.kind!r}")
            if teacher_config is not None and teacher_config != payload["config"]:
                raise ConfigError(f"{teacher_checkpoint}: teacher_config differs from the checkpoint's config")
            teacher_config, teacher_state = payload["config"], payload["state_dict"]
        if teacher_config is None:
            raise ConfigError("voxel-flow-student needs teacher_checkpoint (a voxel-flow .pt) or teacher_config")
        self.teacher = VoxelFlow(**teacher_config)
        if teacher_state is not None:
            self.teacher.load_state_dict(teacher_state)
        if voxel_layer is not None and [int(i) for i in voxel_layer] != self.teacher.voxel_layer_list:
            raise ConfigError("voxel-flow-student: voxel_layer differs from the teacher's (another geometry?)")
        self.teacher.requires_grad_(False)
        self.teacher_config = dict(self.teacher.config())
        self.hidden_features = [int(h) for h in (hidden_features or self.teacher.hidden_features)]
        self.bins = int(bins or self.teacher.bins)
        self.end_to_end_weight = float(end_to_end_weight)
        if not 0.0 <= base_fraction <= 1.0:
            raise ConfigError(f"voxel-flow-student: base_fraction must be in [0, 1], got {base_fraction}")
        self.base_fraction = float(base_fraction)
        self.voxel_layer_list = self.teacher.voxel_layer_list
        self.student = conditional_spline_maf(
            features=self.teacher.n_voxels,
            context=self.teacher.n_layers + 1,
            transforms=self.teacher.transforms,
            hidden_features=self.hidden_features,
            bins=self.bins,
            bound=self.teacher.bound,
        )

    def config(self) -> dict[str, Any]:
        return {
            "teacher_config": self.teacher_config,
            "hidden_features": list(self.hidden_features),
            "bins": self.bins,
            "voxel_layer": list(self.voxel_layer_list),
            "end_to_end_weight": self.end_to_end_weight,
            "base_fraction": self.base_fraction,
        }

    def train(self, mode: bool = True) -> VoxelFlowStudent:
        super().train(mode)
        self.teacher.eval()  # frozen: never in training mode
        return self

    def teacher_states(self, features: Tensor, context: Tensor) -> list[Tensor]:
        """[x_0 = features, x_1, …, x_K = z] along the teacher's forward pass, each (B, V)."""
        states = [features]
        for transform in self.teacher.flow.transform.transforms:
            states.append(transform(context)(states[-1]))
        return states

    def teacher_states_from_base(self, z: Tensor, context: Tensor) -> list[Tensor]:
        """[x_0, …, x_K = z] along the teacher's inverse (sampling) pass from base samples z (B, V)."""
        states = [z]
        for transform in reversed(self.teacher.flow.transform.transforms):
            states.append(transform(context).inv(states[-1]))
        return states[::-1]

    def student_map(self, z: Tensor, context: Tensor) -> Tensor:
        """The student's sampling map z (B, V) → logit features x (B, V): one MADE pass per block."""
        x = z
        for block in reversed(self.student.transform.transforms):
            x = block(context)(x)
        return x

    def loss(self, batch: Batch) -> Tensor:
        """Σ_k mean (s_k(x_k) − x_{k−1})² + `end_to_end_weight` · mean (S(z) − x_0)², teacher states without
        gradient (data rows: noise added to the voxels as in the teacher's training; `base_fraction` of the rows
        from base samples)."""
        features, layer_energies = self.teacher.features(batch["showers"], add_noise=True)
        context = self.teacher.context(layer_energies, incident_1d(batch["incident_energies"]))
        n_base = round(self.base_fraction * features.shape[0])
        with torch.no_grad():
            states = self.teacher_states(features[n_base:], context[n_base:])
            if n_base > 0:
                z = torch.randn_like(features[:n_base])
                base_states = self.teacher_states_from_base(z, context[:n_base])
                states = [torch.cat(pair) for pair in zip(base_states, states, strict=True)]
        blocks = self.student.transform.transforms
        loss = features.new_zeros(())
        for k, block in enumerate(blocks):
            loss = loss + ((block(context)(states[k + 1]) - states[k]) ** 2).mean()
        if self.end_to_end_weight > 0:
            loss = loss + self.end_to_end_weight * ((self.student_map(states[-1], context) - states[0]) ** 2).mean()
        return loss

    def log_prob(self, batch: Batch, **kwargs: Any) -> Tensor:
        """The teacher's `VoxelFlow.log_prob` (same keyword arguments): the student keeps its likelihood."""
        return self.teacher.log_prob(batch, **kwargs)

    @torch.no_grad()
    def sample(
        self, incident_energies: Tensor, layer_energies: Tensor | None = None, threshold_mev: float = 0.0
    ) -> Batch:
        """Like `VoxelFlow.sample` (layer energies (B, L) MeV required), with the one-pass student map."""
        if layer_energies is None:
            raise ValueError("VoxelFlowStudent.sample needs layer_energies (B, L) MeV, e.g. from a LayerEnergyFlow")
        incident_energies = incident_1d(incident_energies)
        context = self.teacher.context(layer_energies, incident_energies)
        z = torch.randn(context.shape[0], self.teacher.n_voxels, dtype=context.dtype, device=context.device)
        features = self.student_map(z, context)
        showers = self.teacher.showers_from_features(features, layer_energies, threshold_mev)
        return {"showers": showers, "incident_energies": incident_energies}

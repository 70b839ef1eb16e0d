"""The one interface every trainable surrogate implements, and the batch it consumes."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

#: A training/inference batch: "showers" (B, n_voxels) MeV and "incident_energies" (B,) MeV,
#: as float tensors on the model's device. Models derive their own features from these.
Batch = dict[str, Tensor]


class Surrogate(torch.nn.Module):
    """A trainable model with a JSON-serializable constructor config.

    Subclasses set `kind` (the registry name used in configs and checkpoints) and implement
    `loss`; density models also implement `log_prob` and `sample`.
    """

    kind: ClassVar[str] = ""

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-serializable) that rebuild this model untrained."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> Tensor:
        """Scalar training loss averaged over the batch."""
        raise NotImplementedError

    @property
    def needs_preprocessing_fit(self) -> bool:
        """Whether `fit_preprocessing` should run before training (False: fixed preprocessing)."""
        return False

    def fit_preprocessing(self, batch: Batch) -> None:
        """Fit data-dependent preprocessing (saved in the state dict) on a training sample before the first
        step. The trainer calls it once per member with the first `data.preprocessing_rows` training rows
        when `needs_preprocessing_fit`."""

    def log_prob(self, batch: Batch) -> Tensor:
        """log p(x | conditions) per shower, shape (B,). Not defined for regressors."""
        raise NotImplementedError(f"{type(self).__name__} has no likelihood")

    def sample(self, incident_energies: Tensor) -> Batch:
        """Draw one shower (or feature vector) per incident energy (MeV), shape (B,)."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    def noise_shapes(self) -> dict[str, tuple[int, str]]:
        """Sampling as a deterministic function of explicit noise (for ONNX export and reproducible tests):
        {argument name of `sample_from_noise`: (width per row, "normal" or "uniform")}. Empty: not available."""
        return {}

    def sample_from_noise(self, incident_energies: Tensor, **noise: Tensor) -> Batch:
        """`sample` with its random draws given as inputs (B, width) as described by `noise_shapes`."""
        raise NotImplementedError(f"{type(self).__name__} has no noise-driven sampler")

"""ONNX export of trained models for C++ inference (ONNX Runtime, e.g. inside a Geant4 fast-simulation model).

Which graphs a model gets is decided by what its members can do, not by a list of kinds:

- ``sample`` — members with a noise-driven sampler (`Surrogate.noise_shapes` / `sample_from_noise`): inputs
  ``incident_energy_mev`` (B,) MeV and one noise input per draw (B, width) (standard normal or uniform, as
  named in `export.json`), output the sample (``showers`` (B, V) MeV, or Flow-I ``layer_energies`` (B, L) MeV);
- ``log_prob`` — members with a likelihood of showers (`log_prob`): inputs ``showers`` (B, V) MeV and
  ``incident_energy_mev`` (B,), output ``log_prob`` (B,) (the model's density, in the units of `log_prob`);
- ``predict`` — regressors: input ``showers`` (B, V) MeV, output ``e_pred_mev`` (B,).

Every graph folds the model's preprocessing in (raw MeV in, MeV out), has a dynamic batch axis and is float32.
Ensembles export as one graph: sampling gives row i to member i mod K (as `Ensemble.sample`), densities are the
log of the mean member likelihood, predictions the mean. A graph that fails to export or to reproduce the
torch model is skipped with its reason, so kinds added later export whatever works for them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from caloray.errors import CalorayError
from caloray.models.base import Surrogate

#: ONNX opset of exported graphs (ONNX Runtime ≥ 1.14 runs it).
OPSET = 18
BATCH_AXIS = "batch"
#: onnxscript's graph optimizer (constant folding, fusion) on the exported graph.
OPTIMIZE = True


class ExportError(CalorayError, ValueError):
    """A model has no exportable graph, or an export request is malformed."""


def _members(model: Surrogate) -> list[Surrogate]:
    return list(getattr(model, "members", [model]))


def _overrides(member: Surrogate, name: str) -> bool:
    """Whether the member's class implements `name` itself (not the base class's NotImplementedError)."""
    return callable(getattr(member, name, None)) and getattr(type(member), name) is not getattr(Surrogate, name, None)


class SamplingGraph(torch.nn.Module):
    """(incident energies (B,), noise (B, w_j) ...) → the sample (B, D); row i is drawn by member i mod K."""

    def __init__(self, model: Surrogate) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(_members(model))
        self.noise_names = list(self.members[0].noise_shapes())
        probe = self.members[0]
        n = 2
        energies = torch.full((n,), 1e4)
        noise = {name: torch.zeros(n, width) for name, (width, _) in probe.noise_shapes().items()}
        keys = [k for k in probe.sample_from_noise(energies, **noise) if k != "incident_energies"]
        self.output_name = keys[0]

    def forward(self, incident_energies: Tensor, *noise: Tensor) -> Tensor:
        n_members = len(self.members)
        if n_members == 1:
            return self.members[0].sample_from_noise(incident_energies, **dict(zip(self.noise_names, noise,
                                                                                  strict=True)))[self.output_name]
        # Every member runs on every row and row i keeps member (i mod K)'s result: K× the arithmetic of
        # `Ensemble.sample`'s row split, but without data-dependent shapes (which the exporter cannot trace).
        owner = torch.arange(incident_energies.shape[0], device=incident_energies.device) % n_members
        output = None
        for k, member in enumerate(self.members):
            part = member.sample_from_noise(incident_energies, **dict(zip(self.noise_names, noise, strict=True)))
            part = part[self.output_name]
            output = part if output is None else torch.where((owner == k)[:, None], part, output)
        return output


class DensityGraph(torch.nn.Module):
    """(showers (B, V) MeV, incident energies (B,) MeV) → log p (B,) of the model (ensembles: log mean p)."""

    def __init__(self, model: Surrogate) -> None:
        super().__init__()
        self.model = model

    def forward(self, showers: Tensor, incident_energies: Tensor) -> Tensor:
        return self.model.log_prob({"showers": showers, "incident_energies": incident_energies})


class PredictGraph(torch.nn.Module):
    """showers (B, V) MeV → predicted E_inc (B,) MeV (ensembles: the mean of the members)."""

    def __init__(self, model: Surrogate) -> None:
        super().__init__()
        self.model = model

    def forward(self, showers: Tensor) -> Tensor:
        return self.model.predict({"showers": showers})


@dataclass
class GraphSpec:
    """One exportable graph: its module, example inputs, names and a description for `export.json`."""

    name: str
    module: torch.nn.Module
    inputs: dict[str, Tensor]
    outputs: list[str]
    noise: dict[str, str] = field(default_factory=dict)


def graph_specs(model: Surrogate, batch: int = 3) -> tuple[list[GraphSpec], dict[str, str]]:
    """The graphs `model` supports (float32, example inputs of `batch` rows) and the reasons for the others."""
    member = _members(model)[0]
    generator = torch.Generator().manual_seed(0)
    energies = torch.exp(torch.empty(batch).uniform_(7.0, 11.0, generator=generator))  # 1–60 GeV
    specs, skipped = [], {}
    if _overrides(member, "sample_from_noise") and member.noise_shapes():
        noise = {}
        for name, (width, law) in member.noise_shapes().items():
            noise[name] = (torch.randn(batch, width, generator=generator) if law == "normal"
                           else torch.rand(batch, width, generator=generator))
        graph = SamplingGraph(model)
        specs.append(GraphSpec("sample", graph, {"incident_energy_mev": energies, **noise}, [graph.output_name],
                               {name: law for name, (_, law) in member.noise_shapes().items()}))
    elif _overrides(member, "sample"):
        skipped["sample"] = (f"{member.kind} has no noise-driven sampler (noise_shapes / sample_from_noise), so its "
                             "sampling has no fixed-input graph")
    n_voxels = getattr(member, "n_voxels", None)
    if n_voxels is None:  # e.g. a super-resolution flow: its likelihood is not one of showers given E_inc
        if _overrides(member, "log_prob"):
            skipped["log_prob"] = f"{member.kind} has no voxel map (n_voxels): its likelihood is not p(shower | E_inc)"
        return specs, skipped
    showers = torch.rand(batch, n_voxels, generator=generator) * energies[:, None] / n_voxels
    if _overrides(member, "log_prob"):
        specs.append(GraphSpec("log_prob", DensityGraph(model), {"showers": showers, "incident_energy_mev": energies},
                               ["log_prob"]))
    if callable(getattr(member, "predict", None)):
        specs.append(GraphSpec("predict", PredictGraph(model), {"showers": showers}, ["e_pred_mev"]))
    return specs, skipped


def export_graph(spec: GraphSpec, path: Path, opset: int = OPSET) -> Path:
    """Write `spec` as an ONNX file with a dynamic batch axis on every input and output (torch's dynamo
    exporter, onnxscript); returns the path."""
    batch = torch.export.Dim(BATCH_AXIS, min=1)
    dynamic: tuple = tuple({0: batch} for _ in spec.inputs)
    if isinstance(spec.module, SamplingGraph):  # forward(incident_energies, *noise)
        dynamic = (dynamic[0], dynamic[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(spec.module.eval(), tuple(spec.inputs.values()), dynamo=True,
                                    opset_version=opset, optimize=OPTIMIZE, input_names=list(spec.inputs),
                                    output_names=spec.outputs, dynamic_shapes=dynamic, verbose=False)
    program.save(str(path))
    return path


def run_onnx(path: Path, inputs: dict[str, Tensor]) -> Any:
    """The first output of the ONNX file at `path` on `inputs`, with ONNX Runtime on the CPU (numpy)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {name: value.numpy() for name, value in inputs.items()})[0]


def _reason(exc: BaseException) -> str:
    """One line about why an export failed: torch's exception summary when there is one, without colours."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "## Exception summary" in lines:
        lines = lines[lines.index("## Exception summary") + 1:]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def export_onnx(model: Surrogate, out_dir: str | Path, *, opset: int = OPSET, source: str = "",
                rtol: float = 1e-5) -> dict[str, Any]:
    """Export every supported graph of `model` (float32 copy, eval mode) into `out_dir` as `<graph>.onnx`,
    check each against torch on its example inputs with ONNX Runtime (relative tolerance `rtol`), and write
    `export.json` (opset, inputs, outputs, noise laws, skipped graphs and why). Returns that record.

    Raises `ExportError` when no graph exports.
    """
    import numpy as np

    out_dir = Path(out_dir)
    model = model.float().eval()
    specs, skipped = graph_specs(model)
    graphs = {}
    for spec in specs:
        path = out_dir / f"{spec.name}.onnx"
        try:
            export_graph(spec, path, opset)
            with torch.no_grad():
                expected = spec.module(*spec.inputs.values()).numpy()
            got = run_onnx(path, spec.inputs)
            scale = np.abs(expected).max() if expected.size else 0.0
            if not np.allclose(got, expected, rtol=rtol, atol=rtol * scale):
                raise ExportError(f"ONNX Runtime differs from torch by up to {np.abs(got - expected).max():.3g}")
        except Exception as exc:  # any exporter or runtime failure means "this graph does not export"
            path.unlink(missing_ok=True)
            skipped[spec.name] = _reason(exc)
            continue
        graphs[spec.name] = {
            "file": path.name,
            "inputs": {name: ["batch", *value.shape[1:]] for name, value in spec.inputs.items()},
            "outputs": spec.outputs,
            "noise": spec.noise,
        }
    kind = getattr(model, "member_kind", model.kind)
    if not graphs:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped.items()) or "no sample/log_prob/predict"
        raise ExportError(f"model {source or kind!r} ({kind}) has no ONNX-exportable graph ({reasons})")
    record = {"format": "onnx", "opset": opset, "dtype": "float32", "model": source, "kind": kind,
              "members": len(_members(model)), "units": "MeV", "graphs": graphs, "skipped": skipped}
    (out_dir / "export.json").write_text(json.dumps(record, indent=1) + "\n")
    return record

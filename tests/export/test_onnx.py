"""ONNX export: every graph a model kind supports runs in ONNX Runtime and matches torch on fixed noise."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from caloray.export import ExportError, export_onnx, graph_specs, run_onnx
from caloray.models import MODEL_KINDS, Ensemble, ShowerVAE, build, save_model

VOXEL_LAYER = [0, 0, 1, 1, 1, 2]
#: Tiny constructor arguments per kind; a kind added to the registry later is built from `voxel_layer` alone.
TINY = {
    "layer-energy-flow": {"transforms": 1, "hidden_features": [8]},
    "voxel-flow": {"transforms": 1, "hidden_features": [8]},
    "shower-vae": {"latent_dim": 3, "hidden_features": [8], "variant": "bernoulli"},
    "energy-regressor": {"hidden_features": [8]},
    "superres-flow": {"fine_shape": [2, 2, 2], "groups": [1, 1, 1], "transforms": 1, "hidden_features": [8]},
    "voxel-flow-student": {"teacher_config": {"voxel_layer": VOXEL_LAYER, "transforms": 1, "hidden_features": [8]},
                           "hidden_features": [8]},
    "shower-inn": {"blocks": 2, "hidden_features": [8]},
    "bayesian-shower-inn": {"blocks": 2, "hidden_features": [8]},
}
KINDS = sorted(kind for kind in MODEL_KINDS if kind != "ensemble")
#: What must export today (README "ONNX export"); other graphs may export too, a kind missing here may export
#: nothing (then `export_onnx` must say why).
MUST_EXPORT = {"shower-vae": {"sample"}, "layer-energy-flow": {"sample", "log_prob"}, "energy-regressor": {"predict"}}


def _tiny(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    kwargs = dict(TINY.get(kind, {}))
    if kind != "superres-flow":
        kwargs["voxel_layer"] = VOXEL_LAYER
    return build(kind, kwargs).float().eval()


def _torch_reference(model: Ensemble, graph: str, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    """What the exported graph must compute, from the torch model directly: sampling row by row with member
    i mod K on row i's noise (as `Ensemble.sample` assigns rows), densities and predictions of the ensemble."""
    with torch.no_grad():
        if graph == "sample":
            rows = []
            for i in range(len(inputs["incident_energy_mev"])):
                member = model.members[i % len(model.members)]
                noise = {k: v[i:i + 1] for k, v in inputs.items() if k != "incident_energy_mev"}
                out = member.sample_from_noise(inputs["incident_energy_mev"][i:i + 1], **noise)
                rows.append(next(v for k, v in out.items() if k != "incident_energies"))
            return torch.cat(rows).numpy()
        batch = {"showers": inputs["showers"], "incident_energies": inputs.get("incident_energy_mev")}
        return (model.log_prob(batch) if graph == "log_prob" else model.predict(batch)).numpy()


def test_noise_driven_sampler_is_the_sampler():
    """`sample_from_noise` with the draws `sample` would make gives `sample`'s output bit for bit (what the
    ONNX sampling graph computes is the model's own sampler, not an approximation)."""
    energies = torch.tensor([2e3, 3e4, 8e4])
    for model in (_tiny("layer-energy-flow"), ShowerVAE(voxel_layer=VOXEL_LAYER, latent_dim=3, hidden_features=[8])):
        torch.manual_seed(5)
        expected = model.sample(energies)
        torch.manual_seed(5)
        noise = {name: torch.randn(3, width) for name, (width, _) in model.noise_shapes().items()}
        got = model.sample_from_noise(energies, **noise)
        key = "showers" if "showers" in expected else "layer_energies"
        assert torch.equal(got[key], expected[key])


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_onnx_round_trip_per_kind(kind, tmp_path):
    """A 2-member ensemble of every registered kind (what `caloray export --model NAME@ALIAS` gets): each graph
    `export_onnx` keeps runs in ONNX Runtime and matches torch to 1e-5 relative on fixed noise and inputs of
    another batch size than the export example; a kind with no graph raises an error that says why."""
    model = Ensemble.from_members([_tiny(kind, seed) for seed in (0, 1)]).float().eval()
    specs, skipped = graph_specs(model)
    try:
        record = export_onnx(model, tmp_path, source=f"tiny {kind}")
    except ExportError as exc:
        assert not MUST_EXPORT.get(kind) and "has no ONNX-exportable graph" in str(exc)
        assert all(name in str(exc) for name in {spec.name for spec in specs} | set(skipped))  # says why
        return
    assert set(record["graphs"]) >= MUST_EXPORT.get(kind, set())
    assert record["opset"] == 18 and json.loads((tmp_path / "export.json").read_text()) == record
    assert set(record["graphs"]) | set(record["skipped"]) == {spec.name for spec in specs} | set(skipped)
    generator = torch.Generator().manual_seed(1)
    for spec in specs:
        if spec.name not in record["graphs"]:
            continue
        inputs = {}
        for name, value in spec.inputs.items():  # 5 new rows: the batch axis is dynamic
            rows = value[torch.randint(0, value.shape[0], (5,), generator=generator)]
            inputs[name] = torch.rand(rows.shape, generator=generator) if name == "hit_noise" else \
                rows * (1 + 0.1 * torch.rand(rows.shape, generator=generator))
        expected = _torch_reference(model, spec.name, inputs)
        got = run_onnx(tmp_path / f"{spec.name}.onnx", inputs)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max(),
                                   err_msg=f"{kind} {spec.name}")


def test_cli_export_of_a_model_without_graphs_exits_2(tmp_path):
    """A checkpoint whose kind has no exportable graph: one-line error naming the model, exit status 2."""
    path = save_model(_tiny("superres-flow"), tmp_path / "superres.pt")
    result = subprocess.run([sys.executable, "-m", "caloray.cli", "export", "--model", str(path), "--format", "onnx",
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert f"model '{path}'" in result.stderr and "has no ONNX-exportable graph" in result.stderr


def test_marginal_gaussianization_exports_without_searchsorted(tmp_path):
    """ONNX has no searchsorted: in export the quantile map counts knots instead, and gives torch's numbers
    (knots, the tails beyond them, and the log-Jacobian)."""
    from caloray.export.onnx import GraphSpec, export_graph
    from caloray.models.transforms import MarginalGaussianization

    class Gaussianize(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transform = MarginalGaussianization(4, knots=16)
            self.transform.fit(3.0 * torch.randn(500, 4, generator=torch.Generator().manual_seed(0)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, log_jacobian = self.transform.forward_and_log_abs_det_jacobian(x)
            return torch.cat([y, log_jacobian], dim=-1)

    module = Gaussianize().eval()
    x = 4.0 * torch.randn(64, 4, generator=torch.Generator().manual_seed(1))  # some beyond the end knots
    path = export_graph(GraphSpec("gaussianize", module, {"x": x}, ["y"]), tmp_path / "g.onnx")
    np.testing.assert_allclose(run_onnx(path, {"x": x}), module(x).detach().numpy(), rtol=1e-5, atol=1e-5)

"""VoxelFlowStudent: the teacher's likelihood, distillation onto the teacher's sampling map, checkpoints."""

from __future__ import annotations

import pytest
import torch
from models_toy_data import make_toy_batch

from caloray.errors import ConfigError
from caloray.models import LayerEnergyFlow, VoxelFlow, VoxelFlowStudent, load_model, save_model
from caloray.models.features import layer_sums


@pytest.fixture
def teacher(toy_voxel_layer) -> VoxelFlow:
    """A small teacher trained briefly on the toy showers (so its map is not the identity)."""
    torch.manual_seed(0)
    model = VoxelFlow(toy_voxel_layer, transforms=2, hidden_features=[16])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = make_toy_batch(256, seed=3)
    for _ in range(30):
        optimizer.zero_grad()
        model.loss(data).backward()
        optimizer.step()
    return model.eval()


def _distilled(teacher: VoxelFlow, tmp_path, steps: int) -> VoxelFlowStudent:
    path = save_model(teacher, tmp_path / "teacher.pt")
    torch.manual_seed(1)
    student = VoxelFlowStudent(teacher_checkpoint=str(path), hidden_features=[32])
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=1e-2)
    data = make_toy_batch(512, seed=4)
    student.train()
    for step in range(steps):
        optimizer.zero_grad()
        rows = torch.arange(step * 128, step * 128 + 128) % 512
        student.loss({key: value[rows] for key, value in data.items()}).backward()
        optimizer.step()
    return student.eval()


def test_student_keeps_the_teachers_likelihood_and_weights(teacher, tmp_path):
    student = _distilled(teacher, tmp_path, steps=0)
    batch = make_toy_batch(32)
    assert torch.equal(student.log_prob(batch), teacher.log_prob(batch))
    assert all(not p.requires_grad for p in student.teacher.parameters())
    loaded = load_model(save_model(student, tmp_path / "student.pt"), expected_kind="voxel-flow-student")
    assert torch.equal(loaded.log_prob(batch), teacher.log_prob(batch))
    assert loaded.config() == student.config()


@pytest.mark.slow
def test_distillation_reproduces_the_teachers_samples(teacher, tmp_path):
    before = _distilled(teacher, tmp_path, steps=0)
    student = _distilled(teacher, tmp_path, steps=150)
    held_out = make_toy_batch(256, seed=9)
    with torch.no_grad():
        initial, final = before.loss(held_out).item(), student.loss(held_out).item()
        assert final < 0.1 * initial, (initial, final)
        # same latent z → same logit features: the student inverts the teacher in one pass per block
        _, layer_energies = teacher.features(held_out["showers"])
        context = teacher.context(layer_energies, held_out["incident_energies"])
        z = torch.randn(256, teacher.n_voxels, generator=torch.Generator().manual_seed(0))
        from_teacher = teacher.flow(context).transform.inv(z)
        from_student = student.student_map(z, context)
    mean_error = (from_teacher - from_student).abs().mean().item()  # 150 steps: ~0.2σ (an untrained student: ~1σ)
    assert mean_error < 0.3 * from_teacher.std().item(), mean_error
    # showers sampled by both respect the requested layer energies; their voxel means agree
    torch.manual_seed(2)
    student_showers = student.sample(held_out["incident_energies"], layer_energies=layer_energies)["showers"]
    torch.manual_seed(2)
    teacher_showers = teacher.sample(held_out["incident_energies"], layer_energies=layer_energies)["showers"]
    torch.testing.assert_close(layer_sums(student_showers, teacher.voxel_layer, teacher.n_layers), layer_energies,
                               rtol=1e-5, atol=1e-6)
    fractions = [s / held_out["incident_energies"][:, None] for s in (student_showers, teacher_showers)]
    assert (fractions[0].mean(0) - fractions[1].mean(0)).abs().max() < 0.02


def test_student_needs_a_voxel_flow_teacher(tmp_path, toy_voxel_layer):
    path = save_model(LayerEnergyFlow(toy_voxel_layer, transforms=1, hidden_features=[4]), tmp_path / "f1.pt")
    with pytest.raises(ConfigError, match=r"f1\.pt: teacher_checkpoint holds a 'layer-energy-flow'"):
        VoxelFlowStudent(teacher_checkpoint=str(path))
    with pytest.raises(ConfigError, match="needs teacher_checkpoint"):
        VoxelFlowStudent()
    with pytest.raises(ConfigError, match="voxel_layer differs"):
        VoxelFlowStudent(teacher_config={"voxel_layer": toy_voxel_layer}, voxel_layer=[0, 1])

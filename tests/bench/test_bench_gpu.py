"""The GPU benchmark entry point: a CPU dry run produces every figure, and no GPU is a one-line exit 2."""

import math

import pytest
import torch

from bench import gpu


def test_cpu_dry_run_produces_every_figure(capsys, monkeypatch, tmp_path):
    recorded = []
    monkeypatch.setattr(gpu, "append_markdown", lambda *args, **kwargs: recorded.append(args))
    assert gpu.main(["--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not recorded  # a dry run never writes BENCHMARKS.md
    # Generation rows follow the registry: every kind ShowerSampler accepts on ds1-photons appears.
    names = [name for name, _ in gpu._samplers("ds1-photons", dry_run=True)]
    assert "shower-vae" in names and "layer-energy-flow → voxel-flow" in names
    for name in names:
        assert f"generate {name} ds1-photons" in out
    for figure in ("MLE 10×Flow-I", "null construction sks d=6480", "training layer-energy-flow",
                   "super-resolution ds2 A"):
        assert figure in out
    rates = [float(line.rsplit(":", 1)[1].split()[0]) for line in out.splitlines() if line.startswith("  ")
             and ":" in line and "skipped" not in line]
    assert rates and all(math.isfinite(rate) and rate > 0 for rate in rates)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_no_gpu_is_a_clear_exit_2(capsys):
    assert gpu.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA device" in err

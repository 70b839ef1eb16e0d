"""The GPU benchmark entry point: a CPU dry run produces every figure, and no GPU is a one-line exit 2.

The DDP figure trains through Ray Train (minutes under load on a 2-core machine): the fast dry-run test
checks that `main` asks for it with dry-run sizes, a slow test runs it for real with 2 gloo workers.
"""

import math

import pytest
import torch

from bench import gpu


def test_cpu_dry_run_produces_every_figure(capsys, monkeypatch, tmp_path):
    recorded, ddp_calls = [], []
    monkeypatch.setattr(gpu, "append_markdown", lambda *args, **kwargs: recorded.append(args))
    monkeypatch.setattr(gpu, "bench_ddp", lambda *args: ddp_calls.append(args) or [])
    assert gpu.main(["--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not recorded  # a dry run never writes BENCHMARKS.md
    assert ddp_calls == [("cpu", 8, 2, True)]  # tiny sizes; the figure itself: test_ddp_dry_run_on_two_cpu_workers
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


def test_ddp_with_fewer_than_two_gpus_is_a_not_measured_row(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    rows = gpu.bench_ddp("cuda", 1024, 25, dry_run=False)
    assert len(rows) == 1
    name, value, unit = rows[0]
    assert "not measured, 1 GPU(s) visible" in name and math.isnan(value) and unit == "events/s"
    assert name in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.integration
def test_ddp_dry_run_on_two_cpu_workers(ray_local, capsys):
    rows = gpu.bench_ddp("cpu", 8, 2, dry_run=True)
    names = [name for name, _, _ in rows]
    assert len(rows) == 3
    assert "1 CPU worker, batch 8 [4 steps/epoch]" in names[0]
    assert "DDP, 2 CPU workers (gloo), batch 8 each [2 steps/epoch each]" in names[1]
    one, two, ratio = (value for _, value, _ in rows)
    assert all(math.isfinite(v) and v > 0 for v in (one, two))
    assert ratio == pytest.approx(two / one)
    out = capsys.readouterr().out
    assert all(name in out for name in names)

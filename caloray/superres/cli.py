"""Command-line entry points of super-resolution: `caloray superres` and `caloray superres-study`.

`caloray/cli.py` calls `add_superres_commands(sub)` with its subparsers; handlers take the parsed
namespace and return an exit code (a `CalorayError` becomes exit 2 there).
"""

from __future__ import annotations

import argparse
from typing import Any


def _superres(args: argparse.Namespace) -> int:
    from caloray.geometry import get_geometry
    from caloray.io.checks import check_shower_inputs
    from caloray.runtime import init_ray
    from caloray.superres.coarse import CoarseGrid
    from caloray.superres.pipeline import upsample_files

    choice: str = args.choice
    grid = CoarseGrid.from_geometry(get_geometry(args.geometry), choice)
    check_shower_inputs(args.input, voxels=(grid.n_voxels, grid.n_coarse), check_values=args.check_values,
                        expected_by=f"super-resolution of {args.geometry} (fine or coarse grid {choice})")
    init_ray()
    paths = upsample_files(args.model, args.input, args.out, geometry=args.geometry, choice=choice,
                           oracle=False if args.strict else None, batch_size=args.batch_size, seed=args.seed,
                           tracking_uri=args.tracking_uri)
    print(f"wrote {len(paths)} upsampled shard(s) to {args.out}")
    return 0


def _superres_study(args: argparse.Namespace) -> int:
    from caloray.cli import run_with_config
    from caloray.studies.superres import SuperResStudyConfig, run_superres_study

    return run_with_config(args, SuperResStudyConfig, run_superres_study)


def add_superres_commands(sub: Any) -> None:
    """Register `superres` and `superres-study` on an argparse subparsers object."""
    from caloray.cli import check_values_flag, config_flag, tracking_flag

    p = sub.add_parser("superres", help="upsample coarse(-grained) showers with a SuperResolutionFlow (Ray Data)",
                       description="Reads fine reference shower files (coarse-grained internally; the oracle "
                       "variant takes their fine-layer energies) or coarse-only files (strict variant only) and "
                       "writes upsampled CaloChallenge HDF5 shards.")
    p.add_argument("--model", required=True, help="checkpoint file or registered NAME[:VERSION]")
    p.add_argument("--input", required=True, nargs="+", help="shower files, folders or globs")
    p.add_argument("--out", required=True, help="output folder of the HDF5 shards")
    p.add_argument("--choice", default="A", choices=("A", "B"), help="coarse grid of ds2 (default A)")
    p.add_argument("--strict", action="store_true", help="require the strict variant (no fine-layer energies)")
    p.add_argument("--geometry", default="ds2", help="geometry of the fine showers (default ds2)")
    p.add_argument("--batch-size", type=int, default=256, help="showers per flow call (default 256)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    tracking_flag(p)
    check_values_flag(p)
    p.set_defaults(handler=_superres)

    p = sub.add_parser("superres-study", help="the super-resolution thesis' evaluation: strict vs oracle upsampling",
                       description="Simulates ds2 electrons, trains the strict and the oracle SuperResolutionFlow, "
                       "upsamples held-out coarse showers (Ray Data) and tabulates p-value and sigma per feature map "
                       "× statistic × batch size against held-out fine showers, checks coarse-level energy "
                       "conservation and H0 acceptance, and writes plots, provenance and an MLflow run.")
    config_flag(p, "YAML with SuperResStudyConfig fields (see caloray/configs/superres-study.yaml)", positional=True)
    p.add_argument("--out", help="output folder")
    p.set_defaults(handler=_superres_study)

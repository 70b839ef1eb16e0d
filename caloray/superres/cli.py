"""Command-line entry points of super-resolution: `caloray superres` and `caloray superres-study`.

`caloray/cli.py` calls `add_superres_commands(sub)` with its subparsers; handlers take the parsed
namespace and return an exit code (a `CalorayError` becomes exit 2 there).
"""

from __future__ import annotations

import argparse
from typing import Any


def _superres(args: argparse.Namespace) -> int:
    from caloray.cli import run_command

    return run_command("superres", args, {
        "model": args.model, "inputs": args.input, "choice": args.choice, "oracle": False if args.strict else None,
        "geometry": args.geometry, "batch_size": args.batch_size, "seed": args.seed, "tracking_uri": args.tracking_uri})


def _superres_study(args: argparse.Namespace) -> int:
    from caloray.cli import run_command

    return run_command("superres-study", args)


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

"""`caloray generate`: flags (or a YAML `GenerationConfig`) → `generate`; exit 1 when the validation fails.

`caloray/cli.py` calls `add_generate_commands(sub)` with its subparsers.
"""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = """\
Sample showers from a trained surrogate into CaloChallenge HDF5 shards (shard-00000.h5, ...) with Ray Data:
a pool of actors loads the model once each (one GPU per actor when the cluster has GPUs). Shard i is
deterministic in (seed, i). Rerunning the same command resumes: valid shards are kept, missing, corrupt or
temporary ones are regenerated; an output folder of another configuration is refused. manifest.json lists
every shard with rows and sha256. The automatic validation generates --validate-n showers at the incident
energies of the reference (default: the model's training data) and compares total and layer energies (with
--validate-stats ... classifier also the classifier metric, gated by --max-auc); the MLflow run ends FINISHED
when it passes and FAILED when it fails.

Models: a shower-vae or (bayesian-)shower-inn, alone or with a Flow-I that gives their layer energies
(--layer-model; the model then only spreads each layer's energy over its voxels); a voxel-flow with its Flow-I
(--layer-model); a layer-energy-flow whose voxels are its layers.
Exit status: 0 done (validation passed or off), 1 validation failed, 2 bad input."""

EPILOG = """\
examples:
  caloray generate --model vae-ecal-hcal:2 --n 10000000 --energies log-uniform:1GeV-100GeV --out /data/gen
  caloray generate --model flow2.pt --layer-model flow1.pt --n 100000 --energies fixed:10000,50000 \\
      --geometry ds1-photons --reference train/ --out gen/"""


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model, "layer_model": args.layer_model, "n_showers": args.n, "energies": args.energies,
        "seed": args.seed, "shard_size": args.shard_size, "batch_size": args.batch_size,
        "tracking_uri": args.tracking_uri, "experiment": args.experiment, "use_gpu": args.gpu,
        "actors": args.actors, "max_restarts": args.max_restarts, "geometry": args.geometry,
        "validate_n": args.validate_n, "reference": args.reference, "validate_alpha": args.alpha,
        "validate_n_iter": args.n_iter, "validated_alias": args.validated_alias,
        "validate_statistics": args.validate_stats, "validate_max_auc": args.max_auc,
    }


def config_from_args(args: argparse.Namespace):
    """The `GenerationConfig` of the YAML file (if any), the command-line flags on top, then `--set`."""
    from caloray.workflows import build_config

    return build_config("generate", args.config, {**_flags(args), "out": args.out}, getattr(args, "set", None) or ())


def _generate(args: argparse.Namespace) -> int:
    from caloray.cli import run_command

    return run_command("generate", args, _flags(args))


def add_generate_commands(sub: Any) -> None:
    """Register `generate` on an argparse subparsers object."""
    from caloray.cli import check_values_flag, config_flag, tracking_flag

    p = sub.add_parser("generate", help="production generation of showers from a trained model (Ray Data, resumable)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="registry NAME[:VERSION] (newest when omitted), NAME@ALIAS (e.g. @validated) "
                   "or a checkpoint file (.pt)")
    p.add_argument("--layer-model", help="Flow-I (layer-energy-flow) giving the layer energies of a voxel-flow, "
                                         "shower-vae or shower-inn --model")
    p.add_argument("--n", type=int, help="number of showers (default 10000)")
    p.add_argument("--energies", metavar="SPEC", help="log-uniform:A-B | uniform:A-B | fixed:E1,E2,... in MeV, or "
                   "with units (log-uniform:1GeV-100GeV); default: log-uniform over the model's training range")
    p.add_argument("--out", help="output folder (default outputs/generate)")
    config_flag(p, "YAML with GenerationConfig fields (flags override it)")
    p.add_argument("--seed", type=int, help="root seed of every shard (default 0)")
    p.add_argument("--shard-size", type=int, help="showers per HDF5 shard (default 10000)")
    p.add_argument("--batch-size", type=int, help="showers per model call (default 2000)")
    p.add_argument("--validate-n", type=int, help="showers generated for the validation; 0 = off (default 10000)")
    p.add_argument("--reference", nargs="+", metavar="FILES",
                   help="reference shower files/folders/globs (default: the model's training data)")
    p.add_argument("--geometry", help="built-in geometry or binning XML (default: from the reference or the model)")
    p.add_argument("--alpha", type=float, help="family-wise significance level of the validation (default 0.01)")
    p.add_argument("--n-iter", type=int, help="bootstrap replicates of each validation test (default 500)")
    p.add_argument("--validate-stats", nargs="+", metavar="STAT",
                   help="validation statistics: mean-ks sks swd mmd fgd fgd-inf classifier (default mean-ks swd)")
    p.add_argument("--max-auc", type=float, help="with the statistic classifier: the validation FAILs when a "
                   "feature map's test AUC exceeds it")
    p.add_argument("--validated-alias", help="registry alias set on the model when the validation passes "
                   "(default validated)")
    p.add_argument("--actors", type=int, help="generation actors (default: one per GPU, else one per CPU)")
    p.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="one GPU per actor (default: when the Ray cluster has GPUs)")
    p.add_argument("--max-restarts", type=int, help="restarts of a crashed actor, its shard retried (default 3)")
    tracking_flag(p, "MLFLOW_TRACKING_URI, else a local store in the output folder")
    check_values_flag(p)
    p.add_argument("--experiment", help="MLflow experiment (default caloray-generate)")
    p.set_defaults(handler=_generate)

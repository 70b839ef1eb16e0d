"""The `caloray` command line: one entry point, one subcommand per capability.

A workflow subcommand's options are stored under the names of its `Config` fields (`dest`), so `run_command`
hands every given flag to the workflow's one `Config` (`caloray.workflows`) without a flag → field table: on top
of `--config FILE`, under `--set KEY=VALUE`. It checks the inputs before Ray starts and calls the same `run` as
`jobs/run.py` and the pipeline.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from caloray.errors import ConfigError

GENERATE_DESCRIPTION = """\
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

GENERATE_EPILOG = """\
examples:
  caloray generate --model vae-ecal-hcal:2 --n 10000000 --energies log-uniform:1GeV-100GeV --out /data/gen
  caloray generate --model flow2.pt --layer-model flow1.pt --n 100000 --energies fixed:10000,50000 \\
      --geometry ds1-photons --reference train/ --out gen/"""


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, unless it has none (None, off) or its help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or any(action.default is v for v in (None, False, argparse.SUPPRESS)) or \
                "default" in text:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser: defaults shown in --help, whatever formatter a command asks for."""

    def __init__(self, *args, formatter_class: type = _DefaultsFormatter, **kwargs) -> None:
        if not issubclass(formatter_class, _DefaultsFormatter):
            formatter_class = type("Formatter", (_DefaultsFormatter, formatter_class), {})
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def tracking_flag(p: argparse.ArgumentParser, default: str = "MLFLOW_TRACKING_URI") -> None:
    """`--tracking-uri` of every command that reads or writes MLflow."""
    p.add_argument("--tracking-uri", metavar="URI", help=f"MLflow tracking/registry URI (default: {default})")


def check_values_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check-values", action="store_true", help="before starting Ray, read every input shower and "
                   "reject NaN, inf and negative energies (otherwise the Ray workers find them)")


def root_layout_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root-layout", metavar="TREE[:ENERGIES[:SHOWERS]]",
                   help="ROOT inputs: TTree and branch names of the incident energies (MeV) and the fixed-size "
                   "showers array (default: the only TTree, branches incident_energies and showers)")


def is_new_folder(out: str | Path | None) -> bool:
    """Whether the output folder `out` does not exist yet (a failed run then removes it again: nothing
    half-written is left; a folder that existed, e.g. a run being resumed, is left as it is)."""
    return out is not None and "://" not in str(out) and not Path(out).exists()


def command_config(args: argparse.Namespace) -> Any:
    """Workflow `args.workflow`'s Config: `--config` (or the workflow's default file), then every option stored
    under one of its field names, then what the command's `extra(args)` derives (field → value), then
    `--set KEY=VALUE`."""
    from caloray.workflows import WORKFLOWS, build_config, workflow

    fields = {f.name for f in dataclasses.fields(workflow(args.workflow).Config)}
    flags = {key: value for key, value in vars(args).items() if key in fields}
    flags |= {**args.extra(args), WORKFLOWS[args.workflow].out_field: getattr(args, "out", None)}
    return build_config(args.workflow, args.config, flags, args.set)


def run_command(args: argparse.Namespace) -> int:
    """A workflow command: its Config (`command_config`), its input checks before Ray starts, then Ray, `run`,
    its summary; exit status 1 when a configured gate failed."""
    from caloray.workflows import WORKFLOWS, run_workflow

    config = command_config(args)
    if getattr(args, "out", None) is None:  # the config's folder: `main` removes it again if this run creates it
        args.out = str(getattr(config, WORKFLOWS[args.workflow].out_field))
        args.out_is_new = is_new_folder(args.out)
    options = {"resume": args.resume} if "resume" in args else {}
    return run_workflow(args.workflow, config, check_values=getattr(args, "check_values", False),
                        **options).exit_status


def _energy_spec(args: argparse.Namespace) -> dict[str, Any]:
    """simulate --energies SPEC: the prior and its energies or range in MeV."""
    from caloray.generate.energies import parse_energy_spec

    if not args.energy_spec:
        return {}
    spec = parse_energy_spec(args.energy_spec)
    flags = {"prior": spec.kind, "energies_mev": spec.values_mev or None}
    if spec.kind != "fixed":
        flags |= {"energy_min_mev": spec.low_mev, "energy_max_mev": spec.high_mev}
    return flags


def _energy_range(args: argparse.Namespace) -> dict[str, Any]:
    """calibrate/score: the allowed E_inc range in MeV (unset → the registered training range)."""
    from caloray.generate.energies import parse_energy_range

    if args.energy_range_gev:  # the older spelling: two numbers in GeV
        args.energy_range = "-".join(f"{value!r}GeV" for value in args.energy_range_gev)
    e_min, e_max = parse_energy_range(args.energy_range) if args.energy_range else (None, None)
    return {"energy_min_mev": e_min, "energy_max_mev": e_max}


def _train_tracking(args: argparse.Namespace) -> dict[str, Any]:
    """train: `--tracking-uri` is the TrainConfig's nested tracking.tracking_uri."""
    if not args.config:
        raise ConfigError("train: give the TrainConfig YAML as --config FILE")
    return {"tracking": {"tracking_uri": args.tracking_uri}} if args.tracking_uri else {}


def _geometry(args: argparse.Namespace) -> int:
    from caloray.geometry import BUILTIN, get_geometry, read_binning_xml, write_binning_xml

    if args.name is None:
        for name in BUILTIN:
            print(get_geometry(name).describe())
        return 0
    geometry = read_binning_xml(args.name) if args.name.endswith(".xml") else get_geometry(args.name)
    print(geometry.describe())
    for layer in geometry.layers:
        print(f"  layer {layer.id}: {layer.n_cells} cells")
    if args.xml:
        write_binning_xml(geometry, args.xml)
        print(f"wrote {args.xml}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from caloray.geometry import get_geometry
    from caloray.io import RootLayout, expand_paths
    from caloray.io.checks import check_shower_inputs

    geometry = get_geometry(args.geometry) if args.geometry else None
    layout = RootLayout.parse(args.root_layout)
    for path in expand_paths(args.files):  # one file at a time: what is fine is printed before a bad file stops
        [info] = check_shower_inputs(path, geometry=geometry, layout=layout, check_values=args.check_values)
        print(f"{path}: {info.n_showers} showers × {info.n_voxels} voxels ({info.showers_dtype}), "
              f"geometry={info.geometry}, extra={list(info.per_row_keys)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from caloray.export import export_onnx
    from caloray.tracking import load

    model = load(args.model, tracking_uri=args.tracking_uri)
    record = export_onnx(model, args.out, opset=args.opset, source=args.model)
    for name, graph in record["graphs"].items():
        print(f"{name}: {Path(args.out) / graph['file']}  inputs {graph['inputs']} → {graph['outputs']}")
    for name, reason in record["skipped"].items():
        print(f"{name}: not exported ({reason})")
    print(f"opset {record['opset']}, float32, MeV; description: {Path(args.out) / 'export.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="caloray",
        description="Machine-learned calorimeter simulation, calibration and validation on Ray, tracked in MLflow.",
    )
    parser.add_argument("--version", action="version", version=f"caloray {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, extra: Callable[[argparse.Namespace], dict[str, Any]] | None = None, *,
                config: str = "YAML with the workflow's Config fields (flags override it)", positional: bool = False,
                **kwargs: Any) -> argparse.ArgumentParser:
        """Workflow subcommand `name`: `--config FILE` (`config`: its help; `positional`: the older `COMMAND FILE`
        too) and `--set`; runs `run_command` (`extra`: the flags it derives from the others)."""
        p = sub.add_parser(name, **kwargs)
        p.add_argument("--config", metavar="FILE", help=config)
        if positional:
            p.add_argument("config_file", nargs="?", metavar="CONFIG", help="the same as --config FILE")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any Config field (dotted keys reach nested ones; YAML values); repeatable")
        p.set_defaults(handler=run_command, workflow=name, extra=extra or (lambda args: {}))
        return p

    p = command("demo", config="PipelineConfig YAML (default: the embedded caloray/configs/demo.yaml)",
                help="end-to-end pipeline on built-in simulated data (what `make run` does)",
                description="Simulate → ingest with Ray Data → train Flow-I, a shower generator and a "
                "super-resolution flow on Ray Train → generate → validate → calibrate → super-resolve, "
                "all tracked in the local MLflow store; ends with a summary and the MLflow UI command. "
                "Rerunning into the same folder reuses finished stages.")
    p.add_argument("--out", help="output folder (default outputs/demo)")
    p.add_argument("--gpu", action="store_const", const=True, help="train with one GPU per Ray Train worker")
    tracking_flag(p, "MLFLOW_TRACKING_URI, else a local store in the output folder")

    p = command("simulate", _energy_spec, config="YAML file with SimConfig fields (flags override it)",
                help="simulate showers with the built-in parametrized simulator",
                description="Ray-parallel over shards, deterministic per (seed, shard), streaming to "
                "CaloChallenge HDF5 shards. Parametrized showers, not Geant4.")
    p.add_argument("--geometry", help="ds1-photons | ds1-pions | ds2 | ds3 | ecal-hcal")
    p.add_argument("--particle", help="photon | electron | pion (default: the geometry's)")
    p.add_argument("--prior", help="fixed | uniform | log-uniform | ds1-ladder (--energies sets it too)")
    p.add_argument("--n", dest="n_showers", type=int, help="number of showers")
    p.add_argument("--energies", dest="energy_spec", metavar="SPEC", help="prior and energies in one: "
                   "log-uniform:A-B | uniform:A-B | fixed:E1,E2,... in MeV or with units (log-uniform:1GeV-100GeV), "
                   "as `generate --energies`")
    p.add_argument("--seed", type=int)
    p.add_argument("--shard-size", type=int, help="showers per HDF5 shard")
    p.add_argument("--out", required=True, help="output folder for the shards")

    p = command("features", help="compute high-level features of shower files (Parquet)",
                description="Layer energies, totals, E_dep/E_inc, centroids and widths, hit counts.")
    p.add_argument("--input", dest="inputs", nargs="+", required=True,
                   help="HDF5 or ROOT files, folders, glob patterns or fsspec URLs (s3://…, file://…)")
    p.add_argument("--geometry", required=True)
    p.add_argument("--out", required=True)
    check_values_flag(p)
    root_layout_flag(p)

    p = sub.add_parser("geometry", help="describe a geometry or export it as binning XML")
    p.add_argument("name", nargs="?", help="built-in name or a binning XML path (omit to list built-ins)")
    p.add_argument("--xml", help="write the geometry as CaloChallenge binning XML")
    p.set_defaults(handler=_geometry)

    p = sub.add_parser("inspect", help="validate shower files and print their structure")
    p.add_argument("files", nargs="+", help="HDF5 or ROOT files, folders, glob patterns or fsspec URLs")
    p.add_argument("--geometry", help="check the voxel count against this geometry")
    p.add_argument("--check-values", action="store_true", help="also scan for NaN/inf/negative energies")
    root_layout_flag(p)
    p.set_defaults(handler=_inspect)

    p = command("train", _train_tracking, config="TrainConfig YAML (see caloray/configs/train-*.yaml)", positional=True,
                help="train an ensemble on Ray Train, tracked in MLflow",
                description="Train K members of a surrogate (YAML TrainConfig) concurrently on Ray Train, "
                "log each as a nested MLflow run and register the ensemble.")
    p.add_argument("--resume", action="store_true", help="continue interrupted members from their checkpoints")
    tracking_flag(p, "the config's tracking.tracking_uri, else MLFLOW_TRACKING_URI, else a local store")

    def model_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="registry NAME[:VERSION], NAME@ALIAS or a checkpoint file (.pt)")
        tracking_flag(p)
        p.add_argument("--energy-range", metavar="A-B", help="allowed E_inc range, MeV or with units (1GeV-100GeV); "
                       "default: the range the model was trained on")
        p.add_argument("--energy-range-gev", type=float, nargs=2, metavar=("MIN", "MAX"),
                       help="older spelling of --energy-range: two numbers in GeV")
        p.add_argument("--seed", type=int, help="seed of the dequantization noise (default: 0)")
        check_values_flag(p)

    p = command("calibrate", _energy_range, help="MLE energy calibration with per-shower resolution (Ray Data)",
                description="For every shower: E_pred = argmax_z p(x|z) within the model's energy range, "
                "the Δ(−2 log L) = 1 crossings, resolution, asymmetry and flags, written as Parquet "
                "shards; resumable (finished shards are skipped).")
    model_flags(p)
    p.add_argument("--input", dest="inputs", nargs="+", required=True, help="shower files, folders or globs")
    p.add_argument("--out", required=True)
    p.add_argument("--rows-per-unit", type=int, help="showers per output shard (default: 4096)")

    p = command("score", _energy_range, help="anomaly scores −log p(x|E_rec) and, with --signal, ROC/AUC/SIC",
                description="Scores every shower with the flow at its reconstructed (MLE) energy; given a "
                "labelled signal sample, writes the ROC curve, AUC and significance improvement.")
    model_flags(p)
    p.add_argument("--input", dest="inputs", nargs="+", required=True, help="background (reference) shower files")
    p.add_argument("--signal", nargs="+", help="signal shower files")
    p.add_argument("--out", required=True)

    p = command("calibration-study", config="YAML with CalibrationStudyConfig fields", positional=True,
                help="the MLE-calibration paper's study on simulated pions",
                description="Trains flow and DNN ensembles on uniform and log-uniform priors, calibrates "
                "10…90 GeV evaluation sets, and writes/logs the bias and resolution table and plots.")
    p.add_argument("--out", help="output folder")

    p = command("validate", config="YAML with ValidationConfig fields (flags override it)",
                help="calibrated two-sample tests of candidate vs reference showers",
                description="Feature maps × statistics on Ray: the calibrated test (a held-out experiment "
                "against the permutation null of its rows: p_value, sigma, PASS/FAIL at alpha / n_tests) and "
                "the thesis summary (bootstrap or permutation null: median_p, power); writes replicate arrays "
                "(Parquet) and null-vs-alternative plots, and logs them to MLflow. The statistic 'classifier' "
                "trains a DNN per feature map to tell the samples apart (test AUC, JSD, calibration plot); "
                "the reference should be held out from the generator's training data.")
    p.add_argument("--reference", nargs="+", help="reference shower files, folders or globs")
    p.add_argument("--candidate", nargs="+", help="candidate (generated) shower files")
    p.add_argument("--geometry", help="geometry of both samples")
    p.add_argument("--features", nargs="+", help="voxels voxels-normalized coarse coarse-A coarse-B total-energy "
                   "layer-energies shower-shape calochallenge")
    p.add_argument("--stats", dest="statistics", nargs="+", help="mean-ks sks swd mmd fgd fgd-inf classifier (the "
                   "CaloChallenge classifier metric: test AUC and JSD per feature map, one Ray task each)")
    p.add_argument("--max-auc", type=float, help="classifier gate: exit status 1 when a test AUC exceeds it")
    p.add_argument("--batch-size", dest="batch_sizes", type=int, nargs="+",
                   help="rows per sample in one experiment (several allowed)")
    p.add_argument("--n-iter", type=int, help="null and alternative replicates")
    p.add_argument("--n-slices", type=int, help="random directions of the sliced statistics")
    p.add_argument("--mode", choices=["bootstrap", "permutation"])
    p.add_argument("--seed", type=int)
    p.add_argument("--max-rows", type=int, help="at most this many showers per sample")
    p.add_argument("--alpha", type=float, help="family-wise level of the PASS/FAIL line (Bonferroni over the tests)")
    p.add_argument("--out", help="output folder")
    tracking_flag(p)
    check_values_flag(p)
    root_layout_flag(p)

    p = command("amplification",
                config="AmplificationConfig YAML (see caloray/configs/amplification.yaml)", positional=True,
                help="the camel-back amplification study with flows and flow ensembles",
                description="Quantile MSE vs generated events for 10/20/50 quantiles, the 5-parameter fit "
                "benchmark, amplification factors with uncertainties from repeated trainings (Ray tasks).")
    p.add_argument("--out", help="output folder (default outputs/amplification)")

    p = sub.add_parser("export", help="export a trained model as ONNX graphs for C++ inference (ONNX Runtime)",
                       description="Writes sample.onnx (incident energy + noise → shower or layer energies), "
                       "log_prob.onnx and/or predict.onnx, whichever the model supports, with the preprocessing "
                       "folded in and a dynamic batch axis; each graph is checked against torch with ONNX Runtime "
                       "before it is kept. export.json lists inputs, noise laws, opset and skipped graphs.")
    p.add_argument("--model", required=True, help="registry NAME[:VERSION], NAME@ALIAS or a checkpoint file (.pt)")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    tracking_flag(p)
    p.set_defaults(handler=_export)

    p = command("superres", help="upsample coarse(-grained) showers with a SuperResolutionFlow (Ray Data)",
                description="Reads fine reference shower files (coarse-grained internally; the oracle "
                "variant takes their fine-layer energies) or coarse-only files (strict variant only) and "
                "writes upsampled CaloChallenge HDF5 shards.")
    p.add_argument("--model", required=True, help="checkpoint file or registered NAME[:VERSION]")
    p.add_argument("--input", dest="inputs", required=True, nargs="+", help="shower files, folders or globs")
    p.add_argument("--out", required=True, help="output folder of the HDF5 shards")
    p.add_argument("--choice", choices=("A", "B"), help="coarse grid of ds2 (default A)")
    p.add_argument("--strict", dest="oracle", action="store_const", const=False,
                   help="require the strict variant (no fine-layer energies)")
    p.add_argument("--geometry", help="geometry of the fine showers (default ds2)")
    p.add_argument("--batch-size", type=int, help="showers per flow call (default 256)")
    p.add_argument("--seed", type=int, help="sampling seed (default 0)")
    tracking_flag(p)
    check_values_flag(p)

    p = command("superres-study", positional=True,
                config="YAML with SuperResStudyConfig fields (see caloray/configs/superres-study.yaml)",
                help="the super-resolution thesis' evaluation: strict vs oracle upsampling",
                description="Simulates ds2 electrons, trains the strict and the oracle SuperResolutionFlow, "
                "upsamples held-out coarse showers (Ray Data) and tabulates p-value and sigma per feature map "
                "× statistic × batch size against held-out fine showers, checks coarse-level energy "
                "conservation and H0 acceptance, and writes plots, provenance and an MLflow run.")
    p.add_argument("--out", help="output folder")

    p = command("generate", config="YAML with GenerationConfig fields (flags override it)",
                help="production generation of showers from a trained model (Ray Data, resumable)",
                description=GENERATE_DESCRIPTION, epilog=GENERATE_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="registry NAME[:VERSION] (newest when omitted), NAME@ALIAS (e.g. @validated) "
                   "or a checkpoint file (.pt)")
    p.add_argument("--layer-model", help="Flow-I (layer-energy-flow) giving the layer energies of a voxel-flow, "
                                         "shower-vae or shower-inn --model")
    p.add_argument("--n", dest="n_showers", type=int, help="number of showers (default 10000)")
    p.add_argument("--energies", metavar="SPEC", help="log-uniform:A-B | uniform:A-B | fixed:E1,E2,... in MeV, or "
                   "with units (log-uniform:1GeV-100GeV); default: log-uniform over the model's training range")
    p.add_argument("--out", help="output folder (default outputs/generate)")
    p.add_argument("--seed", type=int, help="root seed of every shard (default 0)")
    p.add_argument("--shard-size", type=int, help="showers per HDF5 shard (default 10000)")
    p.add_argument("--batch-size", type=int, help="showers per model call (default 2000)")
    p.add_argument("--validate-n", type=int, help="showers generated for the validation; 0 = off (default 10000)")
    p.add_argument("--reference", nargs="+", metavar="FILES",
                   help="reference shower files/folders/globs (default: the model's training data)")
    p.add_argument("--geometry", help="built-in geometry or binning XML (default: from the reference or the model)")
    p.add_argument("--alpha", dest="validate_alpha", type=float,
                   help="family-wise significance level of the validation (default 0.01)")
    p.add_argument("--n-iter", dest="validate_n_iter", type=int,
                   help="bootstrap replicates of each validation test (default 500)")
    p.add_argument("--validate-stats", dest="validate_statistics", nargs="+", metavar="STAT",
                   help="validation statistics: mean-ks sks swd mmd fgd fgd-inf classifier (default mean-ks swd)")
    p.add_argument("--max-auc", dest="validate_max_auc", type=float, help="with the statistic classifier: the "
                   "validation FAILs when a feature map's test AUC exceeds it")
    p.add_argument("--validated-alias", help="registry alias set on the model when the validation passes "
                   "(default validated)")
    p.add_argument("--actors", type=int, help="generation actors (default: one per GPU, else one per CPU)")
    p.add_argument("--gpu", dest="use_gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="one GPU per actor (default: when the Ray cluster has GPUs)")
    p.add_argument("--max-restarts", type=int, help="restarts of a crashed actor, its shard retried (default 3)")
    tracking_flag(p, "MLFLOW_TRACKING_URI, else a local store in the output folder")
    check_values_flag(p)
    p.add_argument("--experiment", help="MLflow experiment (default caloray-generate)")

    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("caloray")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _stdout_gone() -> int:
    """`caloray … | head` closed the pipe: stop quietly (no traceback, no error at interpreter exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the exit-time flush of the lost output goes nowhere
    return 128 + signal.SIGPIPE  # what a process killed by SIGPIPE reports, as `cat` or `ls` would


def report_errors(command: str, state: argparse.Namespace, fn: Callable[[], int]) -> int:
    """`fn()`'s exit status, for every front door (this CLI and `jobs/run.py`): a caloray error, also one raised
    inside a Ray task or actor, is one line on stderr and exit 2, and the output folder `state.out` is removed when
    `state.out_is_new` (nothing half-written; a folder that existed, e.g. a run being resumed, is kept)."""
    from caloray.errors import is_resumable, one_line, user_error

    try:
        code = fn()
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        print(f"{command}: error: {one_line(error)}", file=sys.stderr)
        if state.out_is_new and not is_resumable(error) and Path(state.out).is_dir():
            shutil.rmtree(state.out, ignore_errors=True)  # the folder was this run's alone
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (exit status and errors: `report_errors`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config_file", None):
        if args.config:
            parser.error(f"{args.command}: give the config once, as --config FILE or as CONFIG")
        args.config = args.config_file
    args.out_is_new = is_new_folder(getattr(args, "out", None))
    return report_errors(f"caloray {args.command}", args, lambda: args.handler(args))

if __name__ == "__main__":
    sys.exit(main())

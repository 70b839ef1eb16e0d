"""The `caloray` command line: one entry point, one subcommand per capability.

Each workflow subcommand maps its flags onto the fields of the workflow's one `Config` (`caloray.workflows`),
on top of `--config FILE`, under `--set KEY=VALUE`, checks its inputs before Ray starts and calls the same `run`
as `jobs/run.py` and the pipeline.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from caloray.errors import ConfigError

Handler = Callable[[argparse.Namespace], int]


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


def config_flag(p: argparse.ArgumentParser, what: str, *, positional: bool = False) -> None:
    """`--config FILE` (every command that takes a config); `positional` keeps the older `COMMAND FILE` too."""
    p.add_argument("--config", metavar="FILE", help=what)
    if positional:
        p.add_argument("config_file", nargs="?", metavar="CONFIG", help="the same as --config FILE")


def tracking_flag(p: argparse.ArgumentParser, default: str = "MLFLOW_TRACKING_URI") -> None:
    """`--tracking-uri` of every command that reads or writes MLflow."""
    p.add_argument("--tracking-uri", metavar="URI", help=f"MLflow tracking/registry URI (default: {default})")


def check_values_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check-values", action="store_true", help="before starting Ray, read every input shower and "
                   "reject NaN, inf and negative energies (otherwise the Ray workers find them)")


def is_new_folder(out: str | Path | None) -> bool:
    """Whether the output folder `out` does not exist yet (a failed run then removes it again: nothing
    half-written is left; a folder that existed, e.g. a run being resumed, is left as it is)."""
    return out is not None and "://" not in str(out) and not Path(out).exists()


def run_command(name: str, args: argparse.Namespace, flags: dict[str, Any] | None = None, **options: Any) -> int:
    """Workflow `name`'s Config from `--config` (or its default), the command's flags (field → value) and
    `--set KEY=VALUE`; its input checks before Ray starts; then Ray, `run`, its summary; exit status 1 when a
    configured gate failed."""
    from caloray.runtime import init_ray
    from caloray.workflows import WORKFLOWS, build_config, output_folder, workflow

    flags = {**(flags or {}), WORKFLOWS[name].out_field: getattr(args, "out", None)}
    config = build_config(name, getattr(args, "config", None), flags, getattr(args, "set", None) or ())
    if getattr(args, "out", None) is None:  # the config's folder: `main` removes it again if this run creates it
        args.out = str(output_folder(name, config))
        args.out_is_new = is_new_folder(args.out)
    module = workflow(name)
    if hasattr(module, "check_inputs"):
        module.check_inputs(config, check_values=getattr(args, "check_values", False))
    init_ray()
    result = module.run(config, **options)
    print(result.summary, flush=True)
    return result.exit_status


def _demo(args: argparse.Namespace) -> int:
    return run_command("demo", args, {"gpu": args.gpu or None, "tracking_uri": args.tracking_uri})


def _simulate(args: argparse.Namespace) -> int:
    from caloray.generate.energies import parse_energy_spec

    flags = {"geometry": args.geometry, "particle": args.particle, "prior": args.prior, "n_showers": args.n,
             "seed": args.seed, "shard_size": args.shard_size}
    if args.energies:
        spec = parse_energy_spec(args.energies)
        flags |= {"prior": spec.kind, "energies_mev": spec.values_mev or None}
        if spec.kind != "fixed":
            flags |= {"energy_min_mev": spec.low_mev, "energy_max_mev": spec.high_mev}
    return run_command("simulate", args, flags)


def _features(args: argparse.Namespace) -> int:
    return run_command("features", args, {"inputs": args.input, "geometry": args.geometry,
                                            "root_layout": args.root_layout})


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


def _train(args: argparse.Namespace) -> int:
    if not args.config:
        raise ConfigError("train: give the TrainConfig YAML as --config FILE")
    tracking = {"tracking": {"tracking_uri": args.tracking_uri}} if args.tracking_uri else {}
    return run_command("train", args, tracking, resume=args.resume)


def _model_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The model, its allowed E_inc range (MeV; unset → the registered training range) and the seed."""
    from caloray.generate.energies import parse_energy_range

    if args.energy_range_gev:  # the older spelling: two numbers in GeV
        args.energy_range = "-".join(f"{value!r}GeV" for value in args.energy_range_gev)
    e_min, e_max = parse_energy_range(args.energy_range) if args.energy_range else (None, None)
    return {"model": args.model, "tracking_uri": args.tracking_uri, "energy_min_mev": e_min, "energy_max_mev": e_max,
            "seed": args.seed, "inputs": args.input}


def _calibrate(args: argparse.Namespace) -> int:
    return run_command("calibrate", args, {**_model_flags(args), "rows_per_unit": args.rows_per_unit})


def _score(args: argparse.Namespace) -> int:
    return run_command("score", args, {**_model_flags(args), "signal": args.signal})


def _validate(args: argparse.Namespace) -> int:
    return run_command("validate", args, {
        "reference": args.reference, "candidate": args.candidate, "geometry": args.geometry, "features": args.features,
        "statistics": args.stats, "batch_sizes": args.batch_size, "n_iter": args.n_iter, "n_slices": args.n_slices,
        "seed": args.seed, "mode": args.mode, "max_rows": args.max_rows, "alpha": args.alpha, "max_auc": args.max_auc,
        "root_layout": args.root_layout, "tracking_uri": args.tracking_uri})


def _root_layout_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root-layout", metavar="TREE[:ENERGIES[:SHOWERS]]",
                   help="ROOT inputs: TTree and branch names of the incident energies (MeV) and the fixed-size "
                   "showers array (default: the only TTree, branches incident_energies and showers)")


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

    p = sub.add_parser("demo", help="end-to-end pipeline on built-in simulated data (what `make run` does)",
                       description="Simulate → ingest with Ray Data → train Flow-I, a shower generator and a "
                       "super-resolution flow on Ray Train → generate → validate → calibrate → super-resolve, "
                       "all tracked in the local MLflow store; ends with a summary and the MLflow UI command. "
                       "Rerunning into the same folder reuses finished stages.")
    p.add_argument("--out", help="output folder (default outputs/demo)")
    config_flag(p, "PipelineConfig YAML (default: the embedded caloray/configs/demo.yaml)")
    p.add_argument("--gpu", action="store_true", help="train with one GPU per Ray Train worker")
    tracking_flag(p, "MLFLOW_TRACKING_URI, else a local store in the output folder")
    p.set_defaults(handler=_demo)

    p = sub.add_parser("simulate", help="simulate showers with the built-in parametrized simulator",
                       description="Ray-parallel over shards, deterministic per (seed, shard), streaming to "
                       "CaloChallenge HDF5 shards. Parametrized showers, not Geant4.")
    p.add_argument("--geometry", help="ds1-photons | ds1-pions | ds2 | ds3 | ecal-hcal")
    p.add_argument("--particle", help="photon | electron | pion (default: the geometry's)")
    p.add_argument("--prior", help="fixed | uniform | log-uniform | ds1-ladder (--energies sets it too)")
    p.add_argument("--n", type=int, help="number of showers")
    p.add_argument("--energies", metavar="SPEC", help="prior and energies in one: log-uniform:A-B | uniform:A-B | "
                   "fixed:E1,E2,... in MeV or with units (log-uniform:1GeV-100GeV), as `generate --energies`")
    p.add_argument("--seed", type=int)
    p.add_argument("--shard-size", type=int, help="showers per HDF5 shard")
    config_flag(p, "YAML file with SimConfig fields (flags override it)")
    p.add_argument("--out", required=True, help="output folder for the shards")
    p.set_defaults(handler=_simulate)

    p = sub.add_parser("features", help="compute high-level features of shower files (Parquet)",
                       description="Layer energies, totals, E_dep/E_inc, centroids and widths, hit counts.")
    p.add_argument("--input", nargs="+", required=True,
                   help="HDF5 or ROOT files, folders, glob patterns or fsspec URLs (s3://…, file://…)")
    p.add_argument("--geometry", required=True)
    p.add_argument("--out", required=True)
    check_values_flag(p)
    _root_layout_flag(p)
    p.set_defaults(handler=_features)

    p = sub.add_parser("geometry", help="describe a geometry or export it as binning XML")
    p.add_argument("name", nargs="?", help="built-in name or a binning XML path (omit to list built-ins)")
    p.add_argument("--xml", help="write the geometry as CaloChallenge binning XML")
    p.set_defaults(handler=_geometry)

    p = sub.add_parser("inspect", help="validate shower files and print their structure")
    p.add_argument("files", nargs="+", help="HDF5 or ROOT files, folders, glob patterns or fsspec URLs")
    p.add_argument("--geometry", help="check the voxel count against this geometry")
    p.add_argument("--check-values", action="store_true", help="also scan for NaN/inf/negative energies")
    _root_layout_flag(p)
    p.set_defaults(handler=_inspect)
    p = sub.add_parser("train", help="train an ensemble on Ray Train, tracked in MLflow",
                       description="Train K members of a surrogate (YAML TrainConfig) concurrently on Ray Train, "
                       "log each as a nested MLflow run and register the ensemble.")
    config_flag(p, "TrainConfig YAML (see caloray/configs/train-*.yaml)", positional=True)
    p.add_argument("--resume", action="store_true", help="continue interrupted members from their checkpoints")
    tracking_flag(p, "the config's tracking.tracking_uri, else MLFLOW_TRACKING_URI, else a local store")
    p.set_defaults(handler=_train)

    def model_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="registry NAME[:VERSION], NAME@ALIAS or a checkpoint file (.pt)")
        tracking_flag(p)
        p.add_argument("--energy-range", metavar="A-B", help="allowed E_inc range, MeV or with units (1GeV-100GeV); "
                       "default: the range the model was trained on")
        p.add_argument("--energy-range-gev", type=float, nargs=2, metavar=("MIN", "MAX"),
                       help="older spelling of --energy-range: two numbers in GeV")
        p.add_argument("--seed", type=int, default=0, help="seed of the dequantization noise")
        check_values_flag(p)

    p = sub.add_parser("calibrate", help="MLE energy calibration with per-shower resolution (Ray Data)",
                       description="For every shower: E_pred = argmax_z p(x|z) within the model's energy range, "
                       "the Δ(−2 log L) = 1 crossings, resolution, asymmetry and flags, written as Parquet "
                       "shards; resumable (finished shards are skipped).")
    model_flags(p)
    p.add_argument("--input", nargs="+", required=True, help="shower files, folders or globs")
    p.add_argument("--out", required=True)
    p.add_argument("--rows-per-unit", type=int, default=4096, help="showers per output shard")
    p.set_defaults(handler=_calibrate)

    p = sub.add_parser("score", help="anomaly scores −log p(x|E_rec) and, with --signal, ROC/AUC/SIC",
                       description="Scores every shower with the flow at its reconstructed (MLE) energy; given a "
                       "labelled signal sample, writes the ROC curve, AUC and significance improvement.")
    model_flags(p)
    p.add_argument("--input", nargs="+", required=True, help="background (reference) shower files")
    p.add_argument("--signal", nargs="+", help="signal shower files")
    p.add_argument("--out", required=True)
    p.set_defaults(handler=_score)

    p = sub.add_parser("calibration-study", help="the MLE-calibration paper's study on simulated pions",
                       description="Trains flow and DNN ensembles on uniform and log-uniform priors, calibrates "
                       "10…90 GeV evaluation sets, and writes/logs the bias and resolution table and plots.")
    config_flag(p, "YAML with CalibrationStudyConfig fields", positional=True)
    p.add_argument("--out", help="output folder")
    p.set_defaults(handler=functools.partial(run_command, "calibration-study"))
    p = sub.add_parser("validate", help="calibrated two-sample tests of candidate vs reference showers",
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
    p.add_argument("--stats", nargs="+", help="mean-ks sks swd mmd fgd fgd-inf classifier (the CaloChallenge "
                   "classifier metric: test AUC and JSD per feature map, one Ray task each)")
    p.add_argument("--max-auc", type=float, help="classifier gate: exit status 1 when a test AUC exceeds it")
    p.add_argument("--batch-size", type=int, nargs="+", help="rows per sample in one experiment (several allowed)")
    p.add_argument("--n-iter", type=int, help="null and alternative replicates")
    p.add_argument("--n-slices", type=int, help="random directions of the sliced statistics")
    p.add_argument("--mode", choices=["bootstrap", "permutation"])
    p.add_argument("--seed", type=int)
    p.add_argument("--max-rows", type=int, help="at most this many showers per sample")
    p.add_argument("--alpha", type=float, help="family-wise level of the PASS/FAIL line (Bonferroni over the tests)")
    config_flag(p, "YAML with ValidationConfig fields (flags override it)")
    p.add_argument("--out", help="output folder")
    tracking_flag(p)
    check_values_flag(p)
    _root_layout_flag(p)
    p.set_defaults(handler=_validate)
    p = sub.add_parser("amplification", help="the camel-back amplification study with flows and flow ensembles",
                       description="Quantile MSE vs generated events for 10/20/50 quantiles, the 5-parameter fit "
                       "benchmark, amplification factors with uncertainties from repeated trainings (Ray tasks).")
    config_flag(p, "AmplificationConfig YAML (see caloray/configs/amplification.yaml)", positional=True)
    p.add_argument("--out", help="output folder (default outputs/amplification)")
    p.set_defaults(handler=functools.partial(run_command, "amplification"))

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

    from caloray.superres.cli import add_superres_commands

    add_superres_commands(sub)
    from caloray.generate.cli import add_generate_commands

    add_generate_commands(sub)
    from caloray.workflows import WORKFLOWS

    for name, p in sub.choices.items():  # every workflow command takes a config file and field overrides
        if name in WORKFLOWS:
            if not any(a.dest == "config" for a in p._actions):
                config_flag(p, f"YAML with the {name} workflow's Config fields (flags override it)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override any Config field (dotted keys reach nested ones; YAML values); repeatable")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a caloray error, also one raised inside a Ray task or actor, is one line and exit 2."""
    from caloray.errors import is_resumable, one_line, user_error

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config_file", None):
        if args.config:
            parser.error(f"{args.command}: give the config once, as --config FILE or as CONFIG")
        args.config = args.config_file
    args.out_is_new = is_new_folder(getattr(args, "out", None))
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        print(f"caloray {args.command}: error: {one_line(error)}", file=sys.stderr)
        if args.out_is_new and not is_resumable(error) and Path(args.out).is_dir():
            shutil.rmtree(args.out, ignore_errors=True)  # nothing half-written: the folder was this run's alone
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Ray Job entrypoint of every workflow: `python jobs/run.py WORKFLOW --config FILE [--out DIR] [--set KEY=VALUE]`.

Builds the workflow's `Config` (`caloray.workflows`) from the YAML file, `--out` and the `--set` overrides,
connects to the job's Ray cluster (`RAY_ADDRESS`; without one, a local Ray), runs it and writes the job record
OUT/job/provenance.json. Exit status: 0 done, 1 a configured validation gate failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence

from caloray.cli import is_new_folder, report_errors
from caloray.errors import ConfigError
from caloray.workflows import WORKFLOWS, build_config, run_workflow, workflow, write_job_record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", choices=sorted(WORKFLOWS), help="which workflow to run")
    parser.add_argument("--config", help="YAML with the workflow's Config fields (see jobs/configs/)")
    parser.add_argument("--out", help="output folder (overrides the config's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (dotted keys for nested ones), YAML value; repeatable")
    parser.add_argument("--resume", action="store_true", help="train: continue members from their checkpoints")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run one workflow and write its job record; sets `args.out` to the config's folder when not given."""
    config = build_config(args.workflow, args.config, {WORKFLOWS[args.workflow].out_field: args.out}, args.set)
    if args.out is None:
        args.out = str(getattr(config, WORKFLOWS[args.workflow].out_field))
        args.out_is_new = is_new_folder(args.out)
    if args.resume and "resume" not in inspect.signature(workflow(args.workflow).run).parameters:
        raise ConfigError(f"--resume: {args.workflow} has no resume option (reruns into the same folder resume)")
    result = run_workflow(args.workflow, config, **({"resume": True} if args.resume else {}))
    path = write_job_record(args.workflow, config, result)
    print(f"{args.workflow}: outputs in {result.out}, job record in {path}", flush=True)
    return result.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    """Run one workflow; errors as the CLI reports them (one line, exit 2, no half-written new folder)."""
    args = build_parser().parse_args(argv)
    args.out_is_new = is_new_folder(args.out)
    return report_errors(f"jobs/run.py {args.workflow}", args, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())

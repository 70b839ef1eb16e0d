"""Ray Job entrypoint: the end-to-end demo (simulate → Ray Data features → plots and summary).

    python jobs/demo.py --config jobs/configs/demo-ecal-hcal.yaml --out /mnt/caloray/demo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from _entry import finish, job_parser, run_script

from caloray.config import load_yaml
from caloray.demo import DemoConfig, run_demo
from caloray.runtime import init_ray


def build_parser() -> argparse.ArgumentParser:
    return job_parser(__doc__.splitlines()[0], out_help="output folder (overrides the config's `out`)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_yaml(DemoConfig, args.config)
    if args.out:
        config.out = args.out
    init_ray()
    outputs = run_demo(config)  # writes its own provenance.json; the job record goes next to it
    finish(Path(config.out) / "job", config, stage="demo", config_file=str(args.config),
           outputs={k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in outputs.items()})
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))

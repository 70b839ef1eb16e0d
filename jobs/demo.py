"""Ray Job entrypoint: the `make run` demo (the end-to-end pipeline on the embedded demo config).

    python jobs/demo.py --out /mnt/caloray/demo                 # caloray/configs/demo.yaml
    python jobs/demo.py --config my-demo.yaml --out /mnt/caloray/demo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from _entry import finish, run_script

from caloray.demo import DEFAULT_CONFIG, DEFAULT_OUT, load_demo_config, run_demo
from caloray.runtime import init_ray


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help=f"PipelineConfig YAML (default {DEFAULT_CONFIG.name}, embedded)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--gpu", action="store_true", help="train with one GPU per Ray Train worker")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_demo_config(args.config)
    init_ray()
    summary = run_demo(config, args.out, gpu=args.gpu)  # writes OUT/provenance.json; the job record goes next to it
    finish(Path(summary["out"]) / "job", config, stage="demo",
           config_file=str(args.config or DEFAULT_CONFIG), registered=summary["registered"])
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))

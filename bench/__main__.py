"""Run the benchmark suites, print their figures and append them to BENCHMARKS.md.

Usage: `python -m bench [--quick] [--only io,sim,...] [--no-record]`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from bench.record import append_markdown

SUITES = ("io", "sim", "stats", "sliced", "validate", "train", "calibrate", "cluster", "generate", "superres", "export",
          "inn", "scaling")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (minutes → seconds)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    suites = args.only.split(",") if args.only else list(SUITES)
    out = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
    for suite in suites:
        try:
            module = importlib.import_module(f"bench.bench_{suite}")
        except ModuleNotFoundError as exc:
            print(f"[bench] skipping {suite}: {exc}", file=sys.stderr)
            continue
        print(f"\n######## {suite}", flush=True)
        rows = module.main(["--quick"] if args.quick else [])
        if rows and not args.no_record:
            append_markdown(out, suite, rows, note="quick sizes" if args.quick else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())

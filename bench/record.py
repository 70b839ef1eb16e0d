"""Append benchmark figures to BENCHMARKS.md with date, machine and git revision."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path

from caloray.provenance import git_revision

Row = tuple[str, float, str]


def machine() -> str:
    """CPU model and core count, plus the GPU model when torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    text = f"{cpu} ×{os.cpu_count()}"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def print_rows(rows: list[Row]) -> None:
    """A suite's figures as `name | value | unit` lines on stdout."""
    print("\nname | value | unit")
    for name, value, unit in rows:
        print(f"{name} | {value:.4g} | {unit}")


def append_markdown(path: Path, suite: str, rows: list[Row], note: str = "") -> None:
    """Append one section (a table of rows) to the benchmarks file."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n### {suite} — {stamp} — {machine()} — rev {git_revision()}\n"]
    if note:
        lines.append(f"{note}\n")
    lines.append("| figure | value | unit |\n|---|---:|---|\n")
    lines += [f"| {name} | {value:.4g} | {unit} |\n" for name, value, unit in rows]
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by `make bench` (`python -m bench`); ratios are measured side by "
                        "side in one run.\n")
    with path.open("a") as f:
        f.writelines(lines)

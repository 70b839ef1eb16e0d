"""Commands in manifests and READMEs name what exists: jobs/run.py, its workflows, flags and configs, subcommands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from deploy_testlib import (
    DEPLOY,
    JOBS,
    REPO,
    entrypoint_argv,
    image_path_to_repo,
    k8s_objects,
    load_job_module,
    ray_job_specs,
)

from caloray.cli import build_parser

ENTRYPOINTS = [(p, spec["entrypoint"]) for p, o in k8s_objects() for spec in ray_job_specs(o)]
DOCS = [DEPLOY / "README.md", JOBS / "README.md"]
JOB_SCRIPTS = sorted(p.stem for p in JOBS.glob("*.py") if not p.name.startswith("_"))


def caloray_subcommands() -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def test_entrypoints_found() -> None:
    assert len(ENTRYPOINTS) == 8  # 7 RayJobs + the RayCronJob's template
    assert JOB_SCRIPTS == ["run"]  # one entrypoint: jobs/run.py WORKFLOW


@pytest.mark.parametrize(("path", "entrypoint"), ENTRYPOINTS, ids=[p.name for p, _ in ENTRYPOINTS])
def test_rayjob_entrypoint_runs_an_existing_job_with_valid_flags(path: Path, entrypoint: str) -> None:
    argv = entrypoint_argv(entrypoint)
    if argv[0] == "caloray":
        assert argv[1] in caloray_subcommands(), f"{path}: `caloray {argv[1]}` is not a subcommand"
        build_parser().parse_args(argv[1:])
        return
    assert argv[0] == "python", f"{path}: entrypoint must be `python /app/jobs/run.py WORKFLOW ...` or `caloray ...`"
    script = image_path_to_repo(argv[1])
    assert script.is_file() and script.parent == JOBS, f"{path}: {argv[1]} is not a job in jobs/"
    args = load_job_module(script.stem).build_parser().parse_args(argv[2:])
    assert image_path_to_repo(args.config).is_file(), f"{path}: config {args.config} is not in the image"
    assert args.out and args.out.startswith("/mnt/caloray/"), f"{path}: write outputs to the shared volume"


def _doc_commands(text: str) -> list[list[str]]:
    """Shell lines of fenced code blocks (continuations joined)."""
    lines: list[list[str]] = []
    for block in re.findall(r"```(?:bash|sh|shell)?\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line.split())
    return lines


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_readme_commands_reference_existing_files(doc: Path) -> None:
    text = doc.read_text()
    for ref in re.findall(r"(?<![\w/.-])((?:jobs|deploy)/[\w./-]+\.(?:py|ya?ml|txt|md|example))", text):
        assert (REPO / ref).exists(), f"{doc.name} mentions {ref}, which does not exist"
    subcommands = caloray_subcommands()
    for words in _doc_commands(text):
        for i, word in enumerate(words[:-1]):
            nxt = words[i + 1]
            if word == "caloray" and (i == 0 or words[i - 1] == "--") and not nxt.startswith("-"):
                assert nxt in subcommands, f"{doc.name}: `caloray {nxt}` is not a subcommand"
            if word == "python" and nxt.startswith("jobs/"):
                args = load_job_module(Path(words[i + 1]).stem).build_parser().parse_args(
                    [w for w in words[i + 2:] if w != "..."])
                assert (REPO / args.config).is_file(), f"{doc.name}: {args.config} does not exist"

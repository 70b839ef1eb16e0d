"""Layering: the science packages import neither Ray nor MLflow, and no caloray module is part of an import cycle.

Each check runs in a fresh interpreter: pytest's own process has long imported Ray and MLflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "caloray"

#: Science packages and the modules in them that belong to the workflow layer (allowed to use Ray/MLflow).
SCIENCE = {
    "anomaly": (),
    "calibrate": (),
    "features": (),
    "geometry": (),
    "io": ("raydata",),
    "models": (),
    "sim": (),
    "stats": (),
    "superres": ("cli", "pipeline"),
}

BLOCKER = textwrap.dedent("""
    import importlib, sys

    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("ray", "mlflow"):
                raise ImportError(f"science code imported {name}")

    sys.meta_path.insert(0, Blocked())
""")


def module_names(package: str | None = None) -> list[str]:
    """Dotted names of every module under caloray/ (or under caloray/`package`), packages included."""
    base = PACKAGE / package if package else PACKAGE
    names = []
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("package", sorted(SCIENCE))
def test_science_package_imports_without_ray_or_mlflow(package):
    workflow = {f"caloray.{package}.{name}" for name in SCIENCE[package]}
    names = [n for n in module_names(package) if n not in workflow]
    code = BLOCKER + f"for name in {names!r}:\n    importlib.import_module(name)\nprint(len({names!r}))\n"
    done = _python(code)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]
    assert int(done.stdout) == len(names) > 0


def test_blocker_catches_a_ray_import():
    """The blocked-import check itself fails on a module that does import Ray (else the test above proves nothing)."""
    done = _python(BLOCKER + "importlib.import_module('caloray.io.raydata')\n")
    assert done.returncode != 0 and "science code imported ray" in done.stderr


#: Forks a fresh child per caloray module so each one is imported alone. Cycles are between caloray modules, so
#: the parent first preloads every third-party module that caloray pulls in (found by one throwaway child that
#: imports everything): a preloaded library cannot hide a cycle, and each child then runs caloray code only.
FORK_EACH = textwrap.dedent("""
    import importlib, os, sys

    names = sys.argv[1:]
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        for name in names:
            try:
                importlib.import_module(name)
            except BaseException:
                pass
        third = [m for m in list(sys.modules) if m.partition(".")[0] != "caloray"]
        os.write(write, "\\n".join(third).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        third = pipe.read().split()
    os.wait()
    for module in third:
        try:
            importlib.import_module(module)
        except BaseException:
            pass

    failed = 0
    for name in names:
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException as exc:
                print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                os._exit(1)
            os._exit(0)
        failed += os.waitpid(pid, 0)[1] != 0
    print(len(names), failed)
""")


@pytest.mark.slow  # ≈40-70 s: a fork and a caloray import per module (≈160)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_alone_without_a_cycle():
    names = module_names()
    done = subprocess.run([sys.executable, "-c", FORK_EACH, *names], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    total, failed = map(int, done.stdout.split()[-2:])
    assert (total, failed) == (len(names), 0), done.stderr
    assert total > 150

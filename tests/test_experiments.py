"""Every script of experiments/ runs end to end in its smoke mode (tiny images, 1-3 iterations, its results in
a temporary folder), and none of them reaches for a private name of nst_jax."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
LIBRARIES = {"__init__.py", "harness.py", "torch_reference.py"}  # imported by the scripts, not run
SCRIPTS = sorted(p.name for p in EXPERIMENTS.glob("*.py") if p.name not in LIBRARIES) + \
    sorted(p.name for p in EXPERIMENTS.glob("*.sh"))
TIMEOUT = 900  # seconds; a smoke run takes 1-40 s on two loaded CPU cores
SHARED = ROOT.parent / "shared"
# what reads ../shared (its images and datasets), directly or through a sibling script
NEEDS_SHARED = re.compile(r"shared|load_pair|IMAGES|SHARED|video_clips|from (quality|bench_gatys) import")
# Scripts run without the run's compilation cache: each jits a closure over the VGG-19 weights, a program that
# holds them as constants, whose cache entry (~170 MB) takes longer to write than the program to compile, and
# that no other script shares.
UNCACHED = {"adain_generalisation.py", "scaling_gatys.py", "vgg_channel_means.py"}


def _results_snapshot():
    """(path, size, mtime) of every file under experiments/results: the published results."""
    out = set()
    for folder, _, files in os.walk(EXPERIMENTS / "results"):
        for f in files:
            st = os.stat(os.path.join(folder, f))
            out.add((os.path.join(folder, f), st.st_size, st.st_mtime_ns))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_run(script, tmp_path):
    path = EXPERIMENTS / script
    if not SHARED.is_dir() and NEEDS_SHARED.search(path.read_text()):
        pytest.skip(f"{script} reads ../shared, which is not there")
    cmd = ["bash", str(path), "--smoke"] if script.endswith(".sh") else [sys.executable, str(path), "--smoke"]
    # the run's one compilation cache (tests/conftest.py) is inherited: the scripts share many programs
    env = {**os.environ, "TMPDIR": str(tmp_path), "MPLBACKEND": "Agg",
           # the shell scripts' Python and nst-jax: this interpreter's
           "PYTHON": sys.executable, "NST": str(Path(sys.executable).parent / "nst-jax")}
    if script in UNCACHED:
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
    before = _results_snapshot()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, \
        f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    assert _results_snapshot() == before, "a smoke run changed experiments/results"
    shutil.rmtree(tmp_path, ignore_errors=True)  # the outputs (a GPU pack is ~100 MB)


def private_uses(source: str) -> list[str]:
    """``module._name`` (or deeper, ``gatys.PROGRAMS._cache``) where the chain starts at a name imported from
    nst_jax, and private names imported from it (``from nst_jax.gatys import _init``); dunders are public."""
    tree = ast.parse(source)
    roots, found = set(), []

    def private(name):
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "nst_jax":
                    roots.add(alias.asname or "nst_jax")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nst_jax":
            for alias in node.names:
                roots.add(alias.asname or alias.name)
                if private(alias.name) or any(private(p) for p in node.module.split(".")):
                    found.append(f"from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in roots:
                found.append(f"line {node.lineno}: {base.id}.{'.'.join(reversed(chain))}")
    return sorted(set(found))


def test_private_uses_is_found():
    src = ("import nst_jax\nfrom nst_jax import gatys, vgg as V\nfrom nst_jax.gatys import _init\n"
           "class A:\n    def f(self):\n        self._g = gatys.stylize\n"
           "gatys._targets_jit(1)\ngatys.PROGRAMS._cache.clear()\nV._conv(1)\nnst_jax.__version__\n")
    assert private_uses(src) == ["from nst_jax.gatys import _init", "line 7: gatys._targets_jit",
                                 "line 8: gatys.PROGRAMS._cache", "line 9: V._conv"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_public_api_only(script):
    source = (EXPERIMENTS / script).read_text()
    if script.endswith(".sh"):  # Python inside a shell script: the names it spells out
        found = re.findall(r"\bnst_jax(?:\.\w+)*\._(?!_)\w+", source)
    else:
        found = private_uses(source)
    assert not found, f"{script} uses private names of nst_jax: {found}"

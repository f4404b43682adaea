"""Every script of experiments/ runs end to end in its smoke mode (tiny images, 1-3 iterations, its results in
a temporary folder), and none of them reaches for a private name of nst_jax."""

import ast
import json
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


def _results_snapshot():
    """(path, size, mtime) of every file under experiments/results: the published results."""
    out = set()
    for folder, _, files in os.walk(EXPERIMENTS / "results"):
        for f in files:
            st = os.stat(os.path.join(folder, f))
            out.add((os.path.join(folder, f), st.st_size, st.st_mtime_ns))
    return out


# The slowest smoke runs first (seconds alone on 2 cores: 23, 15, 13, 10, 8, 7, 6, 5), so that the two halves
# take them in turn and finish together (81 and 72 s of work instead of 95 and 58 in name order).
_SLOW = ("content_losses.py", "claims_gatys.py", "periodic_artifacts.py", "spatial_control.py",
         "batch_throughput.py", "bench_cli.py", "train_throughput.py", "bench_layers.py")
_BALANCED = [s for s in _SLOW if s in SCRIPTS] + [s for s in SCRIPTS if s.endswith(".py") and s not in _SLOW]


def _runnable(script):
    return SHARED.is_dir() or not NEEDS_SHARED.search((EXPERIMENTS / script).read_text())


def _env(tmp_path):
    # the run's one compilation cache (tests/conftest.py) is inherited: the scripts share many programs
    return {**os.environ, "TMPDIR": str(tmp_path), "MPLBACKEND": "Agg",
            # the shell scripts' Python and nst-jax: this interpreter's
            "PYTHON": sys.executable, "NST": str(Path(sys.executable).parent / "nst-jax")}


@pytest.mark.slow
@pytest.mark.parametrize("half", [0, 1])
def test_every_python_script_runs_in_smoke_mode(half, tmp_path):
    """The Python scripts in two processes, each running every other script (tests/smoke_runner.py: imports,
    weights and compiled programs made once a process; two, so that the suite's two workers share them);
    each failure is named with its traceback, and the others still run."""
    scripts = [s for s in _BALANCED if _runnable(s)][half::2]
    result = tmp_path / "result.json"
    before = _results_snapshot()
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "smoke_runner.py"), str(result), *scripts],
                       cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=3 * TIMEOUT)
    done = json.loads(result.read_text()) if result.is_file() else {}
    failed = {s: e for s, e in done.items() if e is not None}
    assert r.returncode == 0 and not failed and len(done) == len(scripts), (
        f"failed: {sorted(failed)}; not run: {sorted(set(scripts) - set(done))}\n"
        + "\n".join(f"--- {s}\n{e[-3000:]}" for s, e in failed.items()) + f"\n{r.stderr[-3000:]}")
    assert _results_snapshot() == before, "a smoke run changed experiments/results"


@pytest.mark.slow
@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.endswith(".sh")])
def test_shell_script_runs_in_smoke_mode(script, tmp_path):
    if not _runnable(script):
        pytest.skip(f"{script} reads ../shared, which is not there")
    before = _results_snapshot()
    r = subprocess.run(["bash", str(EXPERIMENTS / script), "--smoke"], cwd=ROOT, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, \
        f"{script} --smoke failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    assert _results_snapshot() == before, "a smoke run changed experiments/results"
    shutil.rmtree(tmp_path, ignore_errors=True)  # the outputs (a GPU pack is ~100 MB)


def private_uses(source: str) -> list[str]:
    """``module._name`` (or deeper, ``gatys.PROGRAMS._cache``) where the chain starts at a name imported from
    nst_jax (or, inside the package, by a relative import), and private names imported from it (``from
    nst_jax.gatys import _init``, ``from .vgg import _conv``); dunders are public."""
    tree = ast.parse(source)
    roots, found = set(), []

    def private(name):
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "nst_jax":
                    roots.add(alias.asname or "nst_jax")
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("nst_jax")):
            for alias in node.names:  # nst_jax's modules, or (level > 0) a relative import inside nst_jax
                roots.add(alias.asname or alias.name)
                if private(alias.name) or any(private(p) for p in (node.module or "").split(".")):
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
    inside = ("from .vgg import _conv as c\nfrom . import image as _image\n_image._decode(1)\n"
              "_image.load_image(2)\n")
    assert private_uses(inside) == ["from vgg import _conv", "line 3: _image._decode"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_public_api_only(script):
    source = (EXPERIMENTS / script).read_text()
    if script.endswith(".sh"):  # Python inside a shell script: the names it spells out
        found = re.findall(r"\bnst_jax(?:\.\w+)*\._(?!_)\w+", source)
    else:
        found = private_uses(source)
    assert not found, f"{script} uses private names of nst_jax: {found}"


@pytest.mark.parametrize("module", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "nst_jax").rglob("*.py")))
def test_package_modules_use_each_others_public_names(module):
    found = private_uses((ROOT / module).read_text())
    assert not found, f"{module} uses private names of other nst_jax modules: {found}"

"""Run experiments/ scripts in their smoke mode, one after another in this one process (for
tests/test_experiments.py): the imports, the VGG-19 weights and the compiled programs the scripts share are
made once, not once a script.

    python tests/smoke_runner.py RESULT.json SCRIPT [SCRIPT ...]

Each script runs as ``python experiments/SCRIPT --smoke`` would (``__main__``, its folder first on the path,
``sys.argv``), with its own temporary folder; a failure is recorded (its traceback) and the next script
still runs.  RESULT.json: ``{script: null | traceback}``, written after each script.
"""

import json
import os
import runpy
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# Scripts run without the persistent compilation cache: each jits a closure over the VGG-19 weights, a
# program that holds them as constants, whose cache entry (~170 MB) takes longer to write than the program
# to compile, and that no other script shares.
UNCACHED = {"adain_generalisation.py", "scaling_gatys.py", "vgg_channel_means.py"}


def run(script: str) -> str | None:
    import jax

    folder = tempfile.mkdtemp(prefix=f"smoke_{Path(script).stem}_")
    saved = sys.argv, list(sys.path), tempfile.tempdir, os.environ.get("TMPDIR")
    sys.argv = [str(EXPERIMENTS / script), "--smoke"]
    sys.path.insert(0, str(EXPERIMENTS))
    tempfile.tempdir, os.environ["TMPDIR"] = folder, folder
    cache = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", cache and script not in UNCACHED)
    try:
        runpy.run_path(str(EXPERIMENTS / script), run_name="__main__")
        return None
    except SystemExit as e:
        return None if e.code in (None, 0) else f"exit status {e.code}"
    except BaseException:  # noqa: BLE001 - every failure is the script's, reported by name
        return traceback.format_exc()
    finally:
        jax.config.update("jax_enable_compilation_cache", cache)
        sys.argv, sys.path[:], tempfile.tempdir = saved[0], saved[1], saved[2]
        if saved[3] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[3]
        shutil.rmtree(folder, ignore_errors=True)


def main():
    out, scripts = Path(sys.argv[1]), sys.argv[2:]
    os.environ.setdefault("MPLBACKEND", "Agg")
    results = {}
    for script in scripts:
        print(f"=== {script}", flush=True)
        t0 = time.perf_counter()
        results[script] = run(script)
        print(f"=== {script}: {time.perf_counter() - t0:.1f} s", flush=True)
        out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()

"""Several processes, one program (jax.distributed): 2 processes of 2 forced CPU devices each, gloo between
them, split an image by rows across all 4 devices; every method's result equals the one-process result.

This is how a multi-host run (a TPU slice, several GPU hosts) executes: the same command in every process,
each holding only its own devices' rows, the finished picture gathered to every process, process 0 writing.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys
import numpy as np
from nst_jax import tiling
out_dir, photo, style, mode = sys.argv[1:5]
if mode == "multi":
    tiling.initialize_distributed(sys.argv[5], 2, int(sys.argv[6]))
import jax
from nst_jax import adain, feedforward as F, gatys, image as im, sanet
content, painting = im.load_image(photo), im.load_image(style)
devices = "all" if mode == "multi" else 1
g, rg = gatys.stylize(content, painting, size=64, iters=3, optimizer="adam", devices=devices)
a, ra = adain.stylize(content, painting, size=64, style_size=64, devices=devices, tile="none")
f, rf = F.stylize(content, "starry_night", size=64, devices=devices, tile="none")
key = jax.random.key(0)  # a SANet with every projection random (none is shipped yet)
sp = sanet.init_params(key, adain.load_decoder()[0])
sp["transform"] = jax.tree_util.tree_map(lambda v: 0.02 * jax.random.normal(key, v.shape), sp["transform"])
s, rs = sanet.stylize(content, painting, size=64, style_size=64, devices=devices, tile="none", model=sp)
rank = jax.process_index()
np.savez(f"{out_dir}/{mode}_{rank}.npz", gatys=g, adain=a, fast=f[0], sanet=s)
print(json.dumps({"processes": jax.process_count(), "devices": len(jax.devices()),
                  "local_devices": len(jax.local_devices()), "loss": rg["loss"],
                  "report_devices": [rg["devices"], ra["devices"], rf["devices"], rs["devices"]]}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env(devices):
    return subprocess_env(devices, PYTHONPATH=str(ROOT))


def _images(tmp_path):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:128] / 128.0
    photo = np.stack([yy, xx, 0.5 + 0.3 * np.sin(9 * xx)], -1) + 0.1 * rng.random((96, 128, 3))
    photo[40:, 60:] = 1.0 - photo[40:, 60:]  # a hard edge across the row split
    Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray((rng.random((128, 128, 3)) ** 2 * 255).astype(np.uint8)).save(tmp_path / "style.png")
    return tmp_path / "photo.png", tmp_path / "style.png"


def _last_json(text):
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_processes_give_the_one_process_result(tmp_path):
    photo, style = _images(tmp_path)
    port = _free_port()
    base = [sys.executable, "-c", WORKER, str(tmp_path), str(photo), str(style)]
    procs = [subprocess.Popen(base + ["multi", f"localhost:{port}", str(rank)], env=_env(2), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for rank in (0, 1)]
    single = subprocess.run(base + ["single"], env=_env(1), text=True, capture_output=True, timeout=600)
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        outs.append(_last_json(stdout))
    assert single.returncode == 0, single.stderr[-3000:]
    one = _last_json(single.stdout)
    for o in outs:
        assert (o["processes"], o["devices"], o["local_devices"]) == (2, 4, 2), o
        assert o["report_devices"] == [4, 4, 4, 4], o
        # three Adam iterations: the same loss (float32 summation order across devices aside).  Adam, not
        # L-BFGS: L-BFGS's first curvature pair comes from a ~1e-8 step and amplifies a summation order's
        # rounding about a millionfold (test_gatys.test_stylize_tiled_equals_untiled), measured here as
        # 4.5e-4 of the loss after three iterations with lax.conv split by rows
        assert abs(o["loss"] / one["loss"] - 1) < 1e-5, (o["loss"], one["loss"])
    ref = np.load(tmp_path / "single_0.npz")
    for rank in (0, 1):  # every process holds the whole, equal picture
        got = np.load(tmp_path / f"multi_{rank}.npz")
        assert got["gatys"].shape == ref["gatys"].shape == (48, 64, 3)
        assert np.abs(got["gatys"] - ref["gatys"]).max() < 1 / 255
        # the networks: the same to float32 rounding of a program split in two (measured up to 4e-6)
        assert np.abs(got["adain"] - ref["adain"]).max() < 1e-2 / 255
        assert np.abs(got["fast"] - ref["fast"]).max() < 1e-2 / 255
        assert np.abs(got["sanet"] - ref["sanet"]).max() < 1e-2 / 255
        assert np.abs(got["sanet"] - got["adain"]).max() > 0.01  # the attention did something


@pytest.mark.slow
def test_cli_two_processes_write_once(tmp_path):
    """``nst-jax fast --distributed``: the same command in each process; only process 0 writes, and what
    it writes is the one-process picture."""
    photo, _ = _images(tmp_path)
    port = _free_port()

    def argv(out, *extra):
        return [sys.executable, "-m", "nst_jax", "fast", str(photo), "-o", str(out), "--model",
                "starry_night", "--size", "64", "--quiet", *extra]

    procs = [subprocess.Popen(argv(tmp_path / f"out{rank}.png", "--devices", "all", "--distributed",
                                   "--coordinator", f"localhost:{port}", "--num-processes", "2",
                                   "--process-id", str(rank)),
                              env=_env(2), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for rank in (0, 1)]
    r = subprocess.run(argv(tmp_path / "single.png"), env=_env(1), text=True, capture_output=True,
                       timeout=600)
    for p in procs:
        _, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "out0.png").exists() and not (tmp_path / "out1.png").exists()
    a = np.asarray(Image.open(tmp_path / "out0.png"), np.int16)
    b = np.asarray(Image.open(tmp_path / "single.png"), np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1


@pytest.mark.parametrize("extra, message", [
    (["--coordinator", "localhost:1"], "go with --distributed"),
    (["--distributed", "--num-processes", "2"], "together"),
    (["--distributed", "--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"],
     "process id must be in 0..1"),
])
def test_distributed_options_bad_input(tmp_path, capsys, extra, message):
    from nst_jax.cli import main

    photo, _ = _images(tmp_path)
    rc = main(["fast", str(photo), "-o", str(tmp_path / "o.png"), "--model", "starry_night", *extra])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()

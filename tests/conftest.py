import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import gradient, png_bomb

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# Tests compile at XLA:CPU's lowest backend optimisation level and run VGG-19's convolutions as lax.conv
# (nst_jax.vgg.CONV_ENV), both set before any backend starts and inherited by the commands the tests run:
# their images are tiny, so compiling is most of their time.  Level 0 compiled the suite's in-process
# programs in 460 s against 676 s at the default level (the whole suite 615 s against 671 s on 2 cores); the
# programs are the same HLO, only the machine code is less optimised.  The product's CPU convolution
# (Winograd F(2x2,3x3) for the >=256-channel layers) compiles ~3x longer than lax.conv (1.2 s against 0.4 s
# for VGG-19's value and gradient at 192 x 256 px); it is tested explicitly (conv="winograd") against PyTorch,
# forward and input gradient, and "auto"'s choice by tests/test_vgg.py; `NST_JAX_CONV=auto make test` runs
# everything on it.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()
os.environ.setdefault("NST_JAX_CONV", "direct")

# One persistent compilation cache for the whole run, shared by the test processes and the commands they run
# (a program the suite compiled once is read back, not compiled again, wherever it recurs).  A fresh folder
# per run, made by the first process (pytest-xdist's controller, before its workers start), so that a run's
# time never depends on an earlier one's.
if "NST_JAX_XLA_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["NST_JAX_XLA_CACHE"] = tempfile.mkdtemp(prefix="nst_jax-test-xla-")
    atexit.register(shutil.rmtree, os.environ["NST_JAX_XLA_CACHE"], ignore_errors=True)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["NST_JAX_XLA_CACHE"])
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_collection_modifyitems(items):
    """The heaviest end-to-end tests (marked ``slow``) first: with several workers (``make test``) none of
    them starts last and leaves the other workers idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)




@pytest.fixture(scope="session")
def params():
    import nst_jax

    return nst_jax.vgg19_params()


@pytest.fixture(scope="session")
def h5_path():
    from nst_jax import weights

    weights.fetch()
    return weights.cached_h5()


def shared_image(name):
    return SHARED / "images" / name


@pytest.fixture(scope="session")
def photo():
    """A real photo (float32 RGB in [0,1]) when ../shared is there, else a smooth synthetic scene."""
    from PIL import Image

    p = shared_image("tubingen.jpg")
    if p.is_file():
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"), np.float32) / 255.0
    yy, xx = np.mgrid[0:256, 0:384] / 256.0
    return np.stack([np.sin(3 * xx) * 0.5 + 0.5, yy, (xx * yy) % 1.0], -1).astype(np.float32)


@pytest.fixture(scope="session")
def torch_vgg(h5_path):
    """The independent PyTorch VGG-19 (built from the .h5 with h5py), one per pooling kind."""
    from experiments import torch_reference as tr

    cache = {}

    def get(pool="max"):
        if pool not in cache:
            cache[pool] = tr.CaffeVGG19(h5_path, pool=pool)
        return cache[pool]

    return get


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    import jax

    from nst_jax import feedforward

    path = tmp_path_factory.mktemp("ff") / "net.npz"
    return feedforward.save_model(path, feedforward.init_net(jax.random.key(3)), {"step": 0})


@pytest.fixture(scope="session")
def adain_cli_files(tmp_path_factory):
    """Images, a decoder and a tiny training set for the `adain` and `train adain` commands."""
    import jax

    from nst_jax.adain import init_decoder, save_decoder

    d = tmp_path_factory.mktemp("adain_cli")
    Image.fromarray((gradient(48, 40) * 255).astype(np.uint8)).save(d / "content.png")
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    Image.fromarray((np.stack([np.sin(25 * (xx + yy)) * .5 + .5, xx, 1 - yy], -1) * 255).astype(np.uint8)) \
        .save(d / "style.png")
    Image.fromarray((np.stack([xx, xx, yy], -1) * 255).astype(np.uint8)).save(d / "style2.png")
    mask = np.zeros((48, 40), np.uint8)
    mask[:, :20] = 255
    Image.fromarray(mask).save(d / "mask.png")
    (d / "text.jpg").write_text("not an image\n")
    (d / "truncated.png").write_bytes((d / "content.png").read_bytes()[:100])
    png_bomb(d / "bomb.png")
    (d / "existing.png").write_bytes(b"keep me")
    save_decoder(d / "decoder.npz", init_decoder(jax.random.key(0)))
    (d / "notdecoder.npz").write_bytes(b"PK\x03\x04 broken zip")
    # a tiny training set: a nested folder with an unreadable file in it
    for k in range(3):
        sub = d / "photos" / ("a" if k else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.random.default_rng(k).random((40, 44, 3)) * 255).astype(np.uint8)) \
            .save(sub / f"{k}.jpg")
    (d / "photos" / "broken.jpg").write_text("no")
    (d / "paintings").mkdir()
    for k in range(2):
        Image.fromarray((np.random.default_rng(9 + k).random((36, 36, 3)) ** 2 * 255).astype(np.uint8)) \
            .save(d / "paintings" / f"{k}.png")
    return d


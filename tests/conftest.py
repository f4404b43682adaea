from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def compilation_cache():
    """The persistent XLA compilation cache, on as in the CLI: a program that several tests (or the
    CLI's subprocesses) compile is compiled once per run."""
    import nst_jax

    return nst_jax.enable_compilation_cache()


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

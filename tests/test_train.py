"""The shared training loop (nst_jax.train) with the AdaIN task: learning, sharding, checkpoints, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nst_jax import adain as A
from nst_jax import adain_train as AT
from nst_jax.data import ArraySource
from nst_jax.errors import NSTError
from nst_jax.train import TrainConfig, train

from .helpers import loss_before_after, subprocess_env

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "train_worker.py"


def _run_worker(args, devices=None, timeout=600):
    env = subprocess_env(devices, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _params(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow
def test_a_few_steps_lower_the_loss(params):
    rng = np.random.default_rng(0)
    content = ArraySource([rng.random((32, 32, 3)) for _ in range(4)])
    style = ArraySource([rng.random((32, 32, 3)) ** 3 for _ in range(4)])
    task = AT.AdaINTask(params, content, style, crop=32, resize=32, batch_size=4)
    before, after = loss_before_after(task, 30)  # the paper's lr 1e-4 (1e-3 diverges)
    assert np.isfinite(after) and after < 0.5 * before, (before, after)


@pytest.mark.slow
def test_sharded_training_equals_single_device(tmp_path):
    """4 CPU devices (batch sharded over a mesh) give the 1-device losses and parameters."""
    runs = {}
    for n in (1, 4):
        runs[n] = _run_worker([tmp_path / f"d{n}", 2, 10, "--out", tmp_path / f"p{n}.npz"], devices=n)
        assert runs[n]["devices"] == n
    # the first loss is the same (the forward pass over the sharded batch); Adam's first steps are
    # ~lr * sign(g), which turns rounding differences in near-zero gradient entries into lr-sized ones, so
    # later values agree less tightly
    np.testing.assert_allclose(runs[4]["losses"][0], runs[1]["losses"][0], rtol=1e-6)
    np.testing.assert_allclose(runs[4]["losses"][1], runs[1]["losses"][1], rtol=1e-3)
    a, b = _params(tmp_path / "p1.npz"), _params(tmp_path / "p4.npz")
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=4e-4, err_msg=k)  # 2 steps x 2 x lr


@pytest.mark.slow
def test_killed_run_resumes_exactly(tmp_path):
    straight = _run_worker([tmp_path / "straight", 6, 2, "--out", tmp_path / "straight.npz"])

    ckpt = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(WORKER), ckpt, "6", "2", "--delay", "0.15"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.time() + 300
    while not (ckpt / "checkpoints" / "2").is_dir() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    saved = sorted(int(p.name) for p in (ckpt / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and saved[-1] < 6, saved  # killed mid-run, after at least one checkpoint

    resumed = _run_worker([ckpt, 6, 2, "--resume", "--out", tmp_path / "resumed.npz"])
    assert resumed["summary"]["start_step"] == saved[-1]  # no saved step lost
    assert resumed["losses"] == straight["losses"][saved[-1]:]  # same data, same updates
    a, b = _params(tmp_path / "straight.npz"), _params(tmp_path / "resumed.npz")
    for k in a:
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)
    steps = [json.loads(line)["step"] for line in (ckpt / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))  # the log holds each step once
    assert (ckpt / "loss_curve.png").stat().st_size > 0
    A.load_decoder(ckpt / "decoder.npz")


def test_fresh_run_refuses_a_used_directory_and_resume_checks_config(tmp_path, params):
    rng = np.random.default_rng(0)
    src = ArraySource([rng.random((32, 32, 3)) for _ in range(2)])
    task = AT.AdaINTask(params, src, src, crop=32, resize=32, batch_size=2)
    train(task, TrainConfig(steps=1, batch_size=2), tmp_path)
    with pytest.raises(NSTError, match="already holds checkpoints"):
        train(task, TrainConfig(steps=2, batch_size=2), tmp_path)
    with pytest.raises(NSTError, match="learning_rate"):
        train(task, TrainConfig(steps=2, batch_size=2, learning_rate=1e-3), tmp_path, resume=True)
    other = AT.AdaINTask(params, src, src, crop=32, resize=32, batch_size=2, style_weight=1.0)
    with pytest.raises(NSTError, match="task_config"):
        train(other, TrainConfig(steps=2, batch_size=2), tmp_path, resume=True)


def test_gradient_clipping_comes_before_adam():
    """``clip_grad_norm``: a spike gradient enters Adam's moments scaled down to the clipping norm (closed
    form of Adam's first and second moments after two steps), and 0 leaves plain Adam."""
    import jax
    import jax.numpy as jnp

    from nst_jax.train import TrainConfig, optimizer

    rng = np.random.default_rng(0)
    g1 = rng.normal(size=5).astype(np.float32)
    g1 /= np.linalg.norm(g1)  # norm 1: not clipped at 2
    g2 = 1000 * rng.normal(size=5).astype(np.float32)  # a spike
    params = {"w": jnp.zeros(5)}
    for clip, expect2 in ((2.0, g2 * 2.0 / np.linalg.norm(g2)), (0.0, g2)):
        opt = optimizer(TrainConfig(steps=10, clip_grad_norm=clip))
        state = opt.init(params)
        for g in (g1, g2):
            _, state = opt.update({"w": jnp.asarray(g)}, state, params)
        adam = [s for s in jax.tree_util.tree_leaves(state, is_leaf=lambda x: hasattr(x, "mu"))
                if hasattr(s, "mu")][0]
        mu = 0.9 * (0.1 * g1) + 0.1 * expect2
        nu = 0.999 * (0.001 * g1 ** 2) + 0.001 * expect2 ** 2
        np.testing.assert_allclose(np.asarray(adam.mu["w"]), mu, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(adam.nu["w"]), nu, rtol=1e-5)


def test_trainers_take_the_training_config_whole():
    """Each trainer's schedule is one TrainConfig (default: the paper's); keywords replace fields by name."""
    import inspect

    from nst_jax import adain_train, feedforward_train
    from nst_jax.errors import NSTError
    from nst_jax.train import TrainConfig, with_fields

    for fn, cfg in ((adain_train.train_decoder, adain_train.TRAIN_CONFIG),
                    (feedforward_train.train_fast, feedforward_train.TRAIN_CONFIG)):
        assert inspect.signature(fn).parameters["config"].default is cfg
    a, f = adain_train.TRAIN_CONFIG, feedforward_train.TRAIN_CONFIG
    assert (a.learning_rate, a.lr_decay, a.batch_size) == (1e-4, 5e-5, 8)  # Huang & Belongie
    assert (f.learning_rate, f.batch_size) == (1e-3, 4)  # Johnson et al.
    c = with_fields(adain_train.TRAIN_CONFIG, {"steps": 7})
    assert c.steps == 7 and c.learning_rate == 1e-4 and adain_train.TRAIN_CONFIG.steps == 160_000
    with pytest.raises(NSTError, match="unknown training setting"):
        with_fields(TrainConfig(steps=1), {"stepz": 3})
    with pytest.raises(NSTError, match="unknown training setting"):
        adain_train.train_decoder("x", "y", "z", stepz=3)


def test_step_reports_the_gradient_norm_before_clipping():
    """``grad_norm`` in every step's metrics: the global norm of the raw gradient (closed form: the
    gradient of |w|^2 / 2 is w, |(3, 4)| = 5), whatever the clipping."""
    import jax.numpy as jnp

    from nst_jax.train import TrainConfig, TrainState, make_mesh, make_train_step, optimizer

    class Toy:
        @staticmethod
        def loss(params, frozen, batch):
            return 0.5 * jnp.sum(params["w"] ** 2), {}

    for clip in (0.0, 1.0):
        opt = optimizer(TrainConfig(steps=1, clip_grad_norm=clip))
        step = make_train_step(Toy, opt, make_mesh())
        _, metrics = step(TrainState.create({"w": jnp.asarray([3.0, 4.0])}, opt), {}, {})
        assert float(metrics["grad_norm"]) == pytest.approx(5.0)

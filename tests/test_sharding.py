"""Split by rows across devices (jax.sharding): 4 forced host devices in a subprocess, against the same
computation on one device: Gatys's objective and gradient (Gram, the representations that sort or sample
positions, and two regions of spatial control), the L-BFGS history's layout, and the errors.  Whole runs of
every method across 4 devices against one: tests/test_distributed.py."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from .helpers import subprocess_env

SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
from nst_jax import gatys, image as im, solvers
from nst_jax.errors import NSTError
content, style = im.load_image(sys.argv[1]), im.load_image(sys.argv[2])
out = {"devices": len(jax.devices())}
# the L-BFGS history is split by rows like the image
rows = gatys.row_sharding(4)
x = jax.device_put(jnp.zeros((1, 48, 64, 3)), rows)
params = gatys.with_winograd(gatys.vgg19_params())
c = jnp.asarray(im.resize(content, (48, 64)))[None]
cfg = gatys.Config()
targets = jax.jit(gatys.compute_targets, static_argnums=(4,))(params, c, [c], [1.0], cfg)
w = {"content": jnp.float32(5), "style": jnp.float32(100), "tv": jnp.float32(5e-4),
     "style_layers": jnp.ones(5, jnp.float32)}
rep = jax.sharding.NamedSharding(rows.mesh, jax.sharding.PartitionSpec())
params, targets, w = jax.device_put((params, targets, w), rep)
tb, wb = jax.device_put(gatys.stack([targets]), rep), jax.device_put(gatys.stack([w]), rep)
state = gatys.init_states(params, tb, wb, x, cfg, solvers.lbfgs(history=3), rows)
out["history_spec"] = str(state.s_history.sharding.spec)
# the objective and its gradient at one point: split by rows, and whole
xs = jax.device_put(c + 0.1 * jnp.sin(jnp.arange(64.0))[None, None, :, None], rows)
vg = jax.jit(jax.value_and_grad(lambda y, p, t, w: gatys.gatys_loss(p, y, t, w, cfg)[0]))
v4, g4 = vg(xs, params, targets, w)
one = jax.devices()[0]
v1, g1 = vg(*jax.device_put((xs, params, targets, w), one))
out["grad_spec"] = str(g4.sharding.spec)
out["value_rel"] = float(abs(float(v4) / float(v1) - 1))
out["grad_rel"] = float(jnp.linalg.norm(jax.device_put(g4, one) - g1) / jnp.linalg.norm(g1))
out["history_shard_rows"] = [s.data.shape[3] for s in state.s_history.addressable_shards]
# a representation that sorts (swd) or samples positions (mmd-rbf) stays exact split by rows: XLA gathers
for name in ("swd", "mmd-rbf", "histogram", "remd"):
    cs = gatys.Config(gatys.Objective(style_loss=name))
    pp, cc = jax.device_put((params, c), one)
    ts = jax.jit(gatys.compute_targets, static_argnums=(3, 4))(pp, cc, [cc], (1.0,), cs)  # samples: static
    ws = {**w, "seed": jnp.int32(3)}
    f = jax.jit(jax.value_and_grad(lambda y, p, t, w: gatys.gatys_loss(p, y, t, w, cs, 7)[0]))
    sv4, sg4 = f(xs, *jax.device_put((params, ts, ws), rep))
    sv1, sg1 = f(*jax.device_put((xs, params, ts, ws), one))
    out[name] = [float(abs(float(sv4) / float(sv1) - 1)),
                 float(jnp.linalg.norm(jax.device_put(sg4, one) - sg1) / jnp.linalg.norm(sg1))]
# spatial control: two regions' weighted sums over positions, split by rows
mask = np.zeros((48, 64), np.float32)
mask[:, :30] = 1.0
mask[:, 30:34] = 0.5
method = gatys.Gatys(weights=params, size=64, masks=mask, mask_mode="inside")
job = method.prepare(0, gatys.Picture(np.asarray(c[0]), [np.asarray(c[0]), np.asarray(c[0]) ** 2]))
rt = jax.tree_util.tree_map(lambda v: v[0], method.targets(np.asarray(c), [job], job.shape))
rf = jax.jit(jax.value_and_grad(lambda y, p, t, w: gatys.gatys_loss(p, y, t, w, method.cfg)[0]))
rv4, rg4 = rf(xs, *jax.device_put((params, rt, w), rep))
rv1, rg1 = rf(*jax.device_put((xs, params, rt, w), one))
out["regions"] = [float(abs(float(rv4) / float(rv1) - 1)),
                  float(jnp.linalg.norm(jax.device_put(rg4, one) - rg1) / jnp.linalg.norm(rg1))]
errors = []
for kw in ({"devices": 8}, {"devices": "many"}, {"devices": 4, "size": 66}):
    try:
        gatys.stylize(content, style, iters=1, **{"size": 64, **kw})
    except NSTError as e:
        errors.append(str(e))
out["errors"] = errors
print(json.dumps(out))
"""


@pytest.mark.slow
def test_four_devices_give_the_one_device_result(tmp_path):
    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[0:192, 0:256] / 256.0
    photo = np.stack([yy, xx, 0.5 + 0.3 * np.sin(8 * xx)], -1) + 0.1 * rng.random((192, 256, 3))
    Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray((rng.random((160, 160, 3)) ** 2 * 255).astype(np.uint8)).save(tmp_path / "style.png")
    env = subprocess_env(4)
    argv = [sys.executable, "-c", SCRIPT, str(tmp_path / "photo.png"), str(tmp_path / "style.png")]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    # the objective and its gradient, split by rows: the whole image's (float32 summation order aside)
    assert out["value_rel"] < 1e-5 and out["grad_rel"] < 1e-5, out
    assert out["grad_spec"].endswith("(None, 'rows')"), out["grad_spec"]
    # (pictures, pairs, 1, rows, columns, channels): split by rows
    assert out["history_spec"].endswith("(None, None, None, 'rows')"), out["history_spec"]
    assert out["history_shard_rows"] == [12, 12, 12, 12]  # 48 rows, a quarter on each device
    assert "8 devices asked for, 4 available" in out["errors"][0]
    assert "a number or 'all'" in out["errors"][1]
    assert "multiple of 4" in out["errors"][2]
    for name in ("swd", "mmd-rbf", "histogram", "remd"):  # sorting and sampling representations: exact
        assert out[name][0] < 1e-5 and out[name][1] < 1e-4, (name, out[name])
    assert out["regions"][0] < 1e-5 and out["regions"][1] < 1e-5, out["regions"]  # spatial control

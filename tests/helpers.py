"""Builders for awkward input files."""

import os
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image


def png_bomb(path, w=60000, h=60000):
    """A valid PNG header claiming w x h pixels, with a tiny (truncated) body."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1000)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


def gradient(h=40, w=40):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1)


def write_variants(tmp):
    """name -> path for images that must load: grey, RGBA, 16-bit, CMYK, palette, EXIF-rotated."""
    g = gradient()
    rgb8 = (g * 255).astype(np.uint8)
    out = {}
    out = {name: tmp / name for name in
           ("grey.png", "rgba.png", "grey16.png", "cmyk.jpg", "palette.png", "exif.jpg")}
    Image.fromarray(rgb8).convert("L").save(out["grey.png"])
    rgba = np.dstack([rgb8, np.full(rgb8.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(out["rgba.png"])
    Image.fromarray((g[..., 0] * 65535).astype(np.uint16)).save(out["grey16.png"])
    Image.fromarray(rgb8).convert("CMYK").save(out["cmyk.jpg"])
    Image.fromarray(rgb8).convert("P").save(out["palette.png"])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW on display
    Image.fromarray(np.zeros((30, 20, 3), np.uint8)).save(out["exif.jpg"], exif=exif)
    return {name.split(".")[0]: path for name, path in out.items()}


_TINY_TFDS = {}


def build_tiny_tfds(tfds, data_dir, n=6):
    """Build a real TFDS dataset ``tiny_images`` (one ``train`` split of ``n`` PNG images, sizes
    (40 + i) x 50) in ``data_dir``, array_record format, through tensorflow-datasets' own builder.
    Images are given as encoded PNG bytes, which TFDS stores without needing TensorFlow.  TFDS registers
    builder classes by name once per process, so the class is made once and reused."""
    import io

    if "cls" not in _TINY_TFDS:
        class TinyImages(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")
            N = 6

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
                    {"image": tfds.features.Image(shape=(None, None, 3))}))

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples()}

            def _generate_examples(self):
                rng = np.random.default_rng(0)
                for i in range(self.N):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)).save(buf, "PNG")
                    buf.seek(0)
                    yield i, {"image": buf}

        _TINY_TFDS["cls"] = TinyImages
    cls = _TINY_TFDS["cls"]
    cls.N = n
    cls(data_dir=str(data_dir), file_format="array_record").download_and_prepare()


def loss_before_after(task, steps, learning_rate=1e-4):
    """Train ``task`` (nst_jax.train) on its first batch, held fixed, for ``steps`` compiled steps; return
    the loss on that batch before and after.  Arrays are placed as ``train`` places them (state and
    frozen replicated, the batch sharded over the mesh), so the step compiles once, not again when its
    own replicated output comes back as input."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from nst_jax.train import TrainConfig, TrainState, make_mesh, make_train_step, optimizer

    opt = optimizer(TrainConfig(steps=steps, batch_size=task.batch_size, learning_rate=learning_rate))
    mesh = make_mesh()
    replicated = NamedSharding(mesh, PartitionSpec())
    p0 = jax.device_get(task.init(jax.random.key(0)))
    state = jax.device_put(TrainState.create(p0, opt), replicated)
    frozen = jax.device_put(task.frozen, replicated)
    step = make_train_step(task, opt, mesh)
    stream = task.batches(0, (0, 1))
    try:
        fixed = next(stream)
    finally:
        stream.close()
    batch = jax.device_put(fixed, NamedSharding(mesh, PartitionSpec("data")))
    as_float = {k: v.astype(np.float32) / 255 for k, v in fixed.items()}
    loss = jax.jit(task.loss)  # host arrays in both calls: compiled once (op by op it took 10-15 s each)
    before = float(loss(p0, task.frozen, as_float)[0])
    for _ in range(steps):
        state, _ = step(state, frozen, batch)
    return before, float(loss(jax.device_get(state.params), task.frozen, as_float)[0])


# --- the command line as a user runs it: a real subprocess ---

PY = [sys.executable, "-m", "nst_jax"]


def run(*args, timeout=600):
    return subprocess.run(PY + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def run_here(*args):
    """The command line in this process (:func:`nst_jax.cli.main`), for lists of bad inputs that fail before
    any work: the same exit status and stderr as :func:`run` without a new interpreter importing JAX (~2 s a
    case).  Each such list keeps at least one case as a real subprocess (:func:`run`)."""
    import contextlib
    import io

    from nst_jax.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse's usage errors
            rc = e.code
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def assert_clean_error(r, match):
    assert r.returncode != 0, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert match in lines[0], lines[0]


def subprocess_env(devices: int | None = None, **extra) -> dict:
    """This process's environment plus ``extra``, and ``devices`` forced host devices if given (the XLA
    flags the tests run with are kept)."""
    env = {**os.environ, **extra}
    if devices:
        forced = f"--xla_force_host_platform_device_count={devices}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {forced}".strip()
    return env

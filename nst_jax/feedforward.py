"""Fast feed-forward style transfer (Johnson, Alahi & Fei-Fei 2016) with instance normalisation (Ulyanov,
Vedaldi & Lempitsky 2016): one transformation network per style, trained with the perceptual losses of
:mod:`nst_jax.losses`, applied in one forward pass.

The network (:class:`TransformNet`, flax.linen) is Johnson et al.'s: a 9x9 convolution, two stride-2
convolutions, five residual blocks, two upsampling stages and a 9x9 convolution, with reflection padding
throughout and instance normalisation after every convolution but the last.  The upsampling stages are
nearest-neighbour upsampling followed by a convolution (Odena et al. 2016, "Deconvolution and
Checkerboard Artifacts"), as in PyTorch's fast_neural_style example, instead of the paper's transposed
convolutions.  1,679,235 parameters.

Loss (the perceptual loss), with every term scale-free so that no layer outweighs the others because its
activations are larger (:func:`nst_jax.losses.relative_distance`, ``||a - b||^2 / ||b||^2``):

* content: the mean over ``CONTENT_LAYERS`` of the relative error of the output's VGG-19 features against
  the input photo's; the default pairs Johnson et al.'s ``relu2_2`` (edges, fine structure) with Gatys et
  al.'s ``relu4_2`` (layout), which kept the photo better than either alone in measured runs;
* style: the mean over Gatys et al.'s layers ``relu1_1 .. relu4_1`` of the relative distance between the
  output's Gram matrices (``gram_matrix``: divided by C*H*W) and the style image's.  ``relu5_1`` is left
  out: on a 128-px training crop its Gram matrix is a statistic of 8 x 8 positions, and a photo's
  distance there was 5x the other layers' (3.0 against 0.46-0.64 for Starry Night), so it would carry
  more than half of the term again;
* total variation: the mean squared difference between neighbouring pixels (values in [0, 1]).

One style weight does not fit every painting: the training photos' own style distance to The Scream or to
Turner's Shipwreck is about twice their distance to Starry Night (1.37 / 1.45 against 0.71 on 128-px
crops), and with one weight those networks over-stylised.  ``style_norm="photos"`` measures that distance
on ``STYLE_NORM_CROPS`` training crops when training starts and divides the style term by it, so that the
style weight reads "per unit of the photos' own distance" for every painting (``STYLE_WEIGHT_PHOTOS``
equals the plain weight 30 on Starry Night).

jcjohnson/fast-neural-style sums plain Gram MSEs over relu1_2, relu2_2, relu3_3, relu4_3 of VGG-16 with
weights set for that network.  Carried over to VGG-19 (relu3_4, relu4_4) those weights let one layer,
relu3_4, carry 96-97% of the style term, and the network learned one mid-scale texture that it spread
over the whole photo (BENCHMARKS.md, "fast feed-forward networks").  Normalising each layer by its
target's norm balances them by construction; the weights below were chosen by measured training runs
(BENCHMARKS.md, "recipe").
"""

from __future__ import annotations

import os
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from .errors import NSTError
from .losses import gram_matrix, relative_distance, total_variation
from .nets import count_params, flat_shapes, load_params, pad_to_multiple, save_params, upsample_nearest
from .vgg import _conv as _vgg_conv
from .vgg import vgg19_features

CONTENT_LAYERS = ("relu2_2", "relu4_2")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 30.0
TV_WEIGHT = 1.0
STYLE_WEIGHT_PHOTOS = 21.3  # with style_norm="photos": 30 x Starry Night's 0.711
STYLE_NORM_CROPS = 64
STYLE_NORMS = ("none", "photos")
MULTIPLE = 4  # two stride-2 convolutions: sides are padded to a multiple of 4
MODELS_DIR = Path(__file__).parent / "models"
MODEL_PREFIX = "fast_"
MODEL_FORMAT = "nst_jax-fast-v1"
EPS = 1e-5


# --- network ---------------------------------------------------------------------------------------------

class InstanceNorm(nn.Module):
    """Per-image, per-channel normalisation over H, W, with a learned scale and shift (Ulyanov et al.)."""

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones_init(), (c,))
        bias = self.param("bias", nn.initializers.zeros_init(), (c,))
        mean = jnp.mean(x, axis=(1, 2), keepdims=True)
        var = jnp.var(x, axis=(1, 2), keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + EPS) * scale + bias


def instance_norm(x, scale, bias, eps: float = EPS):
    """The pure function behind :class:`InstanceNorm` (for tests and users)."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.var(x, axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias


class ConvLayer(nn.Module):
    """Reflection-padded k x k convolution, stride 1 or 2."""
    features: int
    kernel: int
    stride: int = 1

    @nn.compact
    def __call__(self, x):
        k = self.kernel
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        p = k // 2
        x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        return _valid_conv(x, kernel, self.stride) + bias


def _valid_conv(x, kernel, stride: int):
    """``lax.conv(x, kernel, stride, "VALID")`` for odd square kernels, computed through XLA:CPU's fast path.

    XLA:CPU runs ``"SAME"`` convolutions through its fast (Eigen) kernels but ``"VALID"`` and explicit
    padding through a generic one, up to 20x slower for this network's 9x9 output layer.  So: stride 1 is
    the ``"SAME"`` convolution of the (already padded) input cropped to its valid interior (3x3 kernels
    through the VGG's convolution, with its fast input-gradient rule); stride 2 on an even size is exactly
    ``"SAME"`` (whose padding is then 0 before and 1 after, so its windows are ``"VALID"``'s plus one more).
    """
    k = kernel.shape[0]
    p = k // 2
    dn = ("NHWC", "HWIO", "NHWC")
    if stride == 1:
        if k == 3:
            return _vgg_conv(x, {"kernel": kernel, "bias": jnp.zeros(kernel.shape[-1], kernel.dtype)})[
                :, 1:-1, 1:-1]
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=dn)[:, p:-p, p:-p]
    if stride == 2 and k == 3 and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0:
        h, w = (x.shape[1] - k) // 2 + 1, (x.shape[2] - k) // 2 + 1  # VALID's size: one less than SAME's
        return jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=dn)[:, :h, :w]
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID", dimension_numbers=dn)


class ResidualBlock(nn.Module):
    features: int = 128

    @nn.compact
    def __call__(self, x):
        y = nn.relu(InstanceNorm(name="in1")(ConvLayer(self.features, 3, name="conv1")(x)))
        y = InstanceNorm(name="in2")(ConvLayer(self.features, 3, name="conv2")(y))
        return x + y


class TransformNet(nn.Module):
    """Johnson et al.'s transformation network with instance norm; RGB in [0, 1] in and out (the output
    is unclipped during training)."""

    @nn.compact
    def __call__(self, x):
        y = nn.relu(InstanceNorm(name="in1")(ConvLayer(32, 9, name="conv1")(x)))
        y = nn.relu(InstanceNorm(name="in2")(ConvLayer(64, 3, 2, name="conv2")(y)))
        y = nn.relu(InstanceNorm(name="in3")(ConvLayer(128, 3, 2, name="conv3")(y)))
        for i in range(1, 6):
            y = ResidualBlock(128, name=f"res{i}")(y)
        y = nn.relu(InstanceNorm(name="in4")(ConvLayer(64, 3, name="up1")(upsample_nearest(y))))
        y = nn.relu(InstanceNorm(name="in5")(ConvLayer(32, 3, name="up2")(upsample_nearest(y))))
        return ConvLayer(3, 9, name="out")(y)


NET = TransformNet()


def init_net(key):
    return NET.init(key, jnp.zeros((1, 16, 16, 3), jnp.float32))["params"]


def apply_net(params, images):
    """The network on NHWC images in [0, 1] of any size (padded to a multiple of 4, cropped back)."""
    h, w = images.shape[1:3]
    return NET.apply({"params": params}, pad_to_multiple(images, MULTIPLE))[:, :h, :w]


# --- training objective ----------------------------------------------------------------------------------

def style_targets(vgg_params, style, layers=STYLE_LAYERS):
    """Gram matrices of one style image ``(1, H, W, 3)`` at ``layers``: ``{layer: (1, C, C)}``."""
    f = vgg19_features(vgg_params, style, layers)
    return {k: gram_matrix(f[k]) for k in layers}


def photo_style_distance(vgg_params, grams, photos, layers=STYLE_LAYERS) -> float:
    """Mean over ``photos`` (NHWC, [0, 1]) and ``layers`` of each photo's relative Gram distance to the
    style targets ``grams``: how far the untouched photos are from the painting."""

    @jax.jit
    def one(x):
        f = vgg19_features(vgg_params, x[None], layers)
        return sum(relative_distance(gram_matrix(f[k]), grams[k]) for k in layers) / len(layers)

    return float(np.mean([float(one(jnp.asarray(x))) for x in photos]))


def perceptual_loss(net_params, frozen, content, *, content_weight=CONTENT_WEIGHT, style_weight=STYLE_WEIGHT,
                    tv_weight=TV_WEIGHT, content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS):
    """The perceptual loss (see the module docstring) for a batch of content images (NHWC, [0, 1]).

    ``frozen``: ``{"vgg": VGG-19 params, "grams": style_targets(...)}``.  Returns ``(total, terms)`` with
    the unweighted terms.
    """
    vgg = frozen["vgg"]
    y = apply_net(net_params, content)
    layers = tuple(dict.fromkeys(tuple(content_layers) + tuple(style_layers)))
    fy = vgg19_features(vgg, y, layers)
    fc = vgg19_features(vgg, content, tuple(content_layers))
    c = sum(relative_distance(fy[k], jax.lax.stop_gradient(fc[k])) for k in content_layers)
    c = c / len(content_layers)
    s = sum(relative_distance(gram_matrix(fy[k]), frozen["grams"][k]) for k in style_layers)
    s = s / len(style_layers)
    tv = total_variation(y, "l2") / (y.shape[1] * y.shape[2] * y.shape[3])
    return content_weight * c + style_weight * s + tv_weight * tv, {"content": c, "style": s, "tv": tv}


# --- model files -----------------------------------------------------------------------------------------

def save_model(path: str | os.PathLike, params, meta: dict | None = None, dtype=np.float16) -> Path:
    """Write network parameters as an ``.npz`` (float16 by default), atomically."""
    return save_params(path, params, MODEL_FORMAT, meta, dtype)


def shipped_models() -> dict[str, Path]:
    """``{name: path}`` of the models inside the package."""
    return {p.stem[len(MODEL_PREFIX):]: p for p in sorted(MODELS_DIR.glob(f"{MODEL_PREFIX}*.npz"))}


def resolve_model(model: str | os.PathLike) -> Path:
    """A shipped model's name, or a path to a model ``.npz``."""
    text = str(model)
    shipped = shipped_models()
    if text in shipped:
        return shipped[text]
    path = Path(text).expanduser()
    if path.suffix == ".npz" or os.sep in text or path.exists():
        if not path.exists():
            raise NSTError(f"model file {path} does not exist")
        return path
    names = ", ".join(shipped) or "none"
    raise NSTError(f"no shipped model named {text!r} (shipped: {names}); or give a path to a .npz")


def load_model(model: str | os.PathLike):
    """``(params, meta)`` from a shipped model name or a ``.npz`` written by :func:`save_model`."""
    path = resolve_model(model)
    expected = flat_shapes(lambda: init_net(jax.random.key(0)))
    return load_params(path, MODEL_FORMAT, expected, "feed-forward model", "nst-jax train fast")


# --- inference -------------------------------------------------------------------------------------------

_apply_jit = jax.jit(apply_net)


def fast_stylize(contents, model="starry_night", *, size: int | None = 512,
                 preserve_color: str | None = None, callback=None):
    """Stylise one image or a list of images with a trained network, in one forward pass.

    Images that have the same shape after resizing (``size``: longest side, ``None`` keeps it) run as one
    batch.  Returns ``(images, report)``: a list of ``(H, W, 3)`` float32 arrays in [0, 1] (a single array
    when a single array was given).
    """
    import time

    t0 = time.perf_counter()
    say = callback or (lambda msg: None)
    single = isinstance(contents, np.ndarray) and contents.ndim == 3
    items = [contents] if single else list(contents)
    if not items:
        raise NSTError("no content images given")
    if preserve_color not in (None, "luminance", "histogram"):
        raise NSTError(f"preserve-color must be 'luminance' or 'histogram', not {preserve_color!r}")
    params = model if isinstance(model, dict) else load_model(model)[0]
    resized = [_image.resize_longest(np.asarray(c, np.float32), size) for c in items]
    for r in resized:
        if min(r.shape[:2]) < MULTIPLE:
            raise NSTError(f"image {r.shape[0]}x{r.shape[1]} is too small: both sides must be at least "
                           f"{MULTIPLE} px")
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(resized):
        groups.setdefault(r.shape, []).append(i)
    outs: list = [None] * len(items)
    t1 = time.perf_counter()
    for shape, idx in groups.items():
        say(f"stylising {len(idx)} image(s) of {shape[1]}x{shape[0]}")
        batch = jnp.asarray(np.stack([resized[i] for i in idx]))
        y = np.clip(np.asarray(_apply_jit(params, batch)), 0.0, 1.0)
        for j, i in enumerate(idx):
            out = y[j]
            if preserve_color == "luminance":
                out = _image.transfer_luminance(out, resized[i])
            elif preserve_color == "histogram":
                out = _image.match_histogram(out, resized[i])
            outs[i] = out.astype(np.float32)
    report = {"seconds": {"total": time.perf_counter() - t0, "stylise": time.perf_counter() - t1},
              "images": len(items), "batches": len(groups),
              "sizes": [list(o.shape[:2]) for o in outs]}
    return (outs[0] if single else outs), report


# --- training task (for nst_jax.train.train) -------------------------------------------------------------

class FastTask:
    """Train a transformation network for one style image on content images from a source."""

    name = "fast"
    export_name = "model.npz"

    def __init__(self, vgg_params, style_image, content_source, *, style_name: str = "style",
                 style_size: int | None = 512, crop: int = 256, resize: int = 256,
                 content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
                 tv_weight: float = TV_WEIGHT, content_layers=CONTENT_LAYERS, style_norm: str = "none",
                 batch_size: int = 4, seed: int = 0, prefetch: int = 2):
        from .data import check_crop
        from .vgg import LAYERS

        check_crop(crop, resize)
        content_layers = tuple(content_layers)
        bad = [k for k in content_layers if k not in LAYERS]
        if bad or not content_layers:
            raise NSTError(f"unknown content layer(s) {', '.join(bad) or '(none given)'}; VGG-19 layers are "
                           f"named like relu2_2, relu4_2")
        if style_norm not in STYLE_NORMS:
            raise NSTError(f"unknown style normalisation {style_norm!r}; choose from "
                           f"{', '.join(STYLE_NORMS)}")
        style = _image.resize_longest(np.asarray(style_image, np.float32), style_size)
        grams = jax.jit(style_targets)(vgg_params, jnp.asarray(style)[None])
        self.frozen = {"vgg": vgg_params, "grams": grams}
        self.content_source = content_source
        self.crop, self.resize, self.batch_size = crop, resize, batch_size
        self.seed, self.prefetch = seed, prefetch
        norm = 1.0
        if style_norm == "photos":
            norm = self.photos_distance(STYLE_NORM_CROPS)
        self.weights = {"content_weight": float(content_weight), "style_weight": float(style_weight) / norm,
                        "tv_weight": float(tv_weight), "content_layers": content_layers}
        self.config = {"style": style_name, "style_shape": list(style.shape[:2]), "crop": crop,
                       "resize": resize, "content": content_source.name, **self.weights,
                       "content_layers": list(content_layers), "style_layers": list(STYLE_LAYERS),
                       "loss": "relative-v2"}
        if style_norm != "none":
            self.config.update(style_norm=style_norm, style_norm_value=norm,
                               style_weight_per_norm=float(style_weight))
        if getattr(content_source, "excluded", None):
            self.config["excluded"] = list(content_source.excluded)

    def photos_distance(self, n: int) -> float:
        """The photos' own style distance to the painting, averaged over the first ``n`` training crops of
        a stream seeded apart from training's (the same crops on every run and resume)."""
        from .data import Batches

        stream = Batches(self.content_source, n, self.crop, self.resize, seed=self.seed + 7919, prefetch=1)
        try:
            crops = np.asarray(next(stream), np.float32) / 255.0
        finally:
            stream.close()
        return photo_style_distance(self.frozen["vgg"], self.frozen["grams"], crops)

    def init(self, key):
        return init_net(key)

    def loss(self, params, frozen, batch):
        return perceptual_loss(params, frozen, batch["content"], **self.weights)

    def batches(self, start_step: int, shard):
        from .data import Batches

        return _Named(Batches(self.content_source, self.batch_size, self.crop, self.resize, seed=self.seed,
                              start_step=start_step, shard=shard, prefetch=self.prefetch))

    def export(self, params, path, meta):
        save_model(path, params, meta)


class _Named:
    def __init__(self, stream):
        self.stream = stream

    def __iter__(self):
        return self

    def __next__(self):
        return {"content": next(self.stream)}

    @property
    def skipped(self) -> int:
        return self.stream.skipped

    def close(self):
        self.stream.close()


def train_fast(style, content, ckpt_dir, *, steps: int = 40_000, batch_size: int = 4,
               learning_rate: float = 1e-3, lr_decay: float = 0.0, warmup: int = 0,
               content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
               tv_weight: float = TV_WEIGHT, content_layers=CONTENT_LAYERS, style_norm: str = "none",
               style_size: int | None = 512,
               crop: int = 256, resize: int = 256, seed: int = 0, ckpt_every: int = 500, log_every: int = 10,
               resume: bool = False, init_from=None, exclude=(), weights=None, tfds_data_dir=None,
               distributed: bool = False,
               callback=None, log=None) -> dict:
    """Train a feed-forward network for one style (Johnson et al.'s recipe: Adam, learning rate 1e-3,
    batch 4, 256² crops, 40k steps = 2 epochs of COCO).

    ``style``: a path or an ``(H, W, 3)`` array; ``content``: an image folder, ``tfds:NAME[:SPLIT]`` or a
    source object.  Checkpoints, metrics, the loss curve and ``model.npz`` go to ``ckpt_dir``.
    ``init_from``: a shipped model's name or a model ``.npz`` to start from (e.g. the previous session's
    network, or another style's network), with a fresh optimiser state.  ``exclude``: glob patterns of
    file names left out of the content folder (held back for evaluation).  ``style_norm="photos"``:
    the style term in units of the photos' own distance to the painting (use ``STYLE_WEIGHT_PHOTOS``).
    """
    from .data import open_source
    from .train import TrainConfig, train
    from .vgg import vgg19_params

    if isinstance(style, (str, os.PathLike)):
        style_name = Path(style).stem
        style = _image.load_image(style)
    else:
        style_name = "style"
    init = None if init_from is None else load_model(init_from)
    content_src = content if hasattr(content, "load") else open_source(content, tfds_data_dir, exclude)
    task = FastTask(vgg19_params(weights, log=log), style, content_src, style_name=style_name,
                    style_size=style_size, crop=crop, resize=resize, content_weight=content_weight,
                    style_weight=style_weight, tv_weight=tv_weight, content_layers=content_layers,
                    style_norm=style_norm, batch_size=batch_size, seed=seed)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, learning_rate=learning_rate, lr_decay=lr_decay,
                      warmup=warmup, seed=seed, ckpt_every=ckpt_every, log_every=log_every)
    return train(task, cfg, ckpt_dir, resume=resume, init=init, distributed=distributed, callback=callback,
                 log=log)


__all__ = ["FastTask", "InstanceNorm", "TransformNet", "apply_net", "count_params", "fast_stylize",
           "init_net", "instance_norm", "load_model", "perceptual_loss", "photo_style_distance", "save_model",
           "shipped_models", "style_targets", "train_fast"]

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

import functools
import os
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from .errors import NSTError
from .losses import gram_matrix, relative_distance, relative_distances, total_variation
from .nets import (
    EPS,
    count_params,
    flat_shapes,
    instance_norm,
    load_params,
    pad_to_multiple,
    reflect_pad,
    save_params,
    upsample_nearest,
    valid_conv,
)
from .train import TrainConfig
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


# --- network ---------------------------------------------------------------------------------------------

class InstanceNorm(nn.Module):
    """Per-image, per-channel normalisation over H, W, with a learned scale and shift (Ulyanov et al.).

    ``num_styles > 0``: conditional instance normalisation (Dumoulin, Shlens & Kudlur 2017): one scale
    and shift per style, chosen (or mixed) per image by ``style``, an ``(N, num_styles)`` array of weights
    (one-hot for one style; a convex combination blends styles)."""

    num_styles: int = 0

    @nn.compact
    def __call__(self, x, style=None):
        c = x.shape[-1]
        shape = (self.num_styles, c) if self.num_styles else (c,)
        scale = self.param("scale", nn.initializers.ones_init(), shape)
        bias = self.param("bias", nn.initializers.zeros_init(), shape)
        if self.num_styles:
            scale = (style @ scale)[:, None, None, :]
            bias = (style @ bias)[:, None, None, :]
        return instance_norm(x, scale, bias)


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
        return valid_conv(reflect_pad(x, k // 2), kernel, self.stride) + bias


class ResidualBlock(nn.Module):
    features: int = 128
    num_styles: int = 0

    @nn.compact
    def __call__(self, x, style=None):
        n = self.num_styles
        y = nn.relu(InstanceNorm(n, name="in1")(ConvLayer(self.features, 3, name="conv1")(x), style))
        y = InstanceNorm(n, name="in2")(ConvLayer(self.features, 3, name="conv2")(y), style)
        return x + y


class TransformNet(nn.Module):
    """Johnson et al.'s transformation network with instance norm; RGB in [0, 1] in and out (the output
    is unclipped during training).  ``num_styles > 0``: one network for several styles, with conditional
    instance normalisation (Dumoulin et al. 2017); ``style`` is then an ``(N, num_styles)`` weight array."""

    num_styles: int = 0

    @nn.compact
    def __call__(self, x, style=None):
        n = self.num_styles
        y = nn.relu(InstanceNorm(n, name="in1")(ConvLayer(32, 9, name="conv1")(x), style))
        y = nn.relu(InstanceNorm(n, name="in2")(ConvLayer(64, 3, 2, name="conv2")(y), style))
        y = nn.relu(InstanceNorm(n, name="in3")(ConvLayer(128, 3, 2, name="conv3")(y), style))
        for i in range(1, 6):
            y = ResidualBlock(128, n, name=f"res{i}")(y, style)
        y = nn.relu(InstanceNorm(n, name="in4")(ConvLayer(64, 3, name="up1")(upsample_nearest(y)), style))
        y = nn.relu(InstanceNorm(n, name="in5")(ConvLayer(32, 3, name="up2")(upsample_nearest(y)), style))
        return ConvLayer(3, 9, name="out")(y)


@functools.lru_cache(maxsize=None)
def _net(num_styles: int) -> TransformNet:
    return TransformNet(num_styles)


def init_net(key, num_styles: int = 0):
    """Parameters of a one-style network, or of a ``num_styles``-style conditional one."""
    style = jnp.ones((1, num_styles), jnp.float32) / num_styles if num_styles else None
    return _net(num_styles).init(key, jnp.zeros((1, 16, 16, 3), jnp.float32), style)["params"]


def num_styles(params) -> int:
    """0 for a one-style network; the number of styles of a conditional one."""
    scale = params["in1"]["scale"]
    return int(scale.shape[0]) if jnp.ndim(scale) == 2 else 0


def apply_net(params, images, style=None):
    """The network on NHWC images in [0, 1] of any size (padded to a multiple of 4, cropped back).

    ``style`` (conditional networks only): weights over the styles, ``(num_styles,)`` for every image or
    ``(N, num_styles)`` per image; see :func:`style_mix`."""
    h, w = images.shape[1:3]
    n = num_styles(params)
    if n:
        if style is None:
            raise NSTError(f"this network holds {n} styles: say which (a style name, or weights)")
        style = jnp.broadcast_to(jnp.asarray(style, jnp.float32), (images.shape[0], n))
    return _net(n).apply({"params": params}, pad_to_multiple(images, MULTIPLE), style)[:, :h, :w]


# --- training objective ----------------------------------------------------------------------------------

def style_targets(vgg_params, style, layers=STYLE_LAYERS):
    """Gram matrices of one style image ``(1, H, W, 3)`` at ``layers``: ``{layer: (1, C, C)}``."""
    f = vgg19_features(vgg_params, style, layers)
    return {k: gram_matrix(f[k]) for k in layers}


def photo_style_distance(vgg_params, grams, photos, layers=STYLE_LAYERS) -> float:
    """Mean over ``photos`` (NHWC, [0, 1]) and ``layers`` of each photo's relative Gram distance to the
    style targets ``grams``: how far the untouched photos are from the painting."""
    f = _features_jit(vgg_params, jnp.asarray(photos), tuple(layers))
    per_image = sum(relative_distances(gram_matrix(f[k]), grams[k]) for k in layers) / len(layers)
    return float(jnp.mean(per_image))


_features_jit = jax.jit(vgg19_features, static_argnums=(2,))


def perceptual_loss(net_params, frozen, content, *, style=None, content_weight=CONTENT_WEIGHT,
                    style_weight=STYLE_WEIGHT, tv_weight=TV_WEIGHT, content_layers=CONTENT_LAYERS,
                    style_layers=STYLE_LAYERS):
    """The perceptual loss (see the module docstring) for a batch of content images (NHWC, [0, 1]).

    ``frozen``: ``{"vgg": VGG-19 params, "grams": {layer: (S, C, C)}}`` (:func:`style_targets` of each
    style, stacked).  A conditional network (:func:`num_styles` > 0) takes ``style``, the index of each
    image's style ``(N,)``, and ``style_weight`` may then be one weight per style ``(S,)``.  Returns
    ``(total, terms)`` with the unweighted terms (the style term averaged over the batch).
    """
    vgg = frozen["vgg"]
    n = num_styles(net_params)
    if n:
        y = apply_net(net_params, content, jax.nn.one_hot(style, n))
        targets = {k: frozen["grams"][k][style] for k in style_layers}
        weight = jnp.asarray(style_weight, jnp.float32)
        weight = weight[style] if weight.ndim else weight
    else:
        y = apply_net(net_params, content)
        targets, weight = frozen["grams"], style_weight
    layers = tuple(dict.fromkeys(tuple(content_layers) + tuple(style_layers)))
    fy = vgg19_features(vgg, y, layers)
    fc = vgg19_features(vgg, content, tuple(content_layers))
    c = sum(relative_distance(fy[k], jax.lax.stop_gradient(fc[k])) for k in content_layers)
    c = c / len(content_layers)
    per_image = sum(relative_distances(gram_matrix(fy[k]), targets[k]) for k in style_layers)
    per_image = per_image / len(style_layers)
    tv = total_variation(y, "l2") / (y.shape[1] * y.shape[2] * y.shape[3])
    total = content_weight * c + jnp.mean(weight * per_image) + tv_weight * tv
    return total, {"content": c, "style": jnp.mean(per_image), "tv": tv}


# --- model files -----------------------------------------------------------------------------------------

def save_model(path: str | os.PathLike, params, meta: dict | None = None, dtype=np.float16) -> Path:
    """Write network parameters as an ``.npz`` (float16 by default), atomically."""
    return save_params(path, params, MODEL_FORMAT, meta, dtype)


def shipped_models() -> dict[str, Path]:
    """``{name: path}`` of the model files inside the package."""
    return {p.stem[len(MODEL_PREFIX):]: p for p in sorted(MODELS_DIR.glob(f"{MODEL_PREFIX}*.npz"))}


def model_styles(meta: dict) -> list[str]:
    """The style names of a conditional network's file metadata (``[]`` for a one-style network)."""
    return list(meta.get("styles", []))


def read_meta(path: str | os.PathLike) -> dict:
    """A model file's metadata alone (no parameters are read); ``{}`` if it has none or is unreadable."""
    import json

    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
    except (OSError, ValueError, KeyError):
        return {}


def shipped_styles() -> dict[str, tuple[Path, str | None]]:
    """Every style the shipped files can paint: ``{name: (path, style)}``, ``style`` being the name inside
    a conditional network (``None`` for a one-style file).  A one-style file wins over a conditional
    network's style of the same name."""
    singles: dict[str, tuple[Path, str | None]] = {}
    inside: dict[str, tuple[Path, str | None]] = {}
    for name, path in shipped_models().items():
        styles = model_styles(read_meta(path))
        if not styles:
            singles[name] = (path, None)
        for style in styles:
            inside.setdefault(style, (path, style))
    return dict(sorted({**inside, **singles}.items()))


def resolve_model(model: str | os.PathLike) -> Path:
    """A shipped model's name, or a path to a model ``.npz``."""
    return _resolve(model)[0]


def _resolve(model: str | os.PathLike) -> tuple[Path, str | None]:
    text = str(model)
    if text in shipped_models():
        return shipped_models()[text], None
    styles = shipped_styles()
    if text in styles:
        return styles[text]
    path = Path(text).expanduser()
    if path.suffix == ".npz" or os.sep in text or path.exists():
        if not path.exists():
            raise NSTError(f"model file {path} does not exist")
        return path, None
    names = ", ".join(styles) or "none"
    raise NSTError(f"no shipped model named {text!r} (shipped: {names}); or give a path to a .npz")


def _expected_shapes(meta: dict) -> dict:
    return flat_shapes(lambda: init_net(jax.random.key(0), len(model_styles(meta))))


def load_model(model: str | os.PathLike):
    """``(params, meta)`` from a shipped model or style name, or a ``.npz`` written by :func:`save_model`.
    A style name inside a shipped conditional network gives that network, with ``meta["style"]`` set."""
    path, style = _resolve(model)
    params, meta = load_params(path, MODEL_FORMAT, _expected_shapes, "feed-forward model",
                               "nst-jax train fast")
    if style is not None:
        meta = {**meta, "style": style}
    return params, meta


def style_mix(styles: list[str], spec) -> np.ndarray:
    """Weights over a conditional network's ``styles`` from ``spec``: a style name, an index, or a mapping
    ``{name: weight}`` (non-negative, normalised to sum 1: Dumoulin et al.'s convex combination of the
    styles' normalisation parameters)."""
    if not styles:
        raise NSTError("this network paints one style; it takes no style choice")
    if isinstance(spec, (str, int)):
        spec = {spec: 1.0}
    if not isinstance(spec, dict) or not spec:
        raise NSTError(f"choose one of the network's styles: {', '.join(styles)}")
    w = np.zeros(len(styles), np.float32)
    for key, value in spec.items():
        if isinstance(key, int) and 0 <= key < len(styles):
            i = key
        elif key in styles:
            i = styles.index(key)
        else:
            raise NSTError(f"this network has no style {key!r}; its styles: {', '.join(styles)}")
        if not (value >= 0 and np.isfinite(value)):
            raise NSTError(f"style weights must be non-negative numbers, not {value}")
        w[i] += value
    if w.sum() <= 0:
        raise NSTError("style weights must not all be zero")
    return w / w.sum()


# --- inference -------------------------------------------------------------------------------------------

_apply_jit = jax.jit(apply_net)

# --- tiled inference (nst_jax.tiling): one layer at a time over the whole image, a band of rows at a time

BYTES_PER_PIXEL = 560  # whole-image peak: 2.7 GB at 2048 x 2048, 9.4 GB at 4096 x 4096 on XLA:CPU
FIXED_BYTES = 500 << 20
# output pixels per band; the band's own working memory dominates (the 9x9 convolutions): at 4096 x 4096,
# bands of 128 rows peaked at 5.1 GB, bands of 1024 rows at 11.3 GB (the whole image at once: 9.4 GB)
TILE_PIXELS = 1 << 19


def _reflect(idx: np.ndarray, n: int) -> np.ndarray:
    """Reflection padding's row indices (``jnp.pad(mode="reflect")``) for rows ``idx`` of ``n``."""
    idx = np.abs(idx)
    return np.where(idx >= n, 2 * (n - 1) - idx, idx)


@functools.partial(jax.jit, static_argnames=("stride", "up"))
def _band_conv(x, kernel, bias, *, stride: int, up: bool):
    """One ConvLayer on a band whose rows (with the row padding or halo) were gathered already: columns
    upsampled if ``up``, reflection-padded, then the VALID convolution over rows and columns."""
    if up:
        x = jnp.repeat(x, 2, axis=2)
    p = kernel.shape[0] // 2
    x = jnp.pad(x, ((0, 0), (0, 0), (p, p), (0, 0)), mode="reflect")
    return valid_conv(x, kernel, stride) + bias


def _conv_stage(x: np.ndarray, layer: dict, stride: int = 1, up: bool = False,
                band_pixels: int = TILE_PIXELS) -> np.ndarray:
    """``ConvLayer`` (after 2x nearest upsampling if ``up``) over a whole activation held in host memory,
    a band of output rows at a time; each band gathers exactly the input rows its outputs see (reflected
    at the image's edges), so every row equals the whole-image convolution's."""
    kernel, bias = layer["kernel"], layer["bias"]
    k = kernel.shape[0]
    p = k // 2
    rows = 2 * x.shape[1] if up else x.shape[1]
    height = (rows + 2 * p - k) // stride + 1
    width = 2 * x.shape[2] if up else (x.shape[2] + 2 * p - k) // stride + 1
    n = min(height, max(8, band_pixels // max(1, width)))
    out = None
    starts = list(range(0, height - n, n)) + [height - n]  # equal bands: one compiled shape per layer
    for a in starts:
        if up:
            idx = _reflect(np.arange(a - p, a + n + p), rows) // 2
        else:
            idx = _reflect(np.arange(a * stride - p, (a + n - 1) * stride + k - p), rows)
        y = np.asarray(_band_conv(jnp.asarray(x[:, idx]), kernel, bias, stride=stride, up=up))
        if out is None:
            out = np.empty((x.shape[0], height) + y.shape[2:], np.float32)
        out[:, a:a + n] = y
    return out


def _norm_stage(x: np.ndarray, scale, bias, relu: bool, skip: np.ndarray | None = None,
                band_pixels: int = TILE_PIXELS) -> np.ndarray:
    """Instance normalisation of a whole activation in place, its statistics over every row (float64),
    then ReLU or a residual sum, a band at a time."""
    n = max(1, band_pixels // max(1, x.shape[2]))
    count = x.shape[1] * x.shape[2]
    total = sum(x[:, a:a + n].sum(axis=(1, 2), dtype=np.float64) for a in range(0, x.shape[1], n))
    mean = total / count
    sq = sum(((x[:, a:a + n] - mean[:, None, None]) ** 2).sum(axis=(1, 2)) for a in range(0, x.shape[1], n))
    var = sq / count
    gain = (np.asarray(scale, np.float64) / np.sqrt(var + EPS))[:, None, None].astype(np.float32)
    shift = (np.asarray(bias, np.float64) - mean * gain[:, 0, 0])[:, None, None].astype(np.float32)
    for a in range(0, x.shape[1], n):
        band = x[:, a:a + n] * gain + shift
        if relu:
            np.maximum(band, 0.0, out=band)
        if skip is not None:
            band += skip[:, a:a + n]
        x[:, a:a + n] = band
    return x


def apply_net_tiled(params, images, style=None, band_rows: int | None = None) -> np.ndarray:
    """:func:`apply_net` one layer at a time over the whole image (held in host memory), each layer a band
    of rows at a time, each instance normalisation's statistics over the whole image: the same result
    (up to float rounding) with a peak of about two layers' activations instead of the whole network's.
    ``band_rows``: rows of the image per band (lower-resolution layers take as many pixels per band);
    default: about ``TILE_PIXELS`` pixels."""
    h, w = images.shape[1:3]
    x = np.asarray(pad_to_multiple(jnp.asarray(images, jnp.float32), MULTIPLE))
    px = TILE_PIXELS if band_rows is None else max(1, band_rows) * x.shape[2]
    conv = functools.partial(_conv_stage, band_pixels=px)
    mix = None
    if num_styles(params):
        mix = np.broadcast_to(np.asarray(style, np.float32), (len(x), num_styles(params)))

    def norm(p, y, relu=True, skip=None):
        scale, bias = np.asarray(p["scale"]), np.asarray(p["bias"])
        if mix is not None:  # one (scale, bias) per image: the mix of its styles'
            scale, bias = mix @ scale, mix @ bias
        shape = (len(y), scale.shape[-1])
        return _norm_stage(y, np.broadcast_to(scale, shape), np.broadcast_to(bias, shape), relu, skip, px)

    y = norm(params["in1"], conv(x, params["conv1"]))
    y = norm(params["in2"], conv(y, params["conv2"], stride=2))
    y = norm(params["in3"], conv(y, params["conv3"], stride=2))
    for i in range(1, 6):
        r = params[f"res{i}"]
        z = norm(r["in1"], conv(y, r["conv1"]))
        y = norm(r["in2"], conv(z, r["conv2"]), relu=False, skip=y)
    y = norm(params["in4"], conv(y, params["up1"], up=True))
    y = norm(params["in5"], conv(y, params["up2"], up=True))
    return conv(y, params["out"])[:, :h, :w]


def stylize(contents, model="starry_night", *, style=None, size: int | None = 512,
                 preserve_color: str | None = None, tile="auto", devices=None, callback=None):
    """Stylise one image or a list of images with a trained network, in one forward pass.

    ``model``: a shipped model or style name, a ``.npz`` path, parameters, or ``(params, meta)``.
    ``style`` (conditional networks): a style name, an index or ``{name: weight}`` (see :func:`style_mix`);
    a shipped style name given as ``model`` chooses its style itself.  Images that have the same shape after
    resizing (``size``: longest side, ``None`` keeps it) run as one batch.  ``tile``: ``"auto"`` (one layer
    and a band of rows at a time, :func:`apply_net_tiled`, when the whole batch would not fit in half the
    memory available), ``"none"``, or a band height in px.  ``devices`` (N or ``"all"``): each batch split
    by rows across N devices instead (:func:`nst_jax.tiling.row_sharding`; the height after resizing must
    be a multiple of N).  ``preserve_color``: as for every method (:func:`nst_jax.image.preserve_color`;
    the network's style is fixed, so ``"histogram"`` recolours its output).  ``callback``: receives an
    :class:`nst_jax.runinfo.Event` per stage.  Returns ``(images, report)``: a list of ``(H, W, 3)``
    float32 arrays in [0, 1] (a single array when a single array was given) and the report every method
    returns (:func:`nst_jax.runinfo.report`).
    """
    import time

    from .tiling import needs_tiling, parse_tile, replicate, row_sharding, shard_rows, to_host

    t0 = time.perf_counter()
    from .runinfo import emitter

    say = emitter("fast", callback)
    single = isinstance(contents, np.ndarray) and contents.ndim == 3
    items = [contents] if single else list(contents)
    if not items:
        raise NSTError("no content images given")
    _image.check_preserve_color(preserve_color)
    tile = parse_tile(tile)
    rows = row_sharding(devices)
    if isinstance(model, dict):
        params, meta = model, {}
    elif isinstance(model, tuple):
        params, meta = model
    else:
        params, meta = load_model(model)
    mix = None
    if num_styles(params):
        names = model_styles(meta) or [str(i) for i in range(num_styles(params))]
        chosen = style if style is not None else meta.get("style")
        if chosen is None:
            raise NSTError(f"this network paints {len(names)} styles; choose one: {', '.join(names)}")
        mix = jnp.asarray(style_mix(names, chosen))
    elif style is not None:
        raise NSTError("this network paints one style; it takes no style choice")
    resized = [_image.resize_longest(np.asarray(c, np.float32), size) for c in items]
    for r in resized:
        if min(r.shape[:2]) < MULTIPLE:
            raise NSTError(f"image {r.shape[0]}x{r.shape[1]} is too small: both sides must be at least "
                           f"{MULTIPLE} px")
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(resized):
        groups.setdefault(r.shape, []).append(i)
    outs: list = [None] * len(items)
    tile_rows = None
    t1 = time.perf_counter()
    for shape, idx in groups.items():
        say(f"stylising {len(idx)} image(s) of {shape[1]}x{shape[0]}")
        batch = np.stack([resized[i] for i in idx])
        if rows is not None:
            y = _apply_jit(replicate(params, rows), shard_rows(batch, rows), replicate(mix, rows))
        elif needs_tiling(tile, batch.shape[0] * shape[0] * shape[1], BYTES_PER_PIXEL, FIXED_BYTES):
            band = tile if isinstance(tile, int) else max(1, TILE_PIXELS // shape[1])
            say(f"one layer at a time, in bands of {band} rows")
            y = apply_net_tiled(params, batch, mix, tile if isinstance(tile, int) else None)
            tile_rows = band
        else:
            y = _apply_jit(params, jnp.asarray(batch), mix)
        y = np.clip(to_host(y), 0.0, 1.0)
        for j, i in enumerate(idx):
            out = y[j]
            out = _image.preserve_color(preserve_color, resized[i], stylised=out, fixed_style=True)
            outs[i] = out.astype(np.float32)
    from .runinfo import report as make_report

    report = make_report("fast", t0, {"load": t1 - t0, "stylise": time.perf_counter() - t1}, outs[0].shape,
                         1 if rows is None else rows.mesh.size, tile_rows, preserve_color,
                         images=len(items), batches=len(groups), sizes=[list(o.shape[:2]) for o in outs])
    return (outs[0] if single else outs), report


fast_stylize = stylize  # the name before the three methods had parallel entry points


# --- training task (for nst_jax.train.train) -------------------------------------------------------------

class FastTask:
    """Train a transformation network on content images from a source: for one style image, or for several
    with conditional instance normalisation (one network, one scale and shift per style; each example of a
    batch is given the next style in turn, so a batch of 4 with 4 styles holds each once)."""

    name = "fast"
    export_name = "model.npz"

    def __init__(self, vgg_params, style_image, content_source, *, style_name="style",
                 style_size: int | None = 512, crop: int = 256, resize: int = 256,
                 content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
                 tv_weight: float = TV_WEIGHT, content_layers=CONTENT_LAYERS, style_norm: str = "none",
                 batch_size: int = 4, seed: int = 0, prefetch: int = 2, cache_images: bool = False):
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
        images = list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]
        names = list(style_name) if isinstance(style_name, (list, tuple)) else [style_name]
        if len(names) != len(images):
            raise NSTError(f"{len(images)} style images but {len(names)} style names")
        if len(set(names)) != len(names):
            raise NSTError(f"two style images have the same name: {', '.join(names)}")
        self.styles = names if len(names) > 1 else []  # a conditional network's style names
        styles = [_image.resize_longest(np.asarray(im, np.float32), style_size) for im in images]
        targets = jax.jit(style_targets)
        per_style = [targets(vgg_params, jnp.asarray(st)[None]) for st in styles]
        grams = {k: jnp.concatenate([g[k] for g in per_style]) for k in STYLE_LAYERS}
        self.frozen = {"vgg": vgg_params, "grams": grams}
        self.content_source = content_source
        self.crop, self.resize, self.batch_size = crop, resize, batch_size
        self.seed, self.prefetch, self.cache_images = seed, prefetch, cache_images
        norms = [1.0] * len(styles)
        if style_norm == "photos":
            norms = self.photos_distance(STYLE_NORM_CROPS)
        weights = [float(style_weight) / v for v in norms]
        self.weights = {"content_weight": float(content_weight),
                        "style_weight": weights if self.styles else weights[0],
                        "tv_weight": float(tv_weight), "content_layers": content_layers}
        self.config = {"style": names[0] if not self.styles else "+".join(names),
                       "style_shape": list(styles[0].shape[:2]), "crop": crop,
                       "resize": resize, "content": content_source.name, **self.weights,
                       "content_layers": list(content_layers), "style_layers": list(STYLE_LAYERS),
                       "loss": "relative-v2"}
        if self.styles:
            self.config.update(styles=names, style_shapes=[list(st.shape[:2]) for st in styles],
                               conditional="conditional instance normalisation (Dumoulin et al. 2017)")
        if style_norm != "none":
            self.config.update(style_norm=style_norm, style_norm_value=norms if self.styles else norms[0],
                               style_weight_per_norm=float(style_weight))
        if getattr(content_source, "excluded", None):
            self.config["excluded"] = list(content_source.excluded)

    def photos_distance(self, n: int) -> list[float]:
        """The photos' own style distance to each painting, averaged over the first ``n`` training crops of
        a stream seeded apart from training's (the same crops on every run and resume)."""
        from .data import Batches

        stream = Batches(self.content_source, n, self.crop, self.resize, seed=self.seed + 7919, prefetch=1)
        try:
            crops = np.asarray(next(stream), np.float32) / 255.0
        finally:
            stream.close()
        grams = self.frozen["grams"]
        return [photo_style_distance(self.frozen["vgg"], {k: g[i:i + 1] for k, g in grams.items()}, crops)
                for i in range(len(grams[STYLE_LAYERS[0]]))]

    def init(self, key):
        return init_net(key, len(self.styles))

    def loss(self, params, frozen, batch):
        return perceptual_loss(params, frozen, batch["content"], style=batch.get("style"), **self.weights)

    def batches(self, start_step: int, shard):
        from .data import Batches

        stream = Batches(self.content_source, self.batch_size, self.crop, self.resize, seed=self.seed,
                         start_step=start_step, shard=shard, prefetch=self.prefetch, cache=self.cache_images)
        return _Named(stream, len(self.styles), start_step)

    def export(self, params, path, meta):
        save_model(path, params, {**meta, "styles": self.styles} if self.styles else meta)


class _Named:
    """Batches as the task's dicts: ``content``, and for a conditional network ``style``, the style of each
    example (global example ``step * batch + i`` gets style ``(step * batch + i) % num_styles``)."""

    def __init__(self, stream, num_styles: int, start_step: int):
        self.stream, self.num_styles, self.step = stream, num_styles, start_step

    def __iter__(self):
        return self

    def __next__(self):
        content = next(self.stream)
        out = {"content": content}
        if self.num_styles:
            first = self.step * self.stream.batch_size + self.stream.offset
            out["style"] = ((first + np.arange(len(content))) % self.num_styles).astype(np.int32)
        self.step += 1
        return out

    @property
    def skipped(self) -> int:
        return self.stream.skipped

    def close(self):
        self.stream.close()


def _is_norm_param(path) -> bool:
    """Whether a parameter-tree path is an instance normalisation's scale or shift (one per style in a
    conditional network)."""
    names = [str(getattr(k, "key", k)) for k in path]
    return names[-2].startswith("in") and names[-1] in ("scale", "bias")


def conditional_from(models: list, num: int):
    """Starting parameters of a ``num``-style conditional network from trained networks: one one-style
    network (its normalisation parameters given to every style), one conditional network of ``num`` styles,
    or ``num`` one-style networks (the convolutions of the first, each style's normalisation parameters
    from its own network)."""
    params = [p for p, _ in models]
    kinds = [num_styles(p) for p in params]
    if len(params) == 1 and kinds[0] == num:
        return params[0]
    if any(kinds) or len(params) not in (1, num):
        raise NSTError(f"a {num}-style network starts from one network, or from one one-style network per "
                       f"style ({num}), not from {len(params)} network(s) of "
                       f"{', '.join(str(k or 1) for k in kinds)} style(s)")

    def stacked(path, *leaves):
        if _is_norm_param(path):
            if len(leaves) == 1:
                return jnp.broadcast_to(leaves[0], (num,) + leaves[0].shape)
            return jnp.stack(leaves)
        return leaves[0]

    return jax.tree_util.tree_map_with_path(stacked, *params)


def one_style_of(params, meta: dict):
    """``(params, meta)`` of a one-style network: unchanged for one; for a conditional network whose style
    was chosen by name (``load_model("starry_night")`` of the shipped four-painting network), that style's
    normalisation parameters with the shared convolutions -- the same network as the conditional one
    painting that style alone."""
    if not num_styles(params):
        return params, meta
    style = meta.get("style")
    if style is None:
        raise NSTError(f"this network paints {num_styles(params)} styles; start a one-style network from one "
                       f"of them by name ({', '.join(model_styles(meta))}) or from a one-style network")
    index = model_styles(meta).index(style)

    return jax.tree_util.tree_map_with_path(lambda path, leaf: leaf[index] if _is_norm_param(path) else leaf,
                                            params), meta


# Johnson et al.'s schedule: Adam, learning rate 1e-3, batch 4, 40k steps (2 epochs of COCO)
TRAIN_CONFIG = TrainConfig(steps=40_000, batch_size=4, learning_rate=1e-3, lr_decay=0.0)


def train_fast(style, content, ckpt_dir, config: TrainConfig = TRAIN_CONFIG, *,
               content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
               tv_weight: float = TV_WEIGHT, content_layers=CONTENT_LAYERS, style_norm: str = "none",
               style_size: int | None = 512, crop: int = 256, resize: int = 256,
               resume: bool = False, init_from=None, exclude=(), weights=None, tfds_data_dir=None,
               cache_images: bool = False, distributed: bool = False,
               callback=None, log=None, **config_fields) -> dict:
    """Train a feed-forward network for one style (Johnson et al.'s recipe: Adam, learning rate 1e-3,
    batch 4, 256² crops, 40k steps = 2 epochs of COCO), or one conditional network for several.

    ``style``: a path or an ``(H, W, 3)`` array, or a list of paths (a conditional network, Dumoulin et al.
    2017: one set of instance-normalisation parameters per style); ``content``: an image folder,
    ``tfds:NAME[:SPLIT]`` or a source object.  Checkpoints, metrics, the loss curve and ``model.npz`` go to
    ``ckpt_dir``.  ``init_from``: a shipped model's name or a model ``.npz`` to start from (e.g. the
    previous session's network, or another style's network), with a fresh optimiser state; for a
    conditional network also one one-style network per style (see :func:`conditional_from`).  ``exclude``:
    glob patterns of file names left out of the content folder (held back for evaluation).
    ``style_norm="photos"``: the style term in units of the photos' own distance to the painting (use
    ``STYLE_WEIGHT_PHOTOS``).  ``cache_images``: keep every resized content photo in memory after its first
    read (the same batches, for an accelerator that trains faster than one thread decodes JPEGs).
    ``config``: the whole :class:`nst_jax.train.TrainConfig` (default :data:`TRAIN_CONFIG`); keyword
    arguments named as its fields (``steps=1000``) replace those fields.
    """
    from .data import open_source
    from .train import train, with_fields
    from .vgg import vgg19_params

    cfg = with_fields(config, config_fields)

    many = isinstance(style, (list, tuple))
    paths = list(style) if many else [style]
    if many and len(paths) < 2:
        raise NSTError("a conditional network needs at least two styles")
    images, names = [], []
    for s in paths:
        if isinstance(s, (str, os.PathLike)):  # a conditional network's styles are chosen by name: no spaces
            names.append(Path(s).stem.replace(" ", "_").replace("-", "_") if many else Path(s).stem)
            images.append(_image.load_image(s))
        else:
            names.append("style" if not many else f"style{len(names)}")
            images.append(s)
    init = None
    sources = [] if init_from is None else (list(init_from) if isinstance(init_from, (list, tuple))
                                            else [init_from])
    if sources:
        loaded = [load_model(m) for m in sources]
        if many:
            init = (conditional_from(loaded, len(paths)), loaded[0][1])
        elif len(loaded) > 1:
            raise NSTError("a one-style network starts from one network")
        else:
            init = one_style_of(*loaded[0])
    content_src = content if hasattr(content, "load") else open_source(content, tfds_data_dir, exclude)
    task = FastTask(vgg19_params(weights, log=log), images if many else images[0], content_src,
                    style_name=names if many else names[0], style_size=style_size, crop=crop, resize=resize,
                    content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                    content_layers=content_layers, style_norm=style_norm, batch_size=cfg.batch_size,
                    seed=cfg.seed, cache_images=cache_images)
    if len(sources) > 1:  # what the starting point was made of, beyond the first network's own record
        from .train import cumulative_record

        task.config["init_from"] = [{"model": str(m), "steps": cumulative_record(meta)["steps"]}
                                    for m, (_, meta) in zip(sources, loaded, strict=True)]
    return train(task, cfg, ckpt_dir, resume=resume, init=init, distributed=distributed, callback=callback,
                 log=log)


__all__ = ["FastTask", "InstanceNorm", "TransformNet", "apply_net", "apply_net_tiled", "conditional_from",
           "count_params", "stylize", "fast_stylize", "init_net", "instance_norm", "load_model",
           "model_styles", "num_styles", "one_style_of", "perceptual_loss", "photo_style_distance",
           "save_model", "shipped_models", "shipped_styles", "style_mix", "style_targets", "train_fast"]

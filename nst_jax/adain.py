"""AdaIN arbitrary style transfer (Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with
Adaptive Instance Normalization").

An encoder -- the VGG-19 of :mod:`nst_jax.vgg` up to relu4_1, frozen -- maps content and style images to
features; :func:`adain` gives the content features the style features' per-channel mean and standard
deviation; a trained :class:`Decoder` (flax.linen) maps the result back to an image.  One forward pass,
any style.

Pure functions here: :func:`mean_std`, :func:`adain`, :func:`encode`, :func:`adain_loss`.
:func:`stylize` is the NumPy-in/NumPy-out entry point with the paper's controls: ``alpha``
(content-style trade-off), style interpolation (``blend``), colour preservation and a spatial ``mask``.

Conventions (as naoto0804/pytorch-AdaIN, the reference implementation): ``eps = 1e-5`` is added to the
variance before the square root; the variance is the population variance over H x W (pytorch-AdaIN
uses the unbiased one; at relu4_1 of a 256-px crop, 1024 values per channel, they differ by 0.05%).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from . import nets
from .errors import NSTError
from .losses import mean_std
from .nets import count_params, flat_shapes, load_params, pad_to_multiple, save_params, upsample_nearest
from .runinfo import Event, emitter
from .runinfo import report as make_report
from .train import TrainConfig
from .vgg import vgg19_features

ENCODER_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
EPS = 1e-5
STYLE_WEIGHT = 10.0  # pytorch-AdaIN's default (the paper's lambda)
CONTENT_WEIGHT = 1.0
MULTIPLE = 8  # relu4_1 is after three 2x2 poolings: sides are padded to a multiple of 8
DECODER_FILE = Path(__file__).parent / "models" / "adain_decoder.npz"
CHANNEL_MEANS_FILE = Path(__file__).parent / "models" / "vgg19_channel_means.npz"
DECODER_FORMAT = "nst_jax-adain-decoder-v1"

__all__ = ["AdaINTask", "Decoder", "adain", "adain_loss", "reconstruction_loss", "stylize", "adain_stylize",
           "count_params", "decode",
           "encode", "init_decoder", "load_decoder", "mean_std", "save_decoder", "train_decoder"]


# --- pure functions ----------------------------------------------------------------------------------

def adain(content_features, style_features, eps: float = EPS):
    """Adaptive instance normalisation: ``sigma(y) * (x - mu(x)) / sigma(x) + mu(y)`` per image and channel.

    ``content_features`` ``(N, H, W, C)``; ``style_features`` ``(N, H', W', C)`` or ``(1, H', W', C)``.
    """
    c_mean, c_std = mean_std(content_features, eps)
    s_mean, s_std = mean_std(style_features, eps)
    normalised = (content_features - c_mean[:, None, None]) / c_std[:, None, None]
    return normalised * s_std[:, None, None] + s_mean[:, None, None]


def adain_moments(content_features, s_mean, s_std, eps: float = EPS):
    """:func:`adain` with the style given by its ``(N, C)`` moments (for interpolation and masks)."""
    c_mean, c_std = mean_std(content_features, eps)
    normalised = (content_features - c_mean[:, None, None]) / c_std[:, None, None]
    return normalised * s_std[:, None, None] + s_mean[:, None, None]


def _load_channel_means() -> dict[str, np.ndarray]:
    with np.load(CHANNEL_MEANS_FILE) as z:
        return {k: np.asarray(z[k], np.float32) for k in STYLE_LAYERS}


CHANNEL_MEANS = _load_channel_means()
"""Mean activation of each channel of relu1_1..relu4_1 over 950 ImageNet photos (one per class), for the
Caffe VGG-19 weights; written by ``experiments/vgg_channel_means.py``."""


def encode(vgg_params, images, layers=(ENCODER_LAYER,)):
    """Normalised VGG-19 features of ``images`` (NHWC RGB in [0, 1]) at ``layers`` (max pooling).

    Each channel is divided by its mean activation over ImageNet (:data:`CHANNEL_MEANS`), which makes
    these exactly the features of the "normalised" VGG-19 that the paper (and pytorch-AdaIN's
    ``vgg_normalised.pth``) uses: ReLU is positively homogeneous, so rescaling channels changes nothing
    but their scale.  This keeps every feature O(1) and the paper's loss weights meaningful.
    """
    feats = vgg19_features(vgg_params, images, layers, pool="max")
    return {k: v / CHANNEL_MEANS[k] for k, v in feats.items()}


# --- decoder -------------------------------------------------------------------------------------------

class Conv3x3(nn.Module):
    """A 3x3 convolution on an already padded input (``VALID``, :func:`nst_jax.nets.valid_conv`: XLA:CPU's
    fast path), with ``nn.Conv``'s parameters and init."""
    features: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return nets.valid_conv(x, kernel) + bias


class ReflectConv(nn.Module):
    """3x3 convolution with reflection padding (as the paper, to avoid border artefacts)."""
    features: int

    @nn.compact
    def __call__(self, x):
        return Conv3x3(self.features, name="Conv_0")(nets.reflect_pad(x, 1))


DECODER_PLAN = (  # (name, output channels), "up" = 2x nearest-neighbour upsampling; mirrors VGG-19
    ("conv4_1", 256), "up",
    ("conv3_4", 256), ("conv3_3", 256), ("conv3_2", 256), ("conv3_1", 128), "up",
    ("conv2_2", 128), ("conv2_1", 64), "up",
    ("conv1_2", 64), ("conv1_1", 3),
)


class Decoder(nn.Module):
    """Mirror of the VGG-19 encoder up to relu4_1: 3x3 reflection-padded convolutions with ReLU, pooling
    replaced by nearest-neighbour upsampling, no normalisation; the last convolution is linear and gives
    RGB in [0, 1] (unclipped while training).  Parameter names are the encoder layers they mirror."""

    @nn.compact
    def __call__(self, t):
        x = t
        last = DECODER_PLAN[-1][0]
        for item in DECODER_PLAN:
            if item == "up":
                x = upsample_nearest(x)
                continue
            name, features = item
            x = ReflectConv(features, name=name)(x)
            if name != last:
                x = nn.relu(x)
        return x


DECODER = Decoder()


def init_decoder(key, channels: int = 512):
    return DECODER.init(key, jnp.zeros((1, 8, 8, channels), jnp.float32))["params"]


def decode(decoder_params, t):
    return DECODER.apply({"params": decoder_params}, t)


# --- training objective --------------------------------------------------------------------------------

def adain_loss(decoder_params, vgg_params, content, style, style_weight: float = STYLE_WEIGHT,
               content_weight: float = CONTENT_WEIGHT):
    """The paper's training loss for a batch of ``content`` and ``style`` images (NHWC, [0, 1]).

    ``t = AdaIN(f(c), f(s))``; ``g = decoder(t)``; content loss = MSE(f(g), t) at relu4_1; style loss =
    sum over relu1_1..relu4_1 of MSE(mu(phi(g)), mu(phi(s))) + MSE(sigma(phi(g)), sigma(phi(s))).
    Returns ``(total, {"content": ..., "style": ...})``.
    """
    content_f = encode(vgg_params, content)[ENCODER_LAYER]
    style_f = encode(vgg_params, style, STYLE_LAYERS)
    t = jax.lax.stop_gradient(adain(content_f, style_f[ENCODER_LAYER]))
    g = decode(decoder_params, t)
    g_f = encode(vgg_params, g, STYLE_LAYERS)
    loss_c = jnp.mean((g_f[ENCODER_LAYER] - t) ** 2)
    loss_s = 0.0
    for name in STYLE_LAYERS:
        gm, gs = mean_std(g_f[name], EPS)
        sm, ss = mean_std(jax.lax.stop_gradient(style_f[name]), EPS)
        loss_s = loss_s + jnp.mean((gm - sm) ** 2) + jnp.mean((gs - ss) ** 2)
    return content_weight * loss_c + style_weight * loss_s, {"content": loss_c, "style": loss_s}


def reconstruction_loss(decoder_params, vgg_params, content):
    """A warm-up objective for the decoder: reconstruct the photo from its own features,
    ``mean((decoder(f(c)) - c)^2)`` on pixels in [0, 1] (as the decoders of Li et al. 2017, "Universal Style
    Transfer via Feature Transforms", are trained, without their feature term).  No style images, and no
    backward pass through the encoder: about half the work of an :func:`adain_loss` step.  Returns
    ``(loss, {"pixel": loss})``."""
    t = jax.lax.stop_gradient(encode(vgg_params, content)[ENCODER_LAYER])
    g = decode(decoder_params, t)
    loss = jnp.mean((g - content) ** 2)
    return loss, {"pixel": loss}


# --- decoder files -------------------------------------------------------------------------------------

def save_decoder(path: str | os.PathLike, decoder_params, meta: dict | None = None,
                 dtype=np.float16) -> Path:
    """Write decoder parameters as an ``.npz`` (float16 by default), atomically."""
    return save_params(path, decoder_params, DECODER_FORMAT, meta, dtype)


def load_decoder(path: str | os.PathLike | None = None):
    """Decoder parameters (float32) from an ``.npz`` written by :func:`save_decoder`; ``None`` for the
    decoder shipped with the package.  Returns ``(params, meta)``."""
    path = DECODER_FILE if path is None else Path(path).expanduser()
    if not path.exists():
        if path == DECODER_FILE:
            raise NSTError(f"the shipped AdaIN decoder {path} is missing from this installation")
        raise NSTError(f"decoder file {path} does not exist")
    expected = flat_shapes(lambda: init_decoder(jax.random.key(0)))
    return load_params(path, DECODER_FORMAT, expected, "AdaIN decoder", "nst-jax train adain")


# --- inference -----------------------------------------------------------------------------------------

def _pad_to_multiple(x, multiple: int = MULTIPLE):
    return pad_to_multiple(x, multiple)


@jax.jit
def _style_moments(vgg_params, style):
    f = encode(vgg_params, _pad_to_multiple(style))[ENCODER_LAYER]
    return mean_std(f, EPS)


@jax.jit
def _transfer(vgg_params, decoder_params, content, s_mean, s_std, alpha, mask):
    """content (1, H, W, 3); s_mean/s_std (K, C); alpha scalar; mask (K, h, w) weights over the feature
    map (summing to 1 over K).  Returns the decoded image cropped back to H x W (unclipped)."""
    h, w = content.shape[1:3]
    f = encode(vgg_params, _pad_to_multiple(content))[ENCODER_LAYER]  # (1, h', w', C)
    targets = jax.vmap(lambda m, s: adain_moments(f, m[None], s[None])[0])(s_mean, s_std)  # (K, h', w', C)
    t = jnp.sum(targets * mask[..., None], axis=0)[None]
    t = alpha * t + (1.0 - alpha) * f
    return decode(decoder_params, t)[:, :h, :w]


# --- tiled inference (nst_jax.tiling): the same result, a band of rows at a time ----------------------

ENCODER_HALO = 64  # px above and below a band: VGG-19 up to relu4_1 sees 37 px around a pixel
DECODER_HALO = 8  # feature rows (64 px): the decoder sees about 2.4 feature rows around one
BYTES_PER_PIXEL = 1100  # whole-image peak: 4.87 GB at 2048 x 2048 on XLA:CPU (BENCHMARKS.md)
FIXED_BYTES = 700 << 20  # Python, JAX, both networks' weights
TILE_PIXELS = 2 << 20  # auto band height: about this many pixels per band


@jax.jit
def _encode_band(vgg_params, x):
    return encode(vgg_params, x)[ENCODER_LAYER]


@jax.jit
def _adain_targets(f, s_mean, s_std, alpha, mask):
    targets = jax.vmap(lambda m, s: adain_moments(f, m[None], s[None])[0])(s_mean, s_std)
    t = jnp.sum(targets * mask[..., None], axis=0)[None]
    return alpha * t + (1.0 - alpha) * f


_decode_band = jax.jit(decode)


def _transfer_tiled(vgg_params, decoder_params, content, s_mean, s_std, alpha, mask, band: int):
    """:func:`_transfer` a band of ``band`` rows at a time: the encoder's features band by band (each from
    its rows and a halo), the content moments and AdaIN targets over the whole feature map, then the
    decoder band by band.  Every band's own rows are exact: equal to the whole image's."""
    from .tiling import bands

    h, w = content.shape[1:3]
    x = np.asarray(_pad_to_multiple(jnp.asarray(content)))
    band = max(MULTIPLE, band // MULTIPLE * MULTIPLE)
    feats = []
    for start, stop, lo, hi in bands(x.shape[1], band, ENCODER_HALO, MULTIPLE):
        f = np.asarray(_encode_band(vgg_params, jnp.asarray(x[:, lo:hi])))
        feats.append(f[:, (start - lo) // MULTIPLE:(stop - lo) // MULTIPLE])
    t = np.asarray(_adain_targets(jnp.asarray(np.concatenate(feats, axis=1)), s_mean, s_std, alpha, mask))
    del feats
    out = []
    for start, stop, lo, hi in bands(t.shape[1], band // MULTIPLE, DECODER_HALO):
        g = np.asarray(_decode_band(decoder_params, jnp.asarray(t[:, lo:hi])))
        out.append(g[:, (start - lo) * MULTIPLE:(stop - lo) * MULTIPLE])
    return np.concatenate(out, axis=1)[:, :h, :w]


def stylize(content, styles, *, alpha: float = 1.0, style_blend: Sequence[float] | None = None,
            mask=None, preserve_color: str | None = None, size: int | None = 512,
            style_size: int | None = 512, decoder=None, weights=None, tile="auto", devices=None,
            callback: Callable[[Event], None] | None = None):
    """Stylise one image with AdaIN.

    Args:
      content: ``(H, W, 3)`` float RGB in [0, 1].
      styles: one ``(H, W, 3)`` style image or a list of them.
      alpha: content-style trade-off in [0, 1]: the decoder sees ``alpha * AdaIN(f(c), f(s)) +
        (1 - alpha) * f(c)``; 0 reconstructs the content through the decoder.
      style_blend: style interpolation weights, one per style (normalised to sum 1; default equal).  The
        styles' feature moments are mixed as in the paper (a convex combination of the AdaIN targets).
      mask: spatial control, an ``(H, W)`` array in [0, 1] (values > 0.5 are inside) with exactly two
        styles: the first is applied inside the mask, the second outside.
      preserve_color: ``"histogram"`` (CORAL: each style image recoloured to the content's colour
        statistics before encoding, as pytorch-AdaIN's ``--preserve_color``) or ``"luminance"`` (the
        result's luminance with the content's chroma).
      size, style_size: longest side in px for the content (the output size) and the styles; ``None``
        keeps the original size.
      decoder: decoder params, a path to a decoder ``.npz``, or ``None`` for the shipped decoder.
      weights: VGG-19 params or weights file (default: the fetched ImageNet weights).
      tile: ``"auto"`` (a band of rows at a time when the whole image would not fit in the memory
        available), ``"none"``, or a band height in px; tiled results equal the whole image's
        (:mod:`nst_jax.tiling`).
      devices: N or ``"all"``: the content split by rows across N devices instead
        (:func:`nst_jax.tiling.row_sharding`; its height after resizing must be a multiple of N).
      callback: receives an :class:`nst_jax.runinfo.Event` per stage (``str(event)``: a short message).

    Returns:
      ``(image, report)``: ``(H, W, 3)`` float32 in [0, 1] and the report every method returns
      (:func:`nst_jax.runinfo.report`).
    """
    import time

    from .vgg import vgg19_params

    t0 = time.perf_counter()
    say = emitter("adain", callback)
    styles = [styles] if isinstance(styles, np.ndarray) and styles.ndim == 3 else list(styles)
    if not styles:
        raise NSTError("at least one style image is needed")
    if not 0.0 <= float(alpha) <= 1.0:
        raise NSTError(f"alpha must be in [0, 1], not {alpha}")
    k = len(styles)
    blend = [1.0 / k] * k if style_blend is None else [float(b) for b in style_blend]
    if len(blend) != k:
        raise NSTError(f"{len(blend)} blend weights for {k} style images")
    if any(b < 0 for b in blend) or sum(blend) <= 0:
        raise NSTError("blend weights must be non-negative and not all zero")
    blend = [b / sum(blend) for b in blend]
    if mask is not None and k != 2:
        raise NSTError(f"a mask needs exactly two style images (inside, outside), got {k}")
    _image.check_preserve_color(preserve_color)
    from .tiling import needs_tiling, parse_tile, replicate, row_sharding, shard_rows, to_host

    tile = parse_tile(tile)
    rows = row_sharding(devices)

    content = _image.resize_longest(np.asarray(content, np.float32), size)
    if min(content.shape[:2]) < MULTIPLE:
        raise NSTError(f"content image {content.shape[0]}x{content.shape[1]} is too small: both sides must "
                       f"be at least {MULTIPLE} px")
    styles = [_image.resize_longest(np.asarray(s, np.float32), style_size) for s in styles]
    for s in styles:
        if min(s.shape[:2]) < MULTIPLE:
            raise NSTError(f"style image {s.shape[0]}x{s.shape[1]} is too small: both sides must be at "
                           f"least {MULTIPLE} px")
    styles = _image.preserve_color(preserve_color, content, styles=styles)

    say("loading networks")
    vgg_params = weights if isinstance(weights, dict) else vgg19_params(weights)
    decoder_params = decoder if isinstance(decoder, dict) else load_decoder(decoder)[0]

    t1 = time.perf_counter()
    say("encoding styles")
    moments = [_style_moments(vgg_params, jnp.asarray(s)[None]) for s in styles]
    s_mean = jnp.concatenate([m for m, _ in moments])
    s_std = jnp.concatenate([s for _, s in moments])

    h, w = content.shape[:2]
    fh, fw = -(-h // MULTIPLE), -(-w // MULTIPLE)
    if mask is None:
        mix = np.broadcast_to(np.asarray(blend, np.float32)[:, None, None], (k, fh, fw))
    else:
        m = np.asarray(mask, np.float32)
        if m.ndim == 3:
            m = m.mean(-1)
        if m.ndim != 2:
            raise NSTError(f"mask must be a 2-D (grey) image, got shape {m.shape}")
        m = _image.resize(m[..., None], (fh, fw))[..., 0]  # pytorch-AdaIN: mask resized to the feature map
        inside = (m > 0.5).astype(np.float32)
        mix = np.stack([inside, 1.0 - inside])
    band = None
    if rows is None and needs_tiling(tile, h * w, BYTES_PER_PIXEL, FIXED_BYTES):
        band = tile if isinstance(tile, int) else max(256, -(-TILE_PIXELS // w))
        band = band if band < h else None
    if rows is not None:
        say(f"stylising across {rows.mesh.size} devices")
        out = _transfer(*replicate((vgg_params, decoder_params), rows), shard_rows(content[None], rows),
                        *replicate((s_mean, s_std, jnp.float32(alpha), jnp.asarray(mix)), rows))
    elif band is None:
        say("stylising")
        out = _transfer(vgg_params, decoder_params, jnp.asarray(content)[None], s_mean, s_std,
                        jnp.float32(alpha), jnp.asarray(mix))
    else:
        say(f"stylising in bands of {band} rows")
        out = _transfer_tiled(vgg_params, decoder_params, content[None], s_mean, s_std, jnp.float32(alpha),
                              jnp.asarray(mix), band)
    out = np.clip(to_host(out)[0], 0.0, 1.0)
    t2 = time.perf_counter()
    out = _image.preserve_color(preserve_color, content, stylised=out)
    report = make_report("adain", t0, {"load": t1 - t0, "stylise": t2 - t1}, (h, w),
                         1 if rows is None else rows.mesh.size, band, preserve_color,
                         styles=k, alpha=float(alpha), style_blend=blend, mask=mask is not None)
    return out.astype(np.float32), report


adain_stylize = stylize  # the name before the three methods had parallel entry points


# --- training task (for nst_jax.train.train) -----------------------------------------------------------

OBJECTIVES = ("adain", "reconstruction")


class AdaINTask:
    """Train an AdaIN decoder: content and style images from two sources (see :mod:`nst_jax.data`).

    ``objective="adain"`` is the paper's loss (:func:`adain_loss`); ``"reconstruction"`` the cheaper warm-up
    (:func:`reconstruction_loss`, no style images: ``style_source`` may be ``None``)."""

    name = "adain"
    export_name = "decoder.npz"

    def __init__(self, vgg_params, content_source, style_source, *, crop: int = 256, resize: int = 512,
                 style_weight: float = STYLE_WEIGHT, content_weight: float = CONTENT_WEIGHT,
                 batch_size: int = 8, seed: int = 0, prefetch: int = 2, objective: str = "adain",
                 cache_images: bool = False):
        from .data import check_crop

        check_crop(crop, resize)
        if objective not in OBJECTIVES:
            raise NSTError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        if objective == "adain" and style_source is None:
            raise NSTError("training with the AdaIN objective needs style images (--style-dir)")
        self.objective = objective
        self.frozen = vgg_params
        self.content_source, self.style_source = content_source, style_source
        self.crop, self.resize, self.batch_size = crop, resize, batch_size
        self.seed, self.prefetch, self.cache_images = seed, prefetch, cache_images
        self.style_weight, self.content_weight = float(style_weight), float(content_weight)
        self.config = {"crop": crop, "resize": resize, "style_weight": self.style_weight,
                       "content_weight": self.content_weight, "content": content_source.name,
                       "style": None if style_source is None else style_source.name}
        if objective != "adain":  # older checkpoints have no such key
            self.config["objective"] = objective
        excluded = sorted(set(getattr(content_source, "excluded", []))
                          | set(getattr(style_source, "excluded", [])))
        if excluded:  # older checkpoints have no such key: only present when something was held back
            self.config["excluded"] = excluded

    def init(self, key):
        return init_decoder(key)

    def loss(self, params, frozen, batch):
        if self.objective == "reconstruction":
            return reconstruction_loss(params, frozen, batch["content"])
        return adain_loss(params, frozen, batch["content"], batch["style"], self.style_weight,
                          self.content_weight)

    def batches(self, start_step: int, shard):
        from .data import Batches

        # different seeds so that content and style orders are independent
        content = Batches(self.content_source, self.batch_size, self.crop, self.resize, seed=self.seed,
                          start_step=start_step, shard=shard, prefetch=self.prefetch, cache=self.cache_images)
        if self.objective == "reconstruction":
            return _Zip(content=content)
        style = Batches(self.style_source, self.batch_size, self.crop, self.resize, seed=self.seed + 1,
                        start_step=start_step, shard=shard, prefetch=self.prefetch, cache=True)
        return _Zip(content=content, style=style)

    def export(self, params, path, meta):
        save_decoder(path, params, meta)


class _Zip:
    def __init__(self, **streams):
        self.streams = streams

    def __iter__(self):
        return self

    def __next__(self):
        return {k: next(s) for k, s in self.streams.items()}

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.streams.values())

    def close(self):
        for s in self.streams.values():
            s.close()


# the paper's schedule: Adam, lr 1e-4 with inverse-time decay 5e-5, batch 8, 160k steps
TRAIN_CONFIG = TrainConfig(steps=160_000, batch_size=8, learning_rate=1e-4, lr_decay=5e-5)


def train_decoder(content, style, ckpt_dir, config: TrainConfig = TRAIN_CONFIG, *,
                  style_weight: float = STYLE_WEIGHT, content_weight: float = CONTENT_WEIGHT,
                  objective: str = "adain", crop: int = 256, resize: int = 512,
                  resume: bool = False, init_from=None, exclude=(), weights=None,
                  tfds_data_dir=None, cache_images: bool = False,
                  distributed: bool = False, callback=None, log=None, **config_fields) -> dict:
    """Train an AdaIN decoder with the paper's recipe (Adam, lr 1e-4 with inverse-time decay 5e-5, batch
    8, shorter side 512 then random 256 crops, style weight 10; 160k steps on COCO + WikiArt).

    ``content`` / ``style``: an image folder, ``tfds:NAME[:SPLIT]``, or a source object (see
    :mod:`nst_jax.data`).  Checkpoints, metrics, the loss curve and ``decoder.npz`` go to ``ckpt_dir``.
    ``init_from``: a decoder ``.npz`` to start from (``"shipped"``: the package's decoder), with a fresh
    optimiser state; the exported decoder's ``cumulative`` record continues the starting one's.
    ``exclude``: glob patterns of file names left out of both image folders (held back for evaluation).
    ``objective="reconstruction"``: the warm-up of :func:`reconstruction_loss` (``style`` may be ``None``).
    ``cache_images``: keep every resized content photo in memory after its first read (the same batches;
    for an accelerator that trains faster than one thread decodes JPEGs).
    ``config``: the whole :class:`nst_jax.train.TrainConfig` (default :data:`TRAIN_CONFIG`); keyword
    arguments named as its fields (``steps=1000``) replace those fields.
    """
    from .data import open_source
    from .train import train, with_fields
    from .vgg import vgg19_params

    cfg = with_fields(config, config_fields)

    init = None if init_from is None else load_decoder(None if str(init_from) == "shipped" else init_from)
    content_src = content if hasattr(content, "load") else open_source(content, tfds_data_dir, exclude)
    style_src = (style if style is None or hasattr(style, "load")
                 else open_source(style, tfds_data_dir, exclude))
    task = AdaINTask(vgg19_params(weights, log=log), content_src, style_src, crop=crop, resize=resize,
                     style_weight=style_weight, content_weight=content_weight, batch_size=cfg.batch_size,
                     seed=cfg.seed, objective=objective, cache_images=cache_images)
    return train(task, cfg, ckpt_dir, resume=resume, init=init, distributed=distributed, callback=callback,
                 log=log)

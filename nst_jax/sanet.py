"""SANet: arbitrary style transfer with style-attentional networks (Park & Lee 2019, "Arbitrary Style
Transfer with Style-Attentional Networks", CVPR).

AdaIN gives every position of the photo the painting's global feature statistics; SANet lets each position
take the style of the painting's positions it resembles.  The model:

* the normalised VGG-19 encoder (:func:`nst_jax.adain.encode`, frozen) to relu4_1 and relu5_1;
* a style-attentional module at each of the two layers (:func:`attention`): 1x1 projections ``f`` of the
  mean-variance-normalised content features and ``g`` of the normalised style features, the softmax over
  style positions of their products (each content position's attention over the painting), the attention
  applied to a third projection ``h`` of the (unnormalised) style features, a 1x1 output projection and the
  residual content features;
* relu5_1's result upsampled (nearest, x2) and added to relu4_1's, and a 3x3 merge convolution after
  reflection padding (:func:`transform`);
* AdaIN's decoder (:class:`nst_jax.modules.Decoder`) from the merged features to the picture.

Pure functions (:func:`mean_variance_norm`, :func:`attention`, :func:`transform`, :func:`encode_pair`) and
:func:`stylize` on the run contract of :mod:`nst_jax.run`: ``alpha`` (the transform of the photo by the
painting against the transform of the photo by itself, which the identity loss trains to give the photo
back), style interpolation, a mask (a style per region, as AdaIN's), colour preservation, any size (the
attention computed in blocks of content positions, exact: every content position's softmax is over all
style positions), bands and devices.  Training (the paper's loss with its identity terms) is in
:mod:`nst_jax.sanet_train`.

The attention is (content positions) x (style positions): at relu4_1 a 512-px photo and a 512-px painting
give 4,096 x 4,096 weights (64 MB); a 4096-px photo 262,144 x 4,096 (4.3 GB).  As many content positions at
a time as keep a block's weights within :data:`ATTENTION_BYTES` (64 MB) bound it whatever the photo's and the
painting's sizes.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from . import nets
from .compile_cache import stored
from .config import with_fields
from .decoder import (
    DECODER_HALO,
    NORMALISED_LAYERS,
    STYLIZE_CONFIG,
    StylizeConfig,
    decode,
    decode_band,
    encode,
    init_decoder,
    prepare_styles,
    style_weights,
    upsampling,
)
from .errors import NSTError
from .losses import mean_std
from .nets import flat_shapes, load_params, pad_to_multiple, reflect_pad, save_params, upsample_nearest
from .run import Job, Method, Placement, collect, run_pictures
from .runinfo import Event, emitter
from .tiling import Footprint, bands, replicate, shard_rows, to_host
from .vgg import vgg19_params

ENCODER_LAYERS = ("relu4_1", "relu5_1")
STYLE_LAYERS = NORMALISED_LAYERS  # relu1_1 .. relu5_1: the paper's style and identity terms
EPS = 1e-5
CHANNELS = 512
MULTIPLE = 16  # relu5_1 is after four 2x2 poolings: sides are padded to a multiple of 16
ATTENTION_BYTES = 64 << 20  # the attention's weights per block of content positions (float32)
MODEL_FILE = Path(__file__).parent / "models" / "sanet.npz"
MODEL_FORMAT = "nst_jax-sanet-v1"
MODULES = ("sanet4_1", "sanet5_1")
PROJECTIONS = ("f", "g", "h", "out")

__all__ = ["STYLIZE_CONFIG", "SANet", "StylizeConfig", "attention", "encode_pair", "init_params",
           "init_transform", "load_model", "mean_variance_norm", "save_model", "stylize", "stylize_many",
           "transform"]


# --- pure functions ----------------------------------------------------------------------------------

def mean_variance_norm(f, eps: float = EPS):
    """Each image's channels of NHWC ``f`` normalised over its positions: ``(f - mean) / sqrt(var + eps)``
    (population variance, as :func:`nst_jax.losses.mean_std`)."""
    mean, std = mean_std(f, eps)
    return (f - mean[:, None, None]) / std[:, None, None]


def _project(p, x):
    """A 1x1 convolution: ``x @ kernel + bias`` over the last axis (``kernel`` is (C_in, C_out))."""
    return x @ p["kernel"] + p["bias"]


def _attend(q, k, v, block: int | None):
    """``softmax(q k^T) v`` per image, the softmax over the style positions: q (N, P, C), k and v (N, S, C).
    ``block``: content positions at a time (``None``: as many as keep a block's weights within
    :data:`ATTENTION_BYTES`); exact whatever the block, each content position's row of weights depends on it
    alone."""
    n, p, c = q.shape
    if block is None:
        block = max(64, ATTENTION_BYTES // (4 * n * k.shape[1]))

    def rows(qi):
        return jax.nn.softmax(qi @ jnp.swapaxes(k, 1, 2), axis=-1) @ v

    if p <= block:
        return rows(q)
    nb = -(-p // block)
    qb = jnp.pad(q, ((0, 0), (0, nb * block - p), (0, 0))).reshape(n, nb, block, c)
    out = jax.lax.map(rows, jnp.swapaxes(qb, 0, 1))  # (nb, N, block, C)
    return jnp.swapaxes(out, 0, 1).reshape(n, nb * block, v.shape[-1])[:, :p]


def attention(params, content, style, block: int | None = None):
    """One style-attentional module on NHWC features ``content`` (N, h, w, C) and ``style`` (N or 1, h', w',
    C): ``out(softmax(f(norm(c)) g(norm(s))^T) h(s)) + c``, ``norm`` :func:`mean_variance_norm`, the softmax
    over the style positions.  ``params``: ``{"f", "g", "h", "out"}``, each ``{"kernel": (C, C), "bias":
    (C,)}``; ``block``: content positions at a time (:func:`_attend`; default: within 64 MB)."""
    n, h, w, c = content.shape
    style = jnp.broadcast_to(style, (n,) + style.shape[1:])
    q = _project(params["f"], mean_variance_norm(content)).reshape(n, h * w, c)
    k = _project(params["g"], mean_variance_norm(style)).reshape(n, -1, c)
    v = _project(params["h"], style).reshape(n, -1, c)
    o = _project(params["out"], _attend(q, k, v, block))
    return o.reshape(n, h, w, c) + content


def transform(params, content4, style4, content5, style5, block: int | None = None):
    """The transform between encoder and decoder: the attention modules at relu4_1 and relu5_1, relu5_1's
    result upsampled x2 (nearest) and added to relu4_1's, then the 3x3 merge convolution (reflection padded).
    Features NHWC, relu5_1's at half relu4_1's size."""
    o4 = attention(params["sanet4_1"], content4, style4, block)
    o5 = attention(params["sanet5_1"], content5, style5, block)
    x = reflect_pad(o4 + upsample_nearest(o5), 1)
    return nets.valid_conv(x, params["merge"]["kernel"]) + params["merge"]["bias"]


def encode_pair(vgg_params, images, layers=ENCODER_LAYERS, dtype=jnp.float32):
    """The normalised encoder's features of NHWC ``images`` at ``layers`` (default relu4_1 and relu5_1)."""
    return encode(vgg_params, images, tuple(layers), dtype=dtype)


# --- parameters and files ----------------------------------------------------------------------------

def init_transform(key, channels: int = CHANNELS):
    """The transform's parameters, initialised so that the untrained transform passes the content through:
    ``f``, ``g``, ``h`` LeCun-normal, every output projection zero (each module returns its content features:
    the residual), the merge convolution the identity at its centre tap.  The decoder it feeds starts as the
    AdaIN decoder (same architecture)."""
    keys = iter(jax.random.split(key, 2 * len(PROJECTIONS)))
    init = jax.nn.initializers.lecun_normal()
    params = {}
    for m in MODULES:
        params[m] = {p: {"kernel": (jnp.zeros((channels, channels)) if p == "out"
                                    else init(next(keys), (channels, channels))),
                         "bias": jnp.zeros((channels,))} for p in PROJECTIONS}
    merge = jnp.zeros((3, 3, channels, channels)).at[1, 1].set(jnp.eye(channels))
    params["merge"] = {"kernel": merge, "bias": jnp.zeros((channels,))}
    return params


def init_params(key, decoder=None):
    """``{"transform": ..., "decoder": ...}``: a new transform and ``decoder`` (AdaIN decoder parameters, e.g.
    the shipped one's) or a new decoder."""
    k1, k2 = jax.random.split(key)
    return {"transform": init_transform(k1), "decoder": init_decoder(k2) if decoder is None else decoder}


def save_model(path: str | os.PathLike, params, meta: dict | None = None, dtype=np.float16) -> Path:
    """Write a SANet's transform and decoder as one ``.npz`` (float16 by default), atomically."""
    return save_params(path, params, MODEL_FORMAT, meta, dtype)


def load_model(path: str | os.PathLike | None = None):
    """``(params, meta)`` of a SANet written by :func:`save_model` (``None``: the one shipped with the
    package); the decoder's upsampling is ``meta``'s (:func:`nst_jax.adain.upsampling`)."""
    path = MODEL_FILE if path is None else Path(path).expanduser()
    if not path.exists():
        if path == MODEL_FILE:
            raise NSTError(f"no SANet is shipped in this installation ({path}); train one with "
                           "`nst-jax train sanet` and give it with --model")
        raise NSTError(f"SANet model file {path} does not exist")
    expected = flat_shapes(lambda: init_params(jax.random.key(0)), "sanet")
    params, meta = load_params(path, MODEL_FORMAT, expected, "SANet", "nst-jax train sanet")
    if upsampling(meta) not in nets.UPSAMPLINGS:
        raise NSTError(f"{path} asks for an upsampling this version does not have: {upsampling(meta)!r}")
    return params, meta


# --- inference -----------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames="dtype")
def _style_features(vgg_params, style, dtype=jnp.float32):
    # not padded: a padded painting's reflected rows would be positions to attend to
    return encode_pair(vgg_params, style, dtype=dtype)


def _decoder_input(params, f4, f5, styles, alpha, mix, identity: bool):
    """The decoder's input for content features ``f4``/``f5`` (N, h, w, C) / (N, h/2, w/2, C): the transform
    by each style (``styles``: per style its relu4_1 and relu5_1 features, batch 1 or N), mixed over the
    feature map by ``mix`` (K, h, w; summing to 1 over K); with ``identity``, ``alpha`` of the way from the
    transform of the photo by itself (without, ``alpha`` is 1)."""
    t = sum(mix[k][None, :, :, None] * transform(params, f4, s4, f5, s5) for k, (s4, s5) in enumerate(styles))
    if not identity:
        return t
    return alpha * t + (1.0 - alpha) * transform(params, f4, f4, f5, f5)


@partial(jax.jit, static_argnames=("identity", "dtype", "upsample"))
def _transfer(vgg_params, params, content, styles, alpha, mix, identity=False, dtype=jnp.float32,
              upsample="nearest"):
    """content (N, H, W, 3) -> the decoded images cropped back to H x W (unclipped)."""
    h, w = content.shape[1:3]
    f = encode_pair(vgg_params, pad_to_multiple(content, MULTIPLE), dtype=dtype)
    t = _decoder_input(params["transform"], f["relu4_1"], f["relu5_1"], styles, alpha, mix, identity)
    return decode(params["decoder"], t, dtype, upsample)[:, :h, :w]


# tiled inference: the encoder a band of rows at a time, the transform over the whole feature maps (its
# normalisation is over every position; its attention in blocks), the decoder a band of rows at a time
ENCODER_HALO = 128  # px above and below a band: a relu5_1 row sees 70 px above and 85 below its own 16
# the encoder and decoder as AdaIN's (1100 bytes a pixel); the transform's maps at relu4_1 (512 channels
# at 1/64 of the pixels, about ten of them), held whole in bands; measured whole: 5.2 GB at 2048 x 1535
FOOTPRINT = Footprint(per_pixel=1100, held=300, fixed=900 << 20)


@partial(jax.jit, static_argnames="dtype")
def _encode_band(vgg_params, x, dtype=jnp.float32):
    return encode_pair(vgg_params, x, dtype=dtype)


_decoder_input_jit = jax.jit(_decoder_input, static_argnames="identity")
# one device: the programs of a picture, loaded whole by a later process
_style_features_stored = stored(_style_features, "sanet_style_features", static_argnames=("dtype",))
_transfer_stored = stored(_transfer, "sanet_transfer", static_argnames=("identity", "dtype", "upsample"))


def _transfer_tiled(vgg_params, params, content, styles, alpha, mix, band: int, identity=False,
                    dtype=jnp.float32, upsample="nearest"):
    """:func:`_transfer` a band of ``band`` rows at a time through the encoder and the decoder; every band's
    own rows equal the whole image's."""
    h, w = content.shape[1:3]
    x = np.asarray(pad_to_multiple(jnp.asarray(content), MULTIPLE))
    band = max(MULTIPLE, band // MULTIPLE * MULTIPLE)
    f4, f5 = [], []
    for start, stop, lo, hi in bands(x.shape[1], band, ENCODER_HALO, MULTIPLE):
        f = _encode_band(vgg_params, jnp.asarray(x[:, lo:hi]), dtype=dtype)
        f4.append(np.asarray(f["relu4_1"])[:, (start - lo) // 8:(stop - lo) // 8])
        f5.append(np.asarray(f["relu5_1"])[:, (start - lo) // 16:(stop - lo) // 16])
    t = np.asarray(_decoder_input_jit(params["transform"], jnp.asarray(np.concatenate(f4, axis=1)),
                                      jnp.asarray(np.concatenate(f5, axis=1)), styles, alpha, mix,
                                      identity=identity))
    del f4, f5
    out = []
    for start, stop, lo, hi in bands(t.shape[1], band // 8, DECODER_HALO):
        g = np.asarray(decode_band(params["decoder"], jnp.asarray(t[:, lo:hi]), dtype, upsample))
        out.append(g[:, (start - lo) * 8:(stop - lo) * 8])
    return np.concatenate(out, axis=1)[:, :h, :w]


class SANet(Method):
    """SANet on the run contract (:mod:`nst_jax.run`): the styles, mask and settings shared by its pictures,
    the networks loaded once and the styles' features computed once (per content with ``preserve_color=
    "histogram"``)."""

    name = "sanet"
    footprint = FOOTPRINT
    halo = ENCODER_HALO
    align = MULTIPLE

    def __init__(self, styles, config: StylizeConfig = STYLIZE_CONFIG, *, mask=None, model=None,
                 weights=None, callback: Callable[[Event], None] | None = None, **settings):
        self.started = t0 = time.perf_counter()
        self.conf = conf = with_fields(config, settings, "stylize setting")
        self.say = emitter("sanet", callback)
        self.styles, self.blend, self.mask = prepare_styles(styles, mask, conf, MULTIPLE)
        self.tile, self.devices, self.preserve_color = conf.tile, conf.devices, conf.preserve_color
        self.dtype = jnp.dtype(conf.dtype)
        self.say("loading networks")
        self.vgg = weights if isinstance(weights, dict) else vgg19_params(weights, upto=ENCODER_LAYERS)
        self.params, meta = model if isinstance(model, tuple) else \
            (model, {}) if isinstance(model, dict) else load_model(model)
        self.upsample = upsampling(meta)
        self.load_seconds = time.perf_counter() - t0
        self._shared = None

    def style_features(self, content):
        """Per style its relu4_1 and relu5_1 features (batch 1), recoloured to ``content`` first if asked."""
        if self.preserve_color != "histogram" and self._shared is not None:
            return self._shared
        feats = [_style_features_stored(self.vgg, np.asarray(s, np.float32)[None], dtype=self.dtype)
                 for s in _image.preserve_color(self.preserve_color, content, styles=self.styles)]
        out = tuple((f["relu4_1"], f["relu5_1"]) for f in feats)
        if self.preserve_color != "histogram":
            self._shared = out
        return out

    def prepare(self, index: int, content) -> Job:
        c = _image.resize_longest(np.asarray(content, np.float32), self.conf.size)
        if min(c.shape[:2]) < MULTIPLE:
            raise NSTError(f"content image {c.shape[0]}x{c.shape[1]} is too small: both sides must be at "
                           f"least {MULTIPLE} px")
        return Job(index, c, c.shape)

    def _mix(self, h: int, w: int):
        """(K, h', w') weights of the styles over the feature map it mixes them on (summing to 1 over K)."""
        return style_weights(self.blend, self.mask, (h, w), MULTIPLE, 8)

    def run(self, jobs: list[Job], placement: Placement, callback) -> list:
        t1 = time.perf_counter()
        (h, w), rows, alpha, dt = jobs[0].shape, placement.rows, np.float32(self.conf.alpha), self.dtype
        if self._shared is None and self.preserve_color != "histogram":
            self.say("encoding styles")
        x = np.stack([j.content for j in jobs])
        per = [self.style_features(j.content) for j in jobs]  # the same unless recoloured per content
        styles = tuple((jnp.concatenate([p[k][0] for p in per]), jnp.concatenate([p[k][1] for p in per]))
                       for k in range(len(self.styles))) if self.preserve_color == "histogram" else per[0]
        mix, identity = self._mix(h, w), self.conf.alpha < 1.0
        if rows is not None:
            self.say(f"stylising {len(jobs)} image(s) of {w}x{h} across {rows.mesh.size} devices")
            out = _transfer(*replicate((self.vgg, self.params), rows), shard_rows(x, rows),
                            *replicate((styles, alpha, mix), rows), identity=identity, dtype=dt,
                            upsample=self.upsample)
        elif placement.band:
            self.say(f"stylising {w}x{h} in bands of {placement.band} rows")
            out = np.concatenate([
                _transfer_tiled(self.vgg, self.params, x[j:j + 1], per[j], alpha, mix, placement.band,
                                identity, dt, self.upsample)
                for j in range(len(jobs))])
        else:
            self.say(f"stylising {len(jobs)} image(s) of {w}x{h}")
            out = _transfer_stored(self.vgg, self.params, x, styles, alpha, mix, identity=identity,
                            dtype=dt, upsample=self.upsample)
        out = to_host(out)
        entries = {"timings": {"load": self.load_seconds, "stylise": time.perf_counter() - t1},
                   "styles": len(self.styles), "alpha": float(self.conf.alpha), "style_blend": self.blend,
                   "mask": self.mask is not None}
        self.load_seconds = 0.0  # counted in the first batch's report only
        return [(out[j], dict(entries)) for j in range(len(jobs))]


def stylize_many(contents, styles, config: StylizeConfig = STYLIZE_CONFIG, *, mask=None, model=None,
                 weights=None, batch: int | None = None, callback: Callable[[Event], None] | None = None,
                 **settings):
    """:func:`stylize` for a list of contents, yielding a :class:`nst_jax.run.Result` per content as its
    batch finishes; a content that cannot be stylised yields its error and the others run."""
    contents = list(contents)
    if not contents:
        raise NSTError("no content images given")
    method = SANet(styles, config, mask=mask, model=model, weights=weights, callback=callback, **settings)
    yield from run_pictures(method, contents, batch=batch, callback=callback)


def stylize(content, styles, config: StylizeConfig = STYLIZE_CONFIG, *, mask=None, model=None, weights=None,
            batch: int | None = None, callback: Callable[[Event], None] | None = None, **settings):
    """Stylise one image, or a list of them, with SANet (:func:`stylize_many`, collected).

    ``content``: ``(H, W, 3)`` float RGB in [0, 1] or a list of them; ``styles``: one style image or a list;
    ``mask``: an ``(H, W)`` array in [0, 1] with exactly two styles (the first inside, > 0.5); ``model``: a
    SANet ``.npz`` (``None``: the shipped one), ``(params, meta)`` or bare params (nearest-neighbour
    decoder); ``**settings``: :class:`StylizeConfig` fields by name.  Returns ``(image, report)`` as every
    method (:func:`nst_jax.runinfo.report`)."""
    single = isinstance(content, np.ndarray) and content.ndim == 3
    return collect(stylize_many([content] if single else content, styles, config, mask=mask, model=model,
                                weights=weights, batch=batch, callback=callback, **settings), single)

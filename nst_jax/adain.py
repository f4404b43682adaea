"""AdaIN arbitrary style transfer (Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with
Adaptive Instance Normalization").

An encoder -- the VGG-19 of :mod:`nst_jax.vgg` up to relu4_1, frozen -- maps content and style images to
features; :func:`adain` gives the content features the style features' per-channel mean and standard
deviation; a trained decoder (:class:`nst_jax.modules.Decoder`, flax.linen) maps the result back to an
image.  One forward pass, any style.

This module is the model and inference. Pure functions: :func:`mean_std`, :func:`adain`, :func:`encode`,
:func:`decode`. :func:`stylize` is the NumPy-in/NumPy-out entry point with the paper's controls (a
:class:`StylizeConfig`): ``alpha`` (content-style trade-off), style interpolation (``style_blend``),
colour preservation and a spatial ``mask``.  Training (the paper's loss, the task, the schedule) is in
:mod:`nst_jax.adain_train`.

Conventions (as naoto0804/pytorch-AdaIN, the reference implementation): ``eps = 1e-5`` is added to the
variance before the square root; the variance is the population variance over H x W (pytorch-AdaIN
uses the unbiased one; at relu4_1 of a 256-px crop, 1024 values per channel, they differ by 0.05%).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from .compile_cache import stored
from .config import with_fields
from .decoder import (  # the encoder and decoder AdaIN and SANet share (also this module's public names)
    CHANNEL_MEANS,
    CHANNEL_MEANS_FILE,
    DECODER_FILE,
    DECODER_HALO,
    DECODER_PLAN,
    NORMALISED_LAYERS,
    STYLIZE_CONFIG,
    StylizeConfig,
    decode,
    decode_band,
    encode,
    init_decoder,
    load_decoder,
    prepare_styles,
    save_decoder,
    style_weights,
    upsampling,
)
from .errors import NSTError
from .losses import mean_std
from .nets import count_params, pad_to_multiple
from .run import Job, Method, Placement, collect, run_pictures
from .runinfo import Event, emitter
from .tiling import Footprint, replicate, shard_rows, to_host
from .vgg import vgg19_params

ENCODER_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
EPS = 1e-5
MULTIPLE = 8  # relu4_1 is after three 2x2 poolings: sides are padded to a multiple of 8

__all__ = ["CHANNEL_MEANS", "CHANNEL_MEANS_FILE", "DECODER_FILE", "DECODER_PLAN",
           "NORMALISED_LAYERS", "STYLIZE_CONFIG", "AdaIN", "StylizeConfig", "adain",
           "adain_moments",
           "count_params", "decode", "encode", "init_decoder", "load_decoder", "mean_std", "save_decoder",
           "stylize", "stylize_many", "upsampling"]


# --- pure functions ----------------------------------------------------------------------------------

def adain(content_features, style_features, eps: float = EPS):
    """Adaptive instance normalisation: ``sigma(y) * (x - mu(x)) / sigma(x) + mu(y)`` per image and channel.

    ``content_features`` ``(N, H, W, C)``; ``style_features`` ``(N, H', W', C)`` or ``(1, H', W', C)``.
    """
    return adain_moments(content_features, *mean_std(style_features, eps), eps)


def adain_moments(content_features, s_mean, s_std, eps: float = EPS):
    """:func:`adain` with the style given by its ``(N, C)`` moments (for interpolation and masks)."""
    c_mean, c_std = mean_std(content_features, eps)
    normalised = (content_features - c_mean[:, None, None]) / c_std[:, None, None]
    return normalised * s_std[:, None, None] + s_mean[:, None, None]


# --- inference -----------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames="dtype")
def _style_moments(vgg_params, style, dtype=jnp.float32):
    f = encode(vgg_params, pad_to_multiple(style, MULTIPLE), dtype=dtype)[ENCODER_LAYER]
    return mean_std(f, EPS)


def _mix_targets(f, s_mean, s_std, alpha, mask):
    """The decoder's input for content features ``f`` (N, h, w, C): each image's AdaIN targets for the K
    styles (``s_mean``/``s_std`` (N, K, C)) mixed by ``mask`` (K, h, w; summing to 1 over K), then
    ``alpha`` of the way from ``f``."""
    targets = jax.vmap(lambda m, s: adain_moments(f, m, s), in_axes=(1, 1))(s_mean, s_std)  # (K, N, h, w, C)
    t = jnp.sum(targets * mask[:, None, :, :, None], axis=0)
    return alpha * t + (1.0 - alpha) * f


@partial(jax.jit, static_argnames=("dtype", "upsample"))
def _transfer(vgg_params, decoder_params, content, s_mean, s_std, alpha, mask, dtype=jnp.float32,
              upsample="nearest"):
    """content (N, H, W, 3); s_mean/s_std (N, K, C); alpha scalar; mask (K, h, w) weights over the feature
    map (summing to 1 over K).  Returns the decoded images cropped back to H x W (unclipped)."""
    h, w = content.shape[1:3]
    f = encode(vgg_params, pad_to_multiple(content, MULTIPLE), dtype=dtype)[ENCODER_LAYER]  # (N, h', w', C)
    return decode(decoder_params, _mix_targets(f, s_mean, s_std, alpha, mask), dtype, upsample)[:, :h, :w]


# --- tiled inference (nst_jax.tiling): the same result, a band of rows at a time ----------------------

ENCODER_HALO = 64  # px above and below a band: VGG-19 up to relu4_1 sees 37 px around a pixel
# whole-image peak 1100 bytes a pixel on XLA:CPU (BENCHMARKS.md), plus Python, JAX and both networks' weights
FOOTPRINT = Footprint(per_pixel=1100, fixed=700 << 20)


@partial(jax.jit, static_argnames="dtype")
def _encode_band(vgg_params, x, dtype=jnp.float32):
    return encode(vgg_params, x, dtype=dtype)[ENCODER_LAYER]


_adain_targets = jax.jit(_mix_targets)
# one device: the programs of a picture, loaded whole by a later process
_style_moments_stored = stored(_style_moments, "adain_style_moments", static_argnames=("dtype",))
_transfer_stored = stored(_transfer, "adain_transfer", static_argnames=("dtype", "upsample"))


def _transfer_tiled(vgg_params, decoder_params, content, s_mean, s_std, alpha, mask, band: int,
                    dtype=jnp.float32, upsample="nearest"):
    """:func:`_transfer` a band of ``band`` rows at a time: the encoder's features band by band (each from
    its rows and a halo), the content moments and AdaIN targets over the whole feature map, then the
    decoder band by band.  Every band's own rows are exact: equal to the whole image's."""
    from .tiling import bands

    h, w = content.shape[1:3]
    x = np.asarray(pad_to_multiple(jnp.asarray(content), MULTIPLE))
    band = max(MULTIPLE, band // MULTIPLE * MULTIPLE)
    feats = []
    for start, stop, lo, hi in bands(x.shape[1], band, ENCODER_HALO, MULTIPLE):
        f = np.asarray(_encode_band(vgg_params, jnp.asarray(x[:, lo:hi]), dtype=dtype))
        feats.append(f[:, (start - lo) // MULTIPLE:(stop - lo) // MULTIPLE])
    t = np.asarray(_adain_targets(jnp.asarray(np.concatenate(feats, axis=1)), s_mean, s_std, alpha, mask))
    del feats
    out = []
    for start, stop, lo, hi in bands(t.shape[1], band // MULTIPLE, DECODER_HALO):
        g = np.asarray(decode_band(decoder_params, jnp.asarray(t[:, lo:hi]), dtype, upsample))
        out.append(g[:, (start - lo) * MULTIPLE:(stop - lo) * MULTIPLE])
    return np.concatenate(out, axis=1)[:, :h, :w]


class AdaIN(Method):
    """AdaIN on the run contract (:mod:`nst_jax.run`): the styles, mask and settings shared by its pictures,
    both networks loaded once and the styles' moments computed once (per content with ``preserve_color=
    "histogram"``, which recolours the styles to each content first)."""

    name = "adain"
    footprint = FOOTPRINT
    halo = ENCODER_HALO
    align = MULTIPLE

    def __init__(self, styles, config: StylizeConfig = STYLIZE_CONFIG, *, mask=None, decoder=None,
                 weights=None, callback: Callable[[Event], None] | None = None, **settings):
        self.started = t0 = time.perf_counter()
        self.conf = conf = with_fields(config, settings, "stylize setting")
        self.say = emitter("adain", callback)
        self.styles, self.blend, self.mask = prepare_styles(styles, mask, conf, MULTIPLE)
        self.tile, self.devices, self.preserve_color = conf.tile, conf.devices, conf.preserve_color
        self.dtype = jnp.dtype(conf.dtype)
        self.say("loading networks")
        self.vgg = weights if isinstance(weights, dict) else vgg19_params(weights, upto=ENCODER_LAYER)
        self.decoder, meta = (decoder, {}) if isinstance(decoder, dict) else \
            decoder if isinstance(decoder, tuple) else load_decoder(decoder)
        self.upsample = upsampling(meta)
        self.load_seconds = time.perf_counter() - t0
        self._shared = None

    def moments(self, content):
        """(K, C) means and standard deviations of the styles (recoloured to ``content`` first, if asked)."""
        if self.preserve_color != "histogram" and self._shared is not None:
            return self._shared
        m = [_style_moments_stored(self.vgg, np.asarray(s, np.float32)[None], dtype=self.dtype)
             for s in _image.preserve_color(self.preserve_color, content, styles=self.styles)]
        out = np.concatenate([to_host(a) for a, _ in m]), np.concatenate([to_host(b) for _, b in m])
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
        return style_weights(self.blend, self.mask, (h, w), MULTIPLE, MULTIPLE)

    def run(self, jobs: list[Job], placement: Placement, callback) -> list:
        t1 = time.perf_counter()
        (h, w), rows, alpha, dt = jobs[0].shape, placement.rows, np.float32(self.conf.alpha), self.dtype
        if self._shared is None and self.preserve_color != "histogram":
            self.say("encoding styles")
        x = np.stack([j.content for j in jobs])
        ms = [self.moments(j.content) for j in jobs]
        s_mean, s_std = np.stack([m for m, _ in ms]), np.stack([s for _, s in ms])
        mix = self._mix(h, w)
        if rows is not None:
            self.say(f"stylising {len(jobs)} image(s) of {w}x{h} across {rows.mesh.size} devices")
            out = _transfer(*replicate((self.vgg, self.decoder), rows), shard_rows(x, rows),
                            *replicate((s_mean, s_std, alpha, mix), rows), dtype=dt, upsample=self.upsample)
        elif placement.band:
            self.say(f"stylising {w}x{h} in bands of {placement.band} rows")
            out = np.concatenate([_transfer_tiled(self.vgg, self.decoder, x[j:j + 1], s_mean[j:j + 1],
                                                  s_std[j:j + 1], alpha, mix, placement.band, dt,
                                                  self.upsample)
                                  for j in range(len(jobs))])
        else:
            self.say(f"stylising {len(jobs)} image(s) of {w}x{h}")
            out = _transfer_stored(self.vgg, self.decoder, x, s_mean, s_std, alpha, mix, dtype=dt,
                            upsample=self.upsample)
        out = to_host(out)
        entries = {"timings": {"load": self.load_seconds, "stylise": time.perf_counter() - t1},
                   "styles": len(self.styles), "alpha": float(self.conf.alpha), "style_blend": self.blend,
                   "mask": self.mask is not None}
        self.load_seconds = 0.0  # counted in the first batch's report only
        return [(out[j], dict(entries)) for j in range(len(jobs))]


def stylize_many(contents, styles, config: StylizeConfig = STYLIZE_CONFIG, *, mask=None, decoder=None,
                 weights=None, batch: int | None = None, callback: Callable[[Event], None] | None = None,
                 **settings):
    """:func:`stylize` for a list of contents, yielding a :class:`nst_jax.run.Result` per content as its
    batch finishes (so that a caller keeps what is done when interrupted).  A content that cannot be stylised
    (too small) yields its error first; the others run."""
    contents = list(contents)
    if not contents:
        raise NSTError("no content images given")
    method = AdaIN(styles, config, mask=mask, decoder=decoder, weights=weights, callback=callback, **settings)
    yield from run_pictures(method, contents, batch=batch, callback=callback)


def stylize(content, styles, config: StylizeConfig = STYLIZE_CONFIG, *, mask=None, decoder=None, weights=None,
            batch: int | None = None, callback: Callable[[Event], None] | None = None, **settings):
    """Stylise one image, or a list of them, with AdaIN (:func:`stylize_many`, collected).

    Args:
      content: ``(H, W, 3)`` float RGB in [0, 1], or a list of such images: those of one shape after resizing
        run in batches (``batch`` at a time; ``None``: as many as fit in the memory available on a GPU or
        TPU, one at a time on a CPU, :func:`nst_jax.tiling.plan`), one compiled program per shape.
      styles: one ``(H, W, 3)`` style image or a list of them.
      config: a :class:`StylizeConfig` (default: the paper's full style, 512 px).
      mask: spatial control, an ``(H, W)`` array in [0, 1] (values > 0.5 are inside) with exactly two
        styles: the first is applied inside the mask, the second outside.
      decoder: a path to a decoder ``.npz``, ``None`` for the shipped decoder, what :func:`load_decoder`
        returns (``(params, meta)``: its upsampling from ``meta``), or bare params (nearest-neighbour).
      weights: VGG-19 params or weights file (default: the fetched ImageNet weights).
      callback: receives an :class:`nst_jax.runinfo.Event` per stage (``str(event)``: a short message).
      **settings: :class:`StylizeConfig` fields by name (``alpha=0.6``), replacing ``config``'s.

    Returns:
      ``(image, report)``: ``(H, W, 3)`` float32 in [0, 1] (a list of them for a list of contents) and the
      report every method returns (:func:`nst_jax.runinfo.report`).
    """
    single = isinstance(content, np.ndarray) and content.ndim == 3
    return collect(stylize_many([content] if single else content, styles, config, mask=mask, decoder=decoder,
                                weights=weights, batch=batch, callback=callback, **settings), single)

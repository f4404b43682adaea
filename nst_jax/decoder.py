"""The normalised VGG-19 encoder and the decoder that maps its relu4_1 features back to a picture: the
networks AdaIN (:mod:`nst_jax.adain`) and SANet (:mod:`nst_jax.sanet`) share, their files, and the settings
of the two arbitrary-style methods (:class:`StylizeConfig`).

The encoder is :mod:`nst_jax.vgg`'s VGG-19 with each channel divided by its mean activation over ImageNet
(:data:`CHANNEL_MEANS`, relu1_1..relu5_1).  The decoder (:class:`nst_jax.modules.Decoder`, flax.linen)
mirrors VGG-19 up to relu4_1 (:data:`DECODER_PLAN`); its x2 upsamplings are nearest-neighbour (the papers')
or bilinear, as its file says (:func:`upsampling`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from . import nets
from .config import blend_weights, check_blend, freeze
from .errors import NSTError
from .nets import flat_shapes, load_params, save_params
from .vgg import vgg19_features

NORMALISED_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # the layers of CHANNEL_MEANS
DECODER_FILE = Path(__file__).parent / "models" / "adain_decoder.npz"
CHANNEL_MEANS_FILE = Path(__file__).parent / "models" / "vgg19_channel_means.npz"
DECODER_FORMAT = "nst_jax-adain-decoder-v1"
DECODER_HALO = 8  # relu4_1 rows (64 px) above and below a band: the decoder sees about 3.75 around one

__all__ = ["CHANNEL_MEANS", "DECODER_HALO", "DECODER_PLAN", "NORMALISED_LAYERS", "STYLIZE_CONFIG",
           "StylizeConfig", "decode", "decode_band", "encode", "init_decoder", "load_decoder",
           "mask_on_features", "prepare_styles", "save_decoder", "style_weights", "upsampling"]


# --- the normalised encoder ----------------------------------------------------------------------------

with np.load(CHANNEL_MEANS_FILE) as _z:
    CHANNEL_MEANS: dict[str, np.ndarray] = {k: np.asarray(_z[k], np.float32) for k in NORMALISED_LAYERS
                                            if k in _z.files}
"""Mean activation of each channel of relu1_1..relu5_1 over 950 ImageNet photos (one per class), for the
Caffe VGG-19 weights; written by ``experiments/vgg_channel_means.py``."""


def encode(vgg_params, images, layers=("relu4_1",), dtype=jnp.float32):
    """Normalised VGG-19 features of ``images`` (NHWC RGB in [0, 1]) at ``layers`` (max pooling).

    Each channel is divided by its mean activation over ImageNet (:data:`CHANNEL_MEANS`), which makes
    these exactly the features of the "normalised" VGG-19 that AdaIN and SANet (and pytorch-AdaIN's
    ``vgg_normalised.pth``) use: ReLU is positively homogeneous, so rescaling channels changes nothing
    but their scale.  This keeps every feature O(1) and the paper's loss weights meaningful.  ``dtype``: the
    network's computation (``jnp.bfloat16`` for mixed precision); the features come back float32.
    """
    feats = vgg19_features(vgg_params, images, layers, pool="max", dtype=dtype)
    return {k: v.astype(jnp.float32) / CHANNEL_MEANS[k] for k, v in feats.items()}


# --- the decoder and its files ------------------------------------------------------------------


DECODER_PLAN = (  # (name, output channels), "up" = x2 upsampling (Decoder.upsample); mirrors VGG-19
    ("conv4_1", 256), "up",
    ("conv3_4", 256), ("conv3_3", 256), ("conv3_2", 256), ("conv3_1", 128), "up",
    ("conv2_2", 128), ("conv2_1", 64), "up",
    ("conv1_2", 64), ("conv1_1", 3),
)


def init_decoder(key, channels: int = 512):
    """Fresh parameters of the decoder (:class:`nst_jax.modules.Decoder`)."""
    from .modules import DECODER  # flax: only where parameters are made or a program traced

    return DECODER.init(key, jnp.zeros((1, 8, 8, channels), jnp.float32))["params"]


def decode(decoder_params, t, dtype=jnp.float32, upsample: str = "nearest"):
    """The decoder (:class:`nst_jax.modules.Decoder`) on AdaIN targets ``t``; ``dtype``: its computation
    (``jnp.bfloat16``: the float32 parameters cast for it, so that their gradients stay float32); the image
    comes back float32.  ``upsample``: the decoder's upsampling."""
    from .modules import DECODER, Decoder

    if jnp.dtype(dtype) != jnp.float32:
        decoder_params = jax.tree_util.tree_map(lambda a: a.astype(dtype), decoder_params)
    net = DECODER if upsample == "nearest" else Decoder(upsample)
    return net.apply({"params": decoder_params}, t.astype(dtype)).astype(jnp.float32)


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
    expected = flat_shapes(lambda: init_decoder(jax.random.key(0)), "adain-decoder")
    params, meta = load_params(path, DECODER_FORMAT, expected, "AdaIN decoder", "nst-jax train adain")
    kind = upsampling(meta)
    if kind not in nets.UPSAMPLINGS:
        raise NSTError(f"{path} asks for an upsampling this version does not have: {kind!r}")
    return params, meta


def upsampling(meta: dict | None) -> str:
    """The upsampling of a decoder from its file's metadata (:func:`load_decoder`'s second value):
    ``task_config["upsample"]`` as training wrote it, ``"nearest"`` when absent (the paper's)."""
    return str(((meta or {}).get("task_config") or {}).get("upsample", "nearest"))

decode_band = jax.jit(decode, static_argnums=(2, 3))
""":func:`decode` compiled (``dtype`` and ``upsample`` static): one band of rows of a tiled picture."""


def mask_on_features(mask, shape, multiple: int, scale: int) -> np.ndarray:
    """A grey mask ``(h, w)`` of any size as a 0/1 map over the feature map of a picture of ``shape``
    (H, W) padded to a ``multiple``: brought to H x W, padded as the picture is (:func:`nst_jax.nets.
    pad_to_multiple`), brought to the feature map's size (``scale`` px a feature), inside where > 0.5."""
    h, w = shape
    m = _image.resize(np.asarray(mask, np.float32)[..., None], (h, w))
    m = np.asarray(nets.pad_to_multiple(m[None], multiple))[0]
    return (_image.resize(m, (m.shape[0] // scale, m.shape[1] // scale))[..., 0] > 0.5).astype(np.float32)


def prepare_styles(styles, mask, conf, multiple: int):
    """What AdaIN and SANet take alike: ``(styles, blend, mask)``: the style images resized to
    ``conf.style_size`` (each side at least ``multiple`` px), the blend weights (``conf.style_blend``, equal
    by default), the mask as a 2-D grey array (two styles, no blend) or ``None``."""
    styles = [styles] if isinstance(styles, np.ndarray) and styles.ndim == 3 else list(styles)
    if not styles:
        raise NSTError("at least one style image is needed")
    blend = blend_weights(conf.style_blend, len(styles))
    if mask is not None and len(styles) != 2:
        raise NSTError(f"a mask needs exactly two style images (inside, outside), got {len(styles)}")
    if mask is not None and conf.style_blend is not None:
        raise NSTError("a mask places each style in its own region; it takes no style blend")
    styles = [_image.resize_longest(np.asarray(s, np.float32), conf.style_size) for s in styles]
    for s in styles:
        if min(s.shape[:2]) < multiple:
            raise NSTError(f"style image {s.shape[0]}x{s.shape[1]} is too small: both sides must be at least "
                           f"{multiple} px")
    if mask is not None:
        mask = np.asarray(mask, np.float32)
        mask = mask.mean(-1) if mask.ndim == 3 else mask
        if mask.ndim != 2:
            raise NSTError(f"mask must be a 2-D (grey) image, got shape {mask.shape}")
    return styles, blend, mask


def style_weights(blend, mask, shape, multiple: int, scale: int):
    """``(K, h', w')`` weights of the K styles over the feature map (``scale`` px a feature) of a picture of
    ``shape`` (H, W) padded to a ``multiple``, summing to 1 over K: the ``blend`` everywhere, or with a
    ``mask`` the first style inside it and the second outside (:func:`mask_on_features`)."""
    h, w = shape
    fh, fw = -(-h // multiple) * multiple // scale, -(-w // multiple) * multiple // scale
    if mask is None:
        weights = np.asarray(blend, np.float32)[:, None, None]
        return np.ascontiguousarray(np.broadcast_to(weights, (len(blend), fh, fw)))
    inside = mask_on_features(mask, shape, multiple, scale)
    return np.stack([inside, 1.0 - inside]).astype(np.float32)


# --- settings ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """Every setting of an arbitrary-style network's ``stylize`` (:mod:`nst_jax.adain`, :mod:`nst_jax.sanet`),
    frozen and validated when built.

    Fields:
      alpha: content-style trade-off in [0, 1]: the decoder sees ``alpha`` of the way from the photo's own
        features to the stylised ones (AdaIN: ``alpha * AdaIN(f(c), f(s)) + (1 - alpha) * f(c)``; SANet:
        ``alpha * T(c, s) + (1 - alpha) * T(c, c)``); 0 reconstructs the content through the decoder.
      style_blend: style interpolation weights, one per style (normalised to sum 1; default equal).  The
        styles' feature moments are mixed as in the paper (a convex combination of the AdaIN targets).
      preserve_color: ``"histogram"`` (each style image recoloured to the content's colour statistics
        before encoding, as pytorch-AdaIN's ``--preserve_color``) or ``"luminance"`` (the result's
        luminance with the content's chroma); :func:`nst_jax.image.preserve_color`.
      size, style_size: longest side in px for the content (the output size) and the styles; ``None``
        keeps the original size.
      tile: ``"auto"`` (a band of rows at a time when the whole image would not fit in the memory
        available), ``"none"``, or a band height in px; tiled results equal the whole image's
        (:mod:`nst_jax.tiling`).
      devices: N or ``"all"``: the content split by rows across N devices instead
        (:func:`nst_jax.tiling.row_sharding`; its height after resizing must be a multiple of N).
      dtype: ``"float32"`` or ``"bfloat16"`` (both networks' activations and convolutions: mixed
        precision for GPU/TPU; XLA:CPU runs it slower).
    """

    alpha: float = 1.0
    style_blend: tuple[float, ...] | None = None
    preserve_color: str | None = None
    size: int | None = 512
    style_size: int | None = 512
    tile: Any = "auto"
    devices: Any = None
    dtype: str = "float32"

    def __post_init__(self):
        from .tiling import parse_tile

        freeze(self, "style_blend")
        if self.dtype not in ("float32", "bfloat16"):
            raise NSTError(f"dtype must be 'float32' or 'bfloat16', not {self.dtype!r}")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise NSTError(f"alpha must be in [0, 1], not {self.alpha}")
        check_blend(self.style_blend)
        _image.check_preserve_color(self.preserve_color)
        object.__setattr__(self, "tile", parse_tile(self.tile))


STYLIZE_CONFIG = StylizeConfig()

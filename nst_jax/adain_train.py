"""Training an AdaIN decoder (Huang & Belongie 2017): the paper's loss and the training task.

The model (encoder, :func:`nst_jax.adain.adain`, :class:`nst_jax.modules.Decoder`) and inference
(:func:`nst_jax.adain.stylize`) are in :mod:`nst_jax.adain`; this module adds what only training needs:
:func:`adain_loss` (the paper's), :func:`reconstruction_loss` (a warm-up), :class:`AdaINTask` for the
method-agnostic loop of :mod:`nst_jax.train`, and :func:`train_decoder` with the paper's schedule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .adain import (
    ENCODER_LAYER,
    EPS,
    STYLE_LAYERS,
    adain,
    decode,
    encode,
    init_decoder,
    load_decoder,
    save_decoder,
)
from .errors import NSTError
from .losses import mean_std, periodic_peak_loss
from .train import TrainConfig

STYLE_WEIGHT = 10.0  # pytorch-AdaIN's default (the paper's lambda)
CONTENT_WEIGHT = 1.0

__all__ = ["DTYPES", "OBJECTIVES", "TRAIN_CONFIG", "AdaINTask", "adain_loss", "reconstruction_loss",
           "train_decoder"]


# --- training objective --------------------------------------------------------------------------------

def adain_loss(decoder_params, vgg_params, content, style, style_weight: float = STYLE_WEIGHT,
               content_weight: float = CONTENT_WEIGHT, dtype=jnp.float32, periodic_weight: float = 0.0,
               upsample: str = "nearest"):
    """The paper's training loss for a batch of ``content`` and ``style`` images (NHWC, [0, 1]).

    ``t = AdaIN(f(c), f(s))``; ``g = decoder(t)``; content loss = MSE(f(g), t) at relu4_1; style loss =
    sum over relu1_1..relu4_1 of MSE(mu(phi(g)), mu(phi(s))) + MSE(sigma(phi(g)), sigma(phi(s))).
    Returns ``(total, {"content": ..., "style": ...})``.  ``dtype=jnp.bfloat16``: mixed precision (both
    networks' activations and convolutions in bfloat16; features, statistics, the loss and the gradients
    of the float32 decoder parameters in float32).  ``periodic_weight > 0`` adds that times
    :func:`nst_jax.losses.periodic_peak_loss` of ``g`` (not in the paper: against the peaks that the
    decoder's nearest-neighbour upsamplings put at periods of 2, 4 and 8 px; logged as ``"periodic"``).
    ``upsample``: the decoder's (:class:`nst_jax.modules.Decoder`).
    """
    content_f = encode(vgg_params, content, dtype=dtype)[ENCODER_LAYER]
    style_f = encode(vgg_params, style, STYLE_LAYERS, dtype=dtype)
    t = jax.lax.stop_gradient(adain(content_f, style_f[ENCODER_LAYER]))
    g = decode(decoder_params, t, dtype, upsample)
    g_f = encode(vgg_params, g, STYLE_LAYERS, dtype=dtype)
    loss_c = jnp.mean((g_f[ENCODER_LAYER] - t) ** 2)
    loss_s = 0.0
    for name in STYLE_LAYERS:
        gm, gs = mean_std(g_f[name], EPS)
        sm, ss = mean_std(jax.lax.stop_gradient(style_f[name]), EPS)
        loss_s = loss_s + jnp.mean((gm - sm) ** 2) + jnp.mean((gs - ss) ** 2)
    total, terms = content_weight * loss_c + style_weight * loss_s, {"content": loss_c, "style": loss_s}
    if periodic_weight:
        terms["periodic"] = periodic_peak_loss(g)
        total = total + periodic_weight * terms["periodic"]
    return total, terms


def reconstruction_loss(decoder_params, vgg_params, content, upsample: str = "nearest"):
    """A warm-up objective for the decoder: reconstruct the photo from its own features,
    ``mean((decoder(f(c)) - c)^2)`` on pixels in [0, 1] (as the decoders of Li et al. 2017, "Universal Style
    Transfer via Feature Transforms", are trained, without their feature term).  No style images, and no
    backward pass through the encoder: about half the work of an :func:`adain_loss` step.  Returns
    ``(loss, {"pixel": loss})``."""
    t = jax.lax.stop_gradient(encode(vgg_params, content)[ENCODER_LAYER])
    g = decode(decoder_params, t, upsample=upsample)
    loss = jnp.mean((g - content) ** 2)
    return loss, {"pixel": loss}


# --- training task (for nst_jax.train.train) -----------------------------------------------------------

OBJECTIVES = ("adain", "reconstruction")
DTYPES = ("float32", "bfloat16")  # bfloat16: mixed precision for GPU/TPU (slower on XLA:CPU)


class AdaINTask:
    """Train an AdaIN decoder: content and style images from two sources (see :mod:`nst_jax.data`).

    ``objective="adain"`` is the paper's loss (:func:`adain_loss`); ``"reconstruction"`` the cheaper warm-up
    (:func:`reconstruction_loss`, no style images: ``style_source`` may be ``None``)."""

    name = "adain"
    export_name = "decoder.npz"

    def __init__(self, vgg_params, content_source, style_source, *, crop: int = 256, resize: int = 512,
                 style_weight: float = STYLE_WEIGHT, content_weight: float = CONTENT_WEIGHT,
                 batch_size: int = 8, seed: int = 0, prefetch: int = 2, objective: str = "adain",
                 cache_images: bool = False, dtype: str = "float32", periodic_weight: float = 0.0,
                 upsample: str = "nearest"):
        from .data import check_crop
        from .nets import UPSAMPLINGS

        check_crop(crop, resize)
        if objective not in OBJECTIVES:
            raise NSTError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        if objective == "adain" and style_source is None:
            raise NSTError("training with the AdaIN objective needs style images (--style-dir)")
        if dtype not in DTYPES:
            raise NSTError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if upsample not in UPSAMPLINGS:
            raise NSTError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, not {upsample!r}")
        self.upsample = upsample
        self.objective, self.dtype = objective, jnp.dtype(dtype)
        self.frozen = vgg_params
        self.content_source, self.style_source = content_source, style_source
        self.crop, self.resize, self.batch_size = crop, resize, batch_size
        self.seed, self.prefetch, self.cache_images = seed, prefetch, cache_images
        if periodic_weight < 0:
            raise NSTError(f"the periodic weight must be 0 or more, not {periodic_weight:g}")
        self.style_weight, self.content_weight = float(style_weight), float(content_weight)
        self.periodic_weight = float(periodic_weight)
        self.config = {"crop": crop, "resize": resize, "style_weight": self.style_weight,
                       "content_weight": self.content_weight, "content": content_source.name,
                       "style": None if style_source is None else style_source.name}
        if objective != "adain":  # older checkpoints have no such key
            self.config["objective"] = objective
        if dtype != "float32":
            self.config["dtype"] = dtype
        if self.periodic_weight:  # older checkpoints have no such key
            self.config["periodic_weight"] = self.periodic_weight
        if upsample != "nearest":  # older checkpoints have no such key; the exported decoder's meta says it
            self.config["upsample"] = upsample
        excluded = sorted(set(getattr(content_source, "excluded", []))
                          | set(getattr(style_source, "excluded", [])))
        if excluded:  # older checkpoints have no such key: only present when something was held back
            self.config["excluded"] = excluded

    def init(self, key):
        return init_decoder(key)

    def loss(self, params, frozen, batch):
        if self.objective == "reconstruction":
            return reconstruction_loss(params, frozen, batch["content"], self.upsample)
        return adain_loss(params, frozen, batch["content"], batch["style"], self.style_weight,
                          self.content_weight, self.dtype, self.periodic_weight, self.upsample)

    def batches(self, start_step: int, shard):
        from .data import Batches, Zip

        # different seeds so that content and style orders are independent
        content = Batches(self.content_source, self.batch_size, self.crop, self.resize, seed=self.seed,
                          start_step=start_step, shard=shard, prefetch=self.prefetch, cache=self.cache_images)
        if self.objective == "reconstruction":
            return Zip(content=content)
        style = Batches(self.style_source, self.batch_size, self.crop, self.resize, seed=self.seed + 1,
                        start_step=start_step, shard=shard, prefetch=self.prefetch, cache=True)
        return Zip(content=content, style=style)

    def export(self, params, path, meta):
        save_decoder(path, params, meta)


# the paper's schedule: Adam, lr 1e-4 with inverse-time decay 5e-5, batch 8, 160k steps
TRAIN_CONFIG = TrainConfig(steps=160_000, batch_size=8, learning_rate=1e-4, lr_decay=5e-5)


def train_decoder(content, style, ckpt_dir, config: TrainConfig = TRAIN_CONFIG, *,
                  style_weight: float = STYLE_WEIGHT, content_weight: float = CONTENT_WEIGHT,
                  objective: str = "adain", crop: int = 256, resize: int = 512,
                  resume: bool = False, init_from=None, exclude=(), weights=None,
                  tfds_data_dir=None, cache_images: bool = False, dtype: str = "float32",
                  periodic_weight: float = 0.0, upsample: str = "nearest", distributed: bool = False,
                  callback=None, log=None, **config_fields) -> dict:
    """Train an AdaIN decoder with the paper's recipe (Adam, lr 1e-4 with inverse-time decay 5e-5, batch
    8, shorter side 512 then random 256 crops, style weight 10; 160k steps on COCO + WikiArt).

    ``content`` / ``style``: an image folder, ``tfds:NAME[:SPLIT]``, or a source object (see
    :mod:`nst_jax.data`).  Checkpoints, metrics, the loss curve and ``decoder.npz`` go to ``ckpt_dir``.
    ``init_from``: a decoder ``.npz`` to start from (``"shipped"``: the package's decoder), with a fresh
    optimiser state; the exported decoder's ``cumulative`` record continues the starting one's.
    ``exclude``: glob patterns of file names left out of both image folders (held back for evaluation).
    ``objective="reconstruction"``: the warm-up of :func:`reconstruction_loss` (``style`` may be ``None``).
    ``cache_images``: keep every resized content photo in memory after its first read (the same batches;
    for an accelerator that trains faster than one thread decodes JPEGs).  ``dtype="bfloat16"``: mixed
    precision (:func:`adain_loss`), float32 master weights and optimiser state.  ``periodic_weight``: the
    weight of :func:`adain_loss`'s term against periodic artefacts (0: the paper's loss).  ``upsample``:
    the decoder's upsampling (:class:`nst_jax.modules.Decoder`; ``init_from`` may have another: a
    nearest-neighbour decoder retrained as a bilinear one keeps its parameters).
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
                     seed=cfg.seed, objective=objective, cache_images=cache_images, dtype=dtype,
                     periodic_weight=periodic_weight, upsample=upsample)
    return train(task, cfg, ckpt_dir, resume=resume, init=init, distributed=distributed, callback=callback,
                 log=log)

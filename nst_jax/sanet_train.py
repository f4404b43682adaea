"""Training a SANet (Park & Lee 2019): the paper's loss and the training task.

The model and inference are in :mod:`nst_jax.sanet`; this module adds :func:`sanet_loss` (the paper's: a
content term on the normalised relu4_1 and relu5_1 features, the style term of AdaIN's mean and standard
deviation at relu1_1..relu5_1, and the two identity terms: the photo transformed by itself, and the painting
by itself, must come back as themselves, in pixels and in features), :class:`SANetTask` for the loop of
:mod:`nst_jax.train`, and :func:`train_sanet`.

The identity terms are what keep the photo's structure: ``decoder(T(c, c))`` must be ``c`` and its features
``c``'s (``T`` :func:`nst_jax.sanet.transform`), so that attending to the photo itself changes nothing, and
attending to a painting changes only what the painting's positions bring.  The paper's weights: content 1,
style 3, identity (pixels) 50, identity (features) 1.
"""

from __future__ import annotations

import jax.numpy as jnp

from .decoder import decode
from .errors import NSTError
from .losses import mean_std, periodic_peak_loss
from .sanet import (
    EPS,
    STYLE_LAYERS,
    encode_pair,
    init_params,
    load_model,
    mean_variance_norm,
    save_model,
    transform,
)
from .train import TrainConfig

CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 3.0
IDENTITY1_WEIGHT = 50.0  # pixels of the photo (and the painting) through T(x, x) and the decoder
IDENTITY2_WEIGHT = 1.0  # their features at relu1_1..relu5_1

__all__ = ["TRAIN_CONFIG", "SANetTask", "sanet_loss", "train_sanet"]


def _mse(a, b):
    return jnp.mean((a - b) ** 2)


def sanet_loss(params, vgg_params, content, style, *, content_weight: float = CONTENT_WEIGHT,
               style_weight: float = STYLE_WEIGHT, identity1_weight: float = IDENTITY1_WEIGHT,
               identity2_weight: float = IDENTITY2_WEIGHT, periodic_weight: float = 0.0,
               upsample: str = "nearest"):
    """The paper's loss for ``params`` (``{"transform", "decoder"}``) on a batch of ``content`` and ``style``
    images (NHWC in [0, 1], sides a multiple of 16; crops of one size in training).

    ``f`` the normalised VGG-19 (:func:`nst_jax.adain.encode`), ``T`` the transform, ``D`` the decoder:
    ``cs = D(T(c, s))``; content ``= MSE(norm f5(cs), norm f5(c)) + MSE(norm f4(cs), norm f4(c))`` (``norm``
    :func:`nst_jax.sanet.mean_variance_norm`); style ``= sum over relu1_1..relu5_1 of MSE(mean) + MSE(std)``
    of ``f(cs)`` against ``f(s)``; identity 1 ``= MSE(D(T(c, c)), c) + MSE(D(T(s, s)), s)``; identity 2 the
    same in features, summed over the five layers.  MSE is the mean over every value.  Content and style of
    one shape: the three pictures go through the decoder and the encoder as one batch.
    ``periodic_weight > 0`` adds that times :func:`nst_jax.losses.periodic_peak_loss` of ``cs`` (not in the
    paper).  Returns ``(total, terms)``,
    the terms unweighted."""
    n = content.shape[0]
    fc = encode_pair(vgg_params, content, STYLE_LAYERS)
    fs = encode_pair(vgg_params, style, STYLE_LAYERS)
    c4, c5, s4, s5 = fc["relu4_1"], fc["relu5_1"], fs["relu4_1"], fs["relu5_1"]
    tp = params["transform"]
    t_cs, t_cc, t_ss = (transform(tp, c4, s4, c5, s5), transform(tp, c4, c4, c5, c5),
                        transform(tp, s4, s4, s5, s5))
    if content.shape == style.shape:  # the three pictures through the decoder and the encoder as one batch
        images = decode(params["decoder"], jnp.concatenate([t_cs, t_cc, t_ss]), upsample=upsample)
        fi = encode_pair(vgg_params, images, STYLE_LAYERS)
        parts = [(images[i * n:(i + 1) * n], {k: v[i * n:(i + 1) * n] for k, v in fi.items()})
                 for i in range(3)]
    else:
        images = [decode(params["decoder"], t, upsample=upsample) for t in (t_cs, t_cc, t_ss)]
        parts = [(g, encode_pair(vgg_params, g, STYLE_LAYERS)) for g in images]
    (g_cs, cs), (icc, fcc), (iss, fss) = parts
    loss_c = sum(_mse(mean_variance_norm(cs[k]), mean_variance_norm(fc[k])) for k in ("relu5_1", "relu4_1"))
    loss_s = 0.0
    for k in STYLE_LAYERS:
        gm, gs = mean_std(cs[k], EPS)
        sm, ss = mean_std(fs[k], EPS)
        loss_s = loss_s + _mse(gm, sm) + _mse(gs, ss)
    identity1 = _mse(icc, content) + _mse(iss, style)
    identity2 = sum(_mse(fcc[k], fc[k]) + _mse(fss[k], fs[k]) for k in STYLE_LAYERS)
    total = (content_weight * loss_c + style_weight * loss_s + identity1_weight * identity1
             + identity2_weight * identity2)
    terms = {"content": loss_c, "style": loss_s, "identity1": identity1, "identity2": identity2}
    if periodic_weight:
        terms["periodic"] = periodic_peak_loss(g_cs)
        total = total + periodic_weight * terms["periodic"]
    return total, terms


class SANetTask:
    """Train a SANet (transform and decoder) on content and style images from two sources
    (:mod:`nst_jax.data`), as :class:`nst_jax.adain_train.AdaINTask` trains a decoder."""

    name = "sanet"
    export_name = "sanet.npz"

    def __init__(self, vgg_params, content_source, style_source, *, crop: int = 256, resize: int = 512,
                 content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
                 identity1_weight: float = IDENTITY1_WEIGHT, identity2_weight: float = IDENTITY2_WEIGHT,
                 periodic_weight: float = 0.0, upsample: str = "nearest", batch_size: int = 8, seed: int = 0,
                 prefetch: int = 2, cache_images: bool = False, decoder=None):
        from .data import check_crop
        from .nets import UPSAMPLINGS
        from .sanet import MULTIPLE

        check_crop(crop, resize)
        if crop % MULTIPLE:
            raise NSTError(f"the crop must be a multiple of {MULTIPLE} px (relu5_1 is at 1/16), not {crop}")
        if upsample not in UPSAMPLINGS:
            raise NSTError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, not {upsample!r}")
        weights = {"content_weight": content_weight, "style_weight": style_weight,
                   "identity1_weight": identity1_weight, "identity2_weight": identity2_weight,
                   "periodic_weight": periodic_weight}
        for name, w in weights.items():
            if w < 0:
                raise NSTError(f"the {name.replace('_', ' ')} must be 0 or more, not {w:g}")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.upsample, self.decoder = upsample, decoder
        self.frozen = vgg_params
        self.content_source, self.style_source = content_source, style_source
        self.crop, self.resize, self.batch_size = crop, resize, batch_size
        self.seed, self.prefetch, self.cache_images = seed, prefetch, cache_images
        self.config = {"crop": crop, "resize": resize, **self.weights, "upsample": upsample,
                       "content": content_source.name, "style": style_source.name}
        excluded = sorted(set(getattr(content_source, "excluded", []))
                          | set(getattr(style_source, "excluded", [])))
        if excluded:
            self.config["excluded"] = excluded

    def init(self, key):
        return init_params(key, self.decoder)

    def loss(self, params, frozen, batch):
        return sanet_loss(params, frozen, batch["content"], batch["style"], upsample=self.upsample,
                          **self.weights)

    def batches(self, start_step: int, shard):
        from .data import Batches, Zip

        content = Batches(self.content_source, self.batch_size, self.crop, self.resize, seed=self.seed,
                          start_step=start_step, shard=shard, prefetch=self.prefetch, cache=self.cache_images)
        style = Batches(self.style_source, self.batch_size, self.crop, self.resize, seed=self.seed + 1,
                        start_step=start_step, shard=shard, prefetch=self.prefetch, cache=True)
        return Zip(content=content, style=style)

    def export(self, params, path, meta):
        save_model(path, params, meta)


# the paper's schedule (the authors' training script): Adam, lr 1e-4 with inverse-time decay 5e-5, batch 5
TRAIN_CONFIG = TrainConfig(steps=500_000, batch_size=5, learning_rate=1e-4, lr_decay=5e-5)


def train_sanet(content, style, ckpt_dir, config: TrainConfig = TRAIN_CONFIG, *,
                content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
                identity1_weight: float = IDENTITY1_WEIGHT, identity2_weight: float = IDENTITY2_WEIGHT,
                periodic_weight: float = 0.0, upsample: str | None = None, crop: int = 256, resize: int = 512,
                resume: bool = False, init_from=None, decoder_from=None, exclude=(), weights=None,
                tfds_data_dir=None, cache_images: bool = False, distributed: bool = False, callback=None,
                log=None, **config_fields) -> dict:
    """Train a SANet with the paper's loss (:func:`sanet_loss`) and schedule (:data:`TRAIN_CONFIG`, fields
    replaced by keyword arguments named as them).

    ``init_from``: a SANet ``.npz`` to continue (its cumulative record continues); ``decoder_from``: instead,
    a new transform on an AdaIN decoder (``"shipped"`` or a decoder ``.npz``: same architecture), the paper's
    decoder having been trained the same way.  ``content`` / ``style``: image folders, ``tfds:NAME``, or
    sources; ``exclude``: file-name globs held back from both.  ``upsample``: the decoder's upsampling
    (``None``: the starting network's, nearest for a new one)."""
    from .data import open_source
    from .decoder import load_decoder, upsampling
    from .train import train, with_fields
    from .vgg import vgg19_params

    cfg = with_fields(config, config_fields)
    if init_from is not None and decoder_from is not None:
        raise NSTError("give --init-from (a SANet) or --decoder-from (an AdaIN decoder), not both")
    init = None if init_from is None else load_model(init_from)
    decoder, meta = None, None if init is None else init[1]
    if decoder_from is not None:
        decoder, meta = load_decoder(None if str(decoder_from) == "shipped" else decoder_from)
    upsample = upsample or upsampling(meta)
    content_src = content if hasattr(content, "load") else open_source(content, tfds_data_dir, exclude)
    style_src = style if hasattr(style, "load") else open_source(style, tfds_data_dir, exclude)
    task = SANetTask(vgg19_params(weights, log=log), content_src, style_src, crop=crop, resize=resize,
                     content_weight=content_weight, style_weight=style_weight,
                     identity1_weight=identity1_weight, identity2_weight=identity2_weight,
                     periodic_weight=periodic_weight, upsample=upsample, batch_size=cfg.batch_size,
                     seed=cfg.seed, cache_images=cache_images, decoder=decoder)
    if decoder_from is not None:
        task.config["decoder_from"] = str(decoder_from)
    return train(task, cfg, ckpt_dir, resume=resume, init=init, distributed=distributed, callback=callback,
                 log=log)

"""Training a fast feed-forward network (Johnson, Alahi & Fei-Fei 2016): the perceptual loss and the task.

The network (:class:`nst_jax.modules.TransformNet`), its files and inference are in
:mod:`nst_jax.feedforward`; this module adds what only training needs.

Loss (the perceptual loss), every term scale-free (:func:`nst_jax.losses.relative_distance`,
``||a - b||^2 / ||b||^2``) so that no layer outweighs the others because its activations are larger:

* content: the mean over ``CONTENT_LAYERS`` of the relative error of the output's VGG-19 features against
  the photo's; the default pairs Johnson et al.'s ``relu2_2`` (fine structure) with Gatys et al.'s
  ``relu4_2`` (layout);
* style: the mean over ``relu1_1 .. relu4_1`` of the relative distance between the output's Gram matrices
  and the style image's; ``relu5_1`` is left out because on a small training crop its Gram matrix is a
  statistic of a few positions and would dominate the term;
* total variation: the mean squared difference between neighbouring pixels (values in [0, 1]).

``style_norm="photos"`` divides the style term by the training photos' own style distance to the painting
(measured on ``STYLE_NORM_CROPS`` crops when training starts), so that one style weight means the same for
paintings that are near to photographs and for paintings that are far from them.  The weights were chosen
by measured training runs (BENCHMARKS.md, "Fast feed-forward networks").
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from .errors import NSTError
from .feedforward import apply_net, init_net, load_model, model_styles, num_styles, save_model
from .losses import gram_matrix, periodic_peak_loss, relative_distance, relative_distances, total_variation
from .train import TrainConfig
from .vgg import vgg19_features

CONTENT_LAYERS = ("relu2_2", "relu4_2")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 30.0
TV_WEIGHT = 1.0
# 8-bit levels: a training crop with less contrast in every channel is drawn again (nst_jax.data.Batches);
# an instance-normalised network's gradient overflows on a crop without content
MIN_CROP_STD = 1.0
STYLE_WEIGHT_PHOTOS = 21.3  # with style_norm="photos": 30 x Starry Night's 0.711
STYLE_NORM_CROPS = 64
STYLE_NORMS = ("none", "photos")

__all__ = ["TRAIN_CONFIG", "FastTask", "conditional_from", "one_style_of", "perceptual_loss",
           "photo_style_distance", "style_targets", "train_fast"]


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
                    style_layers=STYLE_LAYERS, periodic_weight=0.0):
    """The perceptual loss (see the module docstring) for a batch of content images (NHWC, [0, 1]).

    ``frozen``: ``{"vgg": VGG-19 params, "grams": {layer: (S, C, C)}}`` (:func:`style_targets` of each
    style, stacked).  A conditional network (:func:`num_styles` > 0) takes ``style``, the index of each
    image's style ``(N,)``, and ``style_weight`` may then be one weight per style ``(S,)``.  Returns
    ``(total, terms)`` with the unweighted terms (the style term averaged over the batch).
    ``periodic_weight > 0`` adds that times :func:`nst_jax.losses.periodic_peak_loss` of the network's
    pictures (not in the paper: against the peaks its nearest-neighbour upsamplings put at periods of 2 and
    4 px; the term ``"periodic"``).
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
    terms = {"content": c, "style": jnp.mean(per_image), "tv": tv}
    if periodic_weight:
        terms["periodic"] = periodic_peak_loss(y)
        total = total + periodic_weight * terms["periodic"]
    return total, terms


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
                 batch_size: int = 4, seed: int = 0, prefetch: int = 2, cache_images: bool = False,
                 periodic_weight: float = 0.0, style_norm_value=None):
        from .data import check_crop
        from .vgg import LAYERS

        check_crop(crop, resize)
        content_layers = tuple(content_layers)
        bad = [k for k in content_layers if k not in LAYERS]
        if bad or not content_layers:
            raise NSTError(f"unknown content layer(s) {', '.join(bad) or '(none given)'}; VGG-19 layers are "
                           f"named like relu2_2, relu4_2")
        if periodic_weight < 0:
            raise NSTError(f"the periodic weight must be 0 or more, not {periodic_weight:g}")
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
            norms = ([float(v) for v in np.atleast_1d(style_norm_value)] if style_norm_value is not None
                     else self.photos_distance(STYLE_NORM_CROPS))
            if len(norms) != len(styles):
                raise NSTError(f"{len(norms)} style norm(s) for {len(styles)} style(s)")
        weights = [float(style_weight) / v for v in norms]
        self.weights = {"content_weight": float(content_weight),
                        "style_weight": weights if self.styles else weights[0],
                        "tv_weight": float(tv_weight), "content_layers": content_layers}
        if periodic_weight:  # older checkpoints have no such key
            self.weights["periodic_weight"] = float(periodic_weight)
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
                         start_step=start_step, shard=shard, prefetch=self.prefetch, cache=self.cache_images,
                         min_std=MIN_CROP_STD)
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


def continued_style_norms(meta: dict, names) -> list[float] | float | None:
    """The ``style_norm="photos"`` norms a network was trained with (its record's last run), when it
    painted the same styles ``names`` in the same order; else ``None``.  A continued network keeps its
    style weights: the photos' distance to a painting moves with the crop size and the photo set (halving
    a painting's weight at 128² crops against the 256² it was trained at), and with it the balance of the
    loss the network learnt."""
    task = meta.get("task_config") or {}
    value = task.get("style_norm_value")
    if task.get("style_norm") != "photos" or value is None:
        return None
    trained = task.get("styles") or [task.get("style")]
    if list(trained) != list(names if isinstance(names, (list, tuple)) else [names]):
        return None
    return value


# Johnson et al.'s schedule: Adam, learning rate 1e-3, batch 4, 40k steps (2 epochs of COCO)
TRAIN_CONFIG = TrainConfig(steps=40_000, batch_size=4, learning_rate=1e-3, lr_decay=0.0)


def train_fast(style, content, ckpt_dir, config: TrainConfig = TRAIN_CONFIG, *,
               content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
               tv_weight: float = TV_WEIGHT, content_layers=CONTENT_LAYERS, style_norm: str = "none",
               style_size: int | None = 512, crop: int = 256, resize: int = 256,
               resume: bool = False, init_from=None, exclude=(), weights=None, tfds_data_dir=None,
               cache_images: bool = False, periodic_weight: float = 0.0, distributed: bool = False,
               callback=None, log=None, **config_fields) -> dict:
    """Train a feed-forward network for one style (Johnson et al.'s recipe: Adam, learning rate 1e-3,
    batch 4, 256² crops, 40k steps = 2 epochs of COCO), or one conditional network for several.

    ``style``: a path or an ``(H, W, 3)`` array, or a list of paths (a conditional network, Dumoulin et al.
    2017: one set of instance-normalisation parameters per style); ``content``: an image folder,
    ``tfds:NAME[:SPLIT]`` or a source object.  Checkpoints, metrics, the loss curve and ``model.npz`` go to
    ``ckpt_dir``.  ``init_from``: a shipped model's name or a model ``.npz`` to start from (e.g. an
    earlier run's network, or another style's network), with a fresh optimiser state; for a
    conditional network also one one-style network per style (see :func:`conditional_from`).  ``exclude``:
    glob patterns of file names left out of the content folder (held back for evaluation).
    ``style_norm="photos"``: the style term in units of the photos' own distance to the painting (use
    ``STYLE_WEIGHT_PHOTOS``); a network continued (``init_from``) keeps the norms it was trained with
    (:func:`continued_style_norms`).  ``cache_images``: keep every resized content photo in memory after
    its first read (the same batches, for an accelerator that trains faster than one thread decodes JPEGs).
    ``periodic_weight``: the weight of :func:`perceptual_loss`'s term against periodic artefacts (0: none).
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
    norm_value = None
    if init is not None and style_norm == "photos":
        norm_value = continued_style_norms(loaded[0][1], names)
        if norm_value is not None and log is not None:
            log("the style term's norms of the network continued from (its style weights kept): "
                + ", ".join(f"{v:.3g}" for v in np.atleast_1d(norm_value)))
    task = FastTask(vgg19_params(weights, log=log), images if many else images[0], content_src,
                    style_name=names if many else names[0], style_size=style_size, crop=crop, resize=resize,
                    content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                    content_layers=content_layers, style_norm=style_norm, batch_size=cfg.batch_size,
                    seed=cfg.seed, cache_images=cache_images, periodic_weight=periodic_weight,
                    style_norm_value=norm_value)
    if len(sources) > 1:  # what the starting point was made of, beyond the first network's own record
        from .train import cumulative_record

        task.config["init_from"] = [{"model": str(m), "steps": cumulative_record(meta)["steps"]}
                                    for m, (_, meta) in zip(sources, loaded, strict=True)]
    return train(task, cfg, ckpt_dir, resume=resume, init=init, distributed=distributed, callback=callback,
                 log=log)


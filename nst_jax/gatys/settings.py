"""Gatys's settings (:class:`StylizeConfig`, one picture's :class:`Picture`), their one translation into the
compiled objective (:func:`compiled_config`) and the solver (:func:`solver`), and what follows from them: the
scales of a coarse-to-fine run and the memory a picture needs (:func:`footprint`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import image as im
from .. import regions, solvers
from ..config import check_blend, freeze
from ..content import content_loss
from ..errors import NSTError
from ..regions import check_masks
from ..style import style_loss
from ..tiling import Footprint, parse_tile, plan
from ..vgg import check_layers, min_size
from .banded import band_halo
from .driver import solver_for
from .objective import CONTENT_LAYERS, DTYPES, STYLE_LAYERS, Config, Execution, LossWeights, Objective

# Peak memory of one evaluation (forward + backward through VGG-19 to relu5_1) per pixel, measured on
# XLA:CPU (BENCHMARKS.md "Time and memory against size"); the solver's history and the image-sized arrays
# come on top.
ACTIVATION_BYTES_PER_PIXEL = 3320  # float32; bfloat16 activations take less, not measured: the same model
IMAGE_BYTES_PER_PIXEL = 64  # the iterate, its gradient, the solver's other image-sized arrays, targets


def footprint(history_bytes: float) -> Footprint:
    """One picture's memory (:class:`nst_jax.tiling.Footprint`) with a solver history of ``history_bytes``
    a pixel."""
    return Footprint(ACTIVATION_BYTES_PER_PIXEL, history_bytes + IMAGE_BYTES_PER_PIXEL)


def band_rows(tile, shape, layers, history_bytes: float, rows=None) -> int:
    """The band height :func:`stylize` evaluates the objective in for an image of ``shape`` (0: the whole
    image).  ``tile``: ``"none"``; a band height in px (rounded up to the pooling grid); ``"auto"``: the
    whole image when its estimated peak fits in half the memory available, else the tallest band that
    does, next to the image-sized arrays (the solver's history, ``history_bytes`` a pixel, among them)."""
    if rows is not None:
        return 0
    halo, align = band_halo(layers)
    return plan(footprint(history_bytes), shape, 1, tile=tile, batch=1, halo=halo, align=align).band


def scale_sizes(size: int, scales: int, smallest: int) -> list[int]:
    return [max(smallest, int(round(size / 2 ** (scales - 1 - i)))) for i in range(scales)]


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """Every setting of :func:`stylize`, frozen and validated when built (an :class:`NSTError` names the
    first bad one).  :func:`stylize` takes one whole (``config=``) and its keywords replace fields by name.

    Fields:
      size: longest side of the result in pixels (``None``: the content's own size).
      iters: iterations per scale.
      optimizer: ``"lbfgs"``, ``"adam"``, ``"lbfgsb"`` or a :class:`nst_jax.solvers.Solver`; ``None`` (the
        default): the style representation's (:attr:`nst_jax.style.StyleLoss.solver`: L-BFGS, neural-style's,
        for all but ``swd``, whose redrawn projections Adam follows better).
      learning_rate: Adam's (default 0.02); history: L-BFGS(-B)'s memory (default 100 / 10);
        history_dtype: L-BFGS's storage of the pairs, ``"float32"`` (default) or ``"bfloat16"`` (half the
        memory; BENCHMARKS.md measures the loss).  A setting the chosen solver does not take is an error.
        Each L-BFGS curvature pair costs 2 x 12 bytes per pixel.
      init: ``"content"``, ``"noise"`` (uniform white noise, seeded), ``"style"`` (the first style
        image resized to the content's shape), or an (H, W, 3) array.
      content_weight, style_weight, tv_weight: weights of the three terms (see module notes;
        defaults: :class:`LossWeights`).
      pool: ``"max"`` or ``"avg"`` in VGG-19.
      content_layers, style_layers: VGG-19 layer names (content: ``None``, the content representation's own:
        relu4_2 for the feature distance, relu2_1, relu3_1 and relu4_1 for self-similarity).
      style_layer_weights: one weight per style layer (default: all 1).
      style_loss: the style representation, a name of :data:`nst_jax.style.STYLE_LOSSES` (``"gram"``, the
        default: Gatys et al.'s; ``"moments"``, ``"mmd-poly"``, ``"mmd-rbf"``, ``"swd"``) or a
        :class:`nst_jax.style.StyleLoss` of your own.
      content_loss: the content representation, a name of :data:`nst_jax.content.CONTENT_LOSSES`
        (``"feature"``, the default: Gatys et al.'s feature distance; ``"self-similarity"``: STROTSS's) or a
        :class:`nst_jax.content.ContentLoss` of your own.
      style_blend: one weight per style image (normalised to sum 1; default equal).
      style_scale: style images are resized to ``style_scale * size`` (longest side).
      preserve_color: ``None``, ``"luminance"`` (keep the content's chroma) or ``"histogram"``
        (recolour the styles to the content's colour statistics first).
      scales: coarse-to-fine: ``scales`` sizes halving down from ``size``; each starts from the
        upsampled result of the previous one.
      seed: for ``init="noise"``.
      dtype: VGG-19's activations and convolutions, ``"float32"`` (default) or ``"bfloat16"``: mixed
        precision, bfloat16 operands with float32 sums (AMX on recent Intel Xeons, tensor cores on GPUs);
        the feature maps, the Gram matrices and every term, the targets and the solver stay float32.
      remat: recompute each VGG block's activations in the backward pass instead of storing them.
        Measured on XLA:CPU it does not lower the peak for this objective (see BENCHMARKS.md):
        the L-BFGS history and the first block's activations dominate.
      devices: ``None`` or 1 (one device), N or ``"all"``: the image and the solver's history split by
        rows across N devices (:func:`nst_jax.tiling.row_sharding`); each scale's height must be a
        multiple of N.
      tile: ``"auto"`` (default), ``"none"`` or a band height in px: evaluate the objective a band of rows
        at a time (:func:`gatys_value_and_grad_banded`: the same loss and gradient, the network's
        activations held for one band); ``"auto"`` only when the whole image would not fit
        (:func:`band_rows`).  Not with ``devices``.
      save_every: also pass the current image to the callback every this many iterations.
      masks: spatial control (Gatys et al. 2017, :mod:`nst_jax.regions`): ``None``; one (H, W) array in
        [0, 1] with two style images (the first inside, where it is 1, the second outside); or a list of
        them, one per style image (region ``r`` takes style ``r``).  Resized to each content; grey levels
        blend the regions at their borders.  With a style loss that is a sum over positions (gram, moments,
        mmd-poly), exact in bands and across devices; no style blend.
      style_masks: ``None``, or one per style image: ``None`` (the whole image) or an (h, w) array, the part
        of that style image its region takes.
      mask_mode: how a mask reaches each layer's feature map: ``"simple"`` (each position the mask's mean
        over its cell of pixels), ``"inside"`` (its minimum over the position's receptive field) or ``"all"``
        (its maximum) (:mod:`nst_jax.regions`).
    """

    size: int | None = 512
    iters: int = 500
    optimizer: Any = None
    init: Any = "content"
    content_weight: float = LossWeights.content
    style_weight: float = LossWeights.style
    tv_weight: float = LossWeights.tv
    pool: str = "max"
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    style_loss: Any = "gram"
    content_loss: Any = "feature"
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    preserve_color: str | None = None
    scales: int = 1
    seed: int = 0
    learning_rate: float | None = None
    history: int | None = None
    history_dtype: str | None = None
    dtype: str = "float32"
    remat: bool = False
    devices: Any = None
    tile: Any = "auto"
    save_every: int | None = None
    masks: Any = None
    style_masks: Any = None
    mask_mode: str = "simple"

    def __post_init__(self):
        freeze(self, "content_layers", "style_layers", "style_layer_weights", "style_blend")
        layers = self.content_layers or content_loss(self.content_loss).layers or CONTENT_LAYERS
        object.__setattr__(self, "content_layers", check_layers(layers))
        object.__setattr__(self, "style_layers", check_layers(self.style_layers))
        if self.iters < 1:
            raise NSTError(f"iters must be at least 1, not {self.iters}")
        if self.scales < 1:
            raise NSTError(f"scales must be at least 1, not {self.scales}")
        if self.style_scale <= 0:
            raise NSTError(f"style scale must be positive, not {self.style_scale}")
        if self.save_every is not None and self.save_every < 1:
            raise NSTError(f"save-every must be at least 1, not {self.save_every}")
        if self.dtype not in DTYPES:
            raise NSTError(f"dtype must be 'float32' or 'bfloat16', not {self.dtype!r}")
        if self.pool not in ("max", "avg"):
            raise NSTError(f"pool must be 'max' or 'avg', not {self.pool!r}")
        if isinstance(self.init, str) and self.init not in ("content", "noise", "style"):
            raise NSTError(f"init must be 'content', 'noise', 'style' or an image, not {self.init!r}")
        im.check_preserve_color(self.preserve_color)
        n_layers, layer_weights = len(self.style_layers), self.style_layer_weights
        if layer_weights is not None and len(layer_weights) != n_layers:
            raise NSTError(f"{len(layer_weights)} style layer weights for {n_layers} style layers")
        check_blend(self.style_blend)
        object.__setattr__(self, "tile", parse_tile(self.tile))
        rep = style_loss(self.style_loss)
        content_loss(self.content_loss)
        masks, style_masks = check_masks(self.masks, self.style_masks, self.mask_mode)
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "style_masks", style_masks)
        if masks is not None and (rep.sums is None or rep.sums.weighted is None):
            raise NSTError(f"style loss {rep.name!r} cannot be taken over a region: masks work with a style "
                           "loss that is a sum over positions (gram, moments, mmd-poly)")
        if masks is not None and self.style_blend is not None:
            raise NSTError("masks place each style in its own region; they take no style blend")
        if rep.sums is None and isinstance(self.tile, int):
            raise NSTError(f"style loss {rep.name!r} is not a sum over positions and cannot be computed in "
                           "bands: use --tile none or auto")
        solver_for(self.solver_name, self.learning_rate, self.history, self.history_dtype)  # its settings

    @property
    def solver_name(self):
        """``optimizer``, or when it is ``None`` the content representation's own default solver if it has
        one, else the style representation's."""
        if self.optimizer is not None:
            return self.optimizer
        return content_loss(self.content_loss).solver or style_loss(self.style_loss).solver

    @property
    def regions(self) -> int:
        """The number of regions of spatial control (0: none): two for one mask, else one per mask."""
        return regions.count(self.masks)

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(self.content_weight, self.style_weight, self.tv_weight, self.style_layer_weights,
                           self.seed)


STYLIZE_CONFIG = StylizeConfig()

# The settings one picture of a batch may have of its own: data of the compiled program, not its shape.
PER_PICTURE = ("content_weight", "style_weight", "tv_weight", "style_layer_weights", "style_blend", "seed",
               "init")


@dataclasses.dataclass(frozen=True)
class Picture:
    """One independent problem of :func:`stylize_many`: a ``content`` image (H, W, 3), its ``style`` image or
    list of style images, and its own ``settings`` (:data:`PER_PICTURE` fields, e.g. one value of a sweep)."""

    content: Any
    style: Any
    settings: dict = dataclasses.field(default_factory=dict)

def compiled_config(conf: StylizeConfig) -> Config:
    """The one translation of the user's settings into the static part of the compiled objective."""
    return Config(Objective(conf.content_layers, conf.style_layers, conf.pool, style_loss(conf.style_loss),
                            conf.regions, content_loss(conf.content_loss)),
                  Execution(remat=bool(conf.remat), dtype=conf.dtype))


def solver(conf: StylizeConfig) -> solvers.Solver:
    chosen = solver_for(conf.solver_name, conf.learning_rate, conf.history, conf.history_dtype)
    settings = dict(chosen.settings)
    if chosen.name == "lbfgs" and settings["history"] > conf.iters:
        # at most one curvature pair is stored per iteration, so a longer memory is never filled: the same
        # iterates with less memory (2 images per pair; at 2048 px, 100 pairs would be ~7 GB)
        chosen = solvers.make_solver("lbfgs", **{**settings, "history": conf.iters})
    return chosen


def history_bytes(solver: solvers.Solver) -> float:
    """The solver's history per pixel: two images a curvature pair, float32 (bfloat16: half); Adam: none."""
    settings = dict(solver.settings)
    return settings.get("history", 0) * (12 if settings.get("history_dtype") == "bfloat16" else 24)


def plan_scales(content_shape, conf: StylizeConfig) -> tuple[tuple[int, int], ...]:
    """The (H, W) of each scale, coarse to fine, for a content image of ``content_shape``; an
    :class:`NSTError` when the result or its coarsest scale is smaller than the chosen layers need."""
    full = im.fit_shape(content_shape, conf.size) if conf.size else tuple(content_shape[:2])
    need = max(min_size(conf.content_layers), min_size(conf.style_layers))
    if min(full) < need:
        raise NSTError(f"the result would be {full[0]}x{full[1]} px, smaller than the {need} px the "
                       f"chosen VGG-19 layers need; use a larger --size")
    longest = max(full)
    sizes = scale_sizes(longest, conf.scales, longest * need // min(full) + 1)
    return tuple(im.fit_shape(content_shape, side) if k < len(sizes) else tuple(full)
                 for k, side in enumerate(sizes, 1))


def style_side(conf: StylizeConfig, shape) -> int:
    """The longest side of the style images at a scale of ``shape`` (H, W)."""
    need = max(min_size(conf.content_layers), min_size(conf.style_layers))
    return max(need, int(round(max(shape) * conf.style_scale)))

"""Fast feed-forward style transfer (Johnson, Alahi & Fei-Fei 2016) with instance normalisation (Ulyanov,
Vedaldi & Lempitsky 2016): one transformation network per style, trained with the perceptual losses of
:mod:`nst_jax.losses`, applied in one forward pass.

The network (:class:`nst_jax.modules.TransformNet`, flax.linen) is Johnson et al.'s: a 9x9 convolution,
two stride-2 convolutions, five residual blocks, two upsampling stages and a 9x9 convolution, with
reflection padding throughout and instance normalisation after every convolution but the last.  The
upsampling stages are nearest-neighbour upsampling followed by a convolution (Odena et al. 2016,
"Deconvolution and Checkerboard Artifacts"), as in PyTorch's fast_neural_style example, instead of the
paper's transposed convolutions.  1,679,235 parameters.

This module is the network's parameters, files and inference (:func:`stylize`, with a
:class:`StylizeConfig`); the perceptual loss, the training task and the schedule are in
:mod:`nst_jax.feedforward_train`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import image as _image
from .compile_cache import stored
from .config import with_fields
from .errors import NSTError
from .feedforward_tiled import TILE_PIXELS, apply_net_tiled
from .nets import count_params, flat_shapes, instance_norm, load_params, pad_to_multiple, save_params
from .run import Job, Method, Placement, collect, run_pictures
from .runinfo import emitter
from .tiling import Footprint, replicate, shard_rows, to_host

MULTIPLE = 4  # two stride-2 convolutions: sides are padded to a multiple of 4
MODELS_DIR = Path(__file__).parent / "models"
MODEL_PREFIX = "fast_"
MODEL_FORMAT = "nst_jax-fast-v1"
DEFAULT_MODEL = "starry_night"  # the network `nst-jax fast` and `video --method fast` use unless told


# --- network ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _net(num_styles: int):
    """The network (:class:`nst_jax.modules.TransformNet`); flax is imported only here, where parameters are
    made or a program traced."""
    from .modules import TransformNet

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
    styles = len(model_styles(meta))
    return flat_shapes(lambda: init_net(jax.random.key(0), styles), f"fast-net-{styles}")


def load_model(model: str | os.PathLike):
    """``(params, meta)`` from a shipped model or style name, or a ``.npz`` written by :func:`save_model`.
    A style name inside a shipped conditional network gives that network, with ``meta["style"]`` set."""
    path, style = _resolve(model)
    params, meta = load_params(path, MODEL_FORMAT, _expected_shapes, "feed-forward model",
                               "nst-jax train fast")
    if style is not None:
        meta = {**meta, "style": style}
    return params, meta


def default_model(style=None) -> str:
    """The network to use when none is named: for ``style`` (a name or ``{name: weight}``), the shipped
    conditional network that paints every style named; else :data:`DEFAULT_MODEL`."""
    if style is None or isinstance(style, int):
        return DEFAULT_MODEL
    wanted = [style] if isinstance(style, str) else list(style)
    for name, path in shipped_models().items():
        if set(wanted) <= set(model_styles(read_meta(path))):
            return name
    raise NSTError(f"no shipped network paints {', '.join(map(str, wanted))}; name one with --model (see "
                   "--list)")


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


def choose_style(params, meta: dict, style=None) -> np.ndarray | None:
    """The style weights a network is run with: ``None`` for a one-style network; for a conditional one
    :func:`style_mix` of ``style`` (or of the style its ``meta`` chose by name), an error if neither."""
    if not num_styles(params):
        if style is not None:
            raise NSTError("this network paints one style; it takes no style choice")
        return None
    names = model_styles(meta) or [str(i) for i in range(num_styles(params))]
    if style is not None and meta.get("style") is not None:
        raise NSTError(f"the model {meta['style']!r} is already one style of its network; give the network's "
                       "name with --style, or the style's name alone")
    chosen = style if style is not None else meta.get("style")
    if chosen is None:
        raise NSTError(f"this network paints {len(names)} styles; choose one (style=, --style): "
                       f"{', '.join(names)}")
    return style_mix(names, chosen)


# --- inference -------------------------------------------------------------------------------------------

_apply_jit = jax.jit(apply_net)
_apply_stored = stored(_apply_jit, "fast_apply")  # one device: loaded whole by a later process

# --- tiled inference (nst_jax.tiling): one layer at a time over the whole image, a band of rows at a time

# whole-image peak 560 bytes a pixel (2.7 GB at 2048 x 2048, 9.4 GB at 4096 x 4096 on XLA:CPU) plus the
# runtime: whether a batch fits whole (nst_jax.tiling.plan)
FOOTPRINT = Footprint(per_pixel=560, fixed=500 << 20)
@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """Every setting of :func:`stylize`, frozen and validated when built.

    Fields:
      size: longest side in px of every content image (``None`` keeps it).
      preserve_color: as for every method (:func:`nst_jax.image.preserve_color`; the network's style is
        fixed, so ``"histogram"`` recolours its output).
      tile: ``"auto"`` (one layer and a band of rows at a time, :func:`apply_net_tiled`, when the whole
        batch would not fit in half the memory available), ``"none"``, or a band height in px.
      devices: N or ``"all"``: each batch split by rows across N devices instead
        (:func:`nst_jax.tiling.row_sharding`; the height after resizing must be a multiple of N).
    """

    size: int | None = 512
    preserve_color: str | None = None
    tile: Any = "auto"
    devices: Any = None

    def __post_init__(self):
        from .tiling import parse_tile

        _image.check_preserve_color(self.preserve_color)
        object.__setattr__(self, "tile", parse_tile(self.tile))


STYLIZE_CONFIG = StylizeConfig()


class Fast(Method):
    """A trained network on the run contract (:mod:`nst_jax.run`): ``model`` and ``style`` as
    :func:`stylize` takes them, loaded once; its style is fixed, so ``preserve_color="histogram"`` recolours
    its output."""

    name = "fast"
    footprint = FOOTPRINT
    fixed_style = True

    def __init__(self, model=None, config: StylizeConfig = STYLIZE_CONFIG, *, style=None,
                 callback=None, **settings):
        self.started = t0 = time.perf_counter()
        self.conf = conf = with_fields(config, settings, "stylize setting")
        self.say = emitter("fast", callback)
        if isinstance(model, dict):
            self.params, self.meta = model, {}
        elif isinstance(model, tuple):
            self.params, self.meta = model
        else:
            self.params, self.meta = load_model(default_model(style) if model is None else model)
        mix = choose_style(self.params, self.meta, style)
        self.mix = None if mix is None else np.asarray(mix, np.float32)
        self.tile, self.devices, self.preserve_color = conf.tile, conf.devices, conf.preserve_color
        self.load_seconds = time.perf_counter() - t0

    def prepare(self, index: int, content) -> Job:
        c = _image.resize_longest(np.asarray(content, np.float32), self.conf.size)
        if min(c.shape[:2]) < MULTIPLE:
            raise NSTError(f"image {c.shape[0]}x{c.shape[1]} is too small: both sides must be at least "
                           f"{MULTIPLE} px")
        return Job(index, c, c.shape)

    def run(self, jobs: list[Job], placement: Placement, callback) -> list:
        t1 = time.perf_counter()
        (h, w), rows = jobs[0].shape, placement.rows
        self.say(f"stylising {len(jobs)} image(s) of {w}x{h}")
        x = np.stack([j.content for j in jobs])
        tile_rows = None
        if rows is not None:
            y = _apply_jit(replicate(self.params, rows), shard_rows(x, rows), replicate(self.mix, rows))
        elif placement.band:
            tile_rows = self.tile if isinstance(self.tile, int) else max(1, TILE_PIXELS // w)
            self.say(f"one layer at a time, in bands of {tile_rows} rows")
            y = apply_net_tiled(self.params, x, self.mix, tile_rows)
        else:
            y = _apply_stored(self.params, x, self.mix)
        y = to_host(y)
        entries = {"timings": {"load": self.load_seconds, "stylise": time.perf_counter() - t1},
                   "tile_rows": tile_rows}
        self.load_seconds = 0.0  # counted in the first batch's report only
        return [(y[j], dict(entries)) for j in range(len(jobs))]


def stylize_many(contents, model=None, config: StylizeConfig = STYLIZE_CONFIG, *, style=None,
                 batch: int | None = None, callback=None, **settings):
    """:func:`stylize` for a list of contents, yielding a :class:`nst_jax.run.Result` per content as its
    batch finishes; a content that cannot be stylised (too small) yields its error first, the others run."""
    contents = list(contents)
    if not contents:
        raise NSTError("no content images given")
    method = Fast(model, config, style=style, callback=callback, **settings)
    yield from run_pictures(method, contents, batch=batch, callback=callback)


def stylize(contents, model=None, config: StylizeConfig = STYLIZE_CONFIG, *, style=None,
            batch: int | None = None, callback=None, **settings):
    """Stylise one image or a list of images with a trained network, in one forward pass.

    ``model``: a shipped model or style name, a ``.npz`` path, parameters, or ``(params, meta)``; ``None``:
    :func:`default_model` (the network that paints ``style``, else :data:`DEFAULT_MODEL`).
    ``config``: a :class:`StylizeConfig`; ``**settings`` replace its fields by name (``size=256``).
    ``style`` (conditional networks): a style name, an index or ``{name: weight}`` (see :func:`style_mix`);
    a shipped style name given as ``model`` chooses its style itself.  Images that have the same shape after
    resizing run in batches of ``batch`` (``None``: as many as fit in the memory available on a GPU or TPU,
    one at a time on a CPU, :func:`nst_jax.tiling.plan`).  ``callback``: receives an
    :class:`nst_jax.runinfo.Event` per stage.
    Returns ``(images, report)``: a list of ``(H, W, 3)`` float32 arrays in [0, 1] (a single array when a
    single array was given) and the report every method returns (:func:`nst_jax.runinfo.report`).
    """
    single = isinstance(contents, np.ndarray) and contents.ndim == 3
    return collect(stylize_many([contents] if single else contents, model, config, style=style, batch=batch,
                                callback=callback, **settings), single)


__all__ = ["STYLIZE_CONFIG", "StylizeConfig", "apply_net", "apply_net_tiled",
           "choose_style", "count_params", "init_net", "instance_norm", "load_model",
           "model_styles", "num_styles", "save_model", "shipped_models", "shipped_styles", "style_mix",
           "stylize", "stylize_many", "Fast", "DEFAULT_MODEL", "default_model"]

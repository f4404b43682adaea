"""The Gatys objective evaluated a band of rows at a time: the same loss and gradient as the whole image,
with the network's activations held for one band (plus its halo) instead of the whole picture."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import NSTError
from ..tiling import equal_bands
from ..vgg import LAYERS, check_layers, min_size
from .objective import Config, features, image_terms, objective, style_counts, style_key, summarise


class Bands:
    """The geometry of evaluating VGG-19 at ``layers`` on images of ``shape`` (N, H, W, 3) ``band`` rows
    at a time: the band slices (:func:`nst_jax.tiling.equal_bands`, one length for all), the whole image's
    feature-map shapes and each layer's stride, and the row mask that keeps a band's own rows of a feature
    map."""

    def __init__(self, params, shape, layers, cfg: Config, band: int):
        self.layers = tuple(dict.fromkeys(layers))
        halo, align = band_halo(self.layers)
        self.height = shape[1]
        self.length, slices = equal_bands(self.height, -(-band // align) * align, halo, align)
        self.geometry = jnp.asarray(slices, jnp.int32)  # (bands, 3): start, stop, lo
        self.shapes = jax.eval_shape(lambda y: features(params, y, self.layers, cfg),
                                     jax.ShapeDtypeStruct(tuple(shape), jnp.float32))
        self.strides = {k: 2 ** sum(1 for m in LAYERS[: LAYERS.index(k)] if m.startswith("pool"))
                        for k in self.layers}

    def own(self, f, name, g):
        """``f`` (band ``g``'s map at layer ``name``) with rows outside the band's own set to zero."""
        start, stop, lo = g[0], g[1], g[2]
        s = self.strides[name]
        rows = lo // s + jnp.arange(f.shape[1])
        end = jnp.where(stop == self.height, self.shapes[name].shape[1], stop // s)
        return f * ((rows >= start // s) & (rows < end))[None, :, None, None].astype(f.dtype)

    def place(self, whole, part, name, g):
        """``part`` (a band's map at ``name``, own rows only) added into ``whole`` at the band's rows."""
        at = g[2] // self.strides[name]
        old = jax.lax.dynamic_slice_in_dim(whole, at, part.shape[1], axis=1)
        return jax.lax.dynamic_update_slice_in_dim(whole, old + part, at, axis=1)

    def rows(self, whole, name, g, count: int):
        """The ``count`` rows of ``whole`` (a map at ``name``) that band ``g``'s map covers."""
        return jax.lax.dynamic_slice_in_dim(whole, g[2] // self.strides[name], count, axis=1)

    def guide(self, guides, name, g, count: int):
        """The rows of the regions' weights at ``name`` ((R, N, H, W, 1), or ``None``) that band ``g``
        covers."""
        if guides is None:
            return None
        return jax.vmap(lambda w: self.rows(w, name, g, count))(guides[name])


def banded_summary(params, image, content_layers, style_layers, cfg: Config, guides=None):
    """``({layer: whole feature map}, {layer: Sums})`` of images (N, H, W, 3) computed ``cfg.execution.band``
    rows at a time (one ``lax.scan``): each band writes its own rows' features into the whole maps (content
    layers) and adds its own rows' sums (style layers; the representation's :class:`nst_jax.style.Sums`,
    one weighted set per region with ``guides``, ``{layer: (R, N, H, W, 1)}``)."""
    rep = cfg.objective.style_loss
    if style_layers and rep.sums is None:
        raise NSTError(f"style loss {rep.name!r} is not a sum over positions and cannot be computed in "
                       "bands: use --tile none, or a smaller --size")
    b = Bands(params, image.shape, tuple(content_layers) + tuple(style_layers), cfg, cfg.execution.band)

    def step(carry, g):
        maps, sums = carry
        f = features(params, jax.lax.dynamic_slice_in_dim(image, g[2], b.length, axis=1), b.layers, cfg)
        maps = {k: b.place(maps[k], b.own(f[k], k, g), k, g) for k in maps}
        sums = {k: jax.tree_util.tree_map(jnp.add, sums[k], summarise(rep, b.own(f[k], k, g),
                                                                      b.guide(guides, k, g, f[k].shape[1])))
                for k in sums}
        return (maps, sums), None

    zero_map = {k: jnp.zeros(b.shapes[k].shape, jnp.float32) for k in content_layers}
    zero_sums = {k: jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(
        lambda f, w: summarise(rep, f, w), b.shapes[k], None if guides is None else guides[k]))
                 for k in style_layers}
    (maps, sums), _ = jax.lax.scan(step, (zero_map, zero_sums), b.geometry)
    return maps, sums


def band_halo(layers) -> tuple[int, int]:
    """``(halo, align)`` for exact features at ``layers`` from a band of rows: every 3x3 convolution reaches
    one row further at its resolution and every pooling up to one stride further, so a band computed with
    ``halo`` extra rows on each side (rounded up to the pooling grid, ``align`` rows) has its own rows'
    features exactly as the whole image has them.  Band starts must be multiples of ``align``."""
    deepest = max(LAYERS.index(name) for name in check_layers(layers))
    stride, reach = 1, 0
    for name in LAYERS[: deepest + 1]:
        if name.startswith(("conv", "pool")):
            reach += stride
        if name.startswith("pool"):
            stride *= 2
    align = min_size(layers)
    return -(-reach // align) * align, align


def gatys_value_and_grad_banded(params, x, targets, weights, cfg: Config, key=None):
    """``((loss, terms), gradient)`` of :func:`gatys_loss` at ``x`` (N, H, W, 3), equal to
    ``jax.value_and_grad(gatys_loss, has_aux=True)`` but computed ``cfg.execution.band`` rows at a time, so
    that the network's activations are held for one band (plus its halo, :func:`band_halo`) instead of the
    image.

    :func:`objective` depends on the image through the content layers' maps and the style layers' sums over
    positions (:class:`nst_jax.style.Sums`).  Pass 1 runs the network band by band, assembling the maps from
    each band's own rows and adding up their sums; the loss follows from :func:`objective`, and so does its
    gradient with respect to the maps and sums.  Pass 2 runs each band again and back-propagates, into the
    band and its halo, that gradient dotted with the band's own share of the maps and sums; the shares add up
    over bands to the whole image's gradient (each position counted once).  The terms on the pixels
    (:func:`image_terms`) are taken on the whole image.  Each pass is one ``lax.scan``: one band's activations
    at a time."""
    obj, rep = cfg.objective, cfg.objective.style_loss
    b = Bands(params, x.shape, obj.content_layers + obj.style_layers, cfg, cfg.execution.band)
    regions = targets.get("regions")
    maps, sums = banded_summary(params, x, obj.content_layers, obj.style_layers, cfg, regions)
    counts = style_counts(params, x.shape, obj.style_layers, cfg, regions)
    pixels = image_terms(x, targets)
    dpixels = jax.grad(lambda y: sum(weights[k] * v for k, v in image_terms(y, targets).items()))(x)
    skey = style_key(weights, key)
    (loss, terms), dsummary = jax.value_and_grad(
        lambda sm: objective(sm, counts, pixels, targets, weights, obj, skey), has_aux=True)(
            {"content": maps, "style": sums})

    def band_share(xb, g):
        """Band ``g``'s own share of the maps and sums, dotted with the objective's gradient at them."""
        f = features(params, xb, b.layers, cfg)
        c = sum(jnp.sum(b.rows(dsummary["content"][k], k, g, f[k].shape[1]) * b.own(f[k], k, g))
                for k in obj.content_layers)
        own = {k: summarise(rep, b.own(f[k], k, g), b.guide(regions, k, g, f[k].shape[1]))
               for k in obj.style_layers}
        s = sum(sum(jnp.sum(d * v) for d, v in zip(jax.tree_util.tree_leaves(dsummary["style"][k]),
                                                     jax.tree_util.tree_leaves(own[k]), strict=True))
                for k in obj.style_layers)
        return c + s

    def scatter(grad, g):
        xb = jax.lax.dynamic_slice_in_dim(x, g[2], b.length, axis=1)
        gb = jax.grad(lambda v: band_share(v, g))(xb)
        old = jax.lax.dynamic_slice_in_dim(grad, g[2], b.length, axis=1)
        return jax.lax.dynamic_update_slice_in_dim(grad, old + gb, g[2], axis=1), None

    grad, _ = jax.lax.scan(scatter, dpixels, b.geometry)
    return (loss, terms), grad


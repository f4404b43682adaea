"""Spatial control (Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017, "Controlling Perceptual Factors in
Neural Style Transfer", section 4): each region of the picture, given by a mask, takes its own style image
(optionally only the part of it its own mask marks), each region's statistics taken over its own positions.

A region's mask (a *guidance channel*, values in [0, 1], soft at the borders) is brought to every layer's
feature map (:func:`guides`) in one of the paper's three ways (``mode``):

* ``"simple"``: down-sampled to the layer's grid, each position the mean of the mask over the cell of pixels
  it stands for (the paper resamples the mask; a cell's mean keeps a soft border soft at every layer);
* ``"inside"``: a position belongs to the region as far as every pixel its receptive field sees does: the
  mask's minimum over the receptive field (for a binary mask, the paper's neurons that see only the region;
  they found this keeps strokes from crossing a border);
* ``"all"``: the maximum over the receptive field (neurons that see any of the region).

The receptive fields follow the network's structure: each 3x3 convolution reaches one position further
(the zero padding sees nothing), each 2x2 pooling takes its window.  The paper probes the network with noise
outside the region for the same answer; ``tests/test_regions.py`` checks the two agree.

A region's statistic weights each position by its guide value ``w`` (for the Gram matrix, ``sum_p w_p f_p
f_p^T / (C sum_p w_p)``; :attr:`nst_jax.style.Sums.weighted`).  The paper multiplies the features by the
guide, which weights ``f_p f_p^T`` by ``w_p^2`` and normalises by ``sum_p w_p^2``: the same for binary
masks; on a soft border ``w`` keeps each position's weights over complementary regions summing to 1.  The
style term is the mean of the regions' terms (the paper's equal region weights ``1/R``); a region with no
position at a layer (``"inside"`` at the deep layers of a small region) has no term there.
"""

from __future__ import annotations

import numpy as np

from .errors import NSTError
from .vgg import LAYERS, check_layers

MASK_MODES = ("simple", "inside", "all")


def as_mask(mask, what: str = "mask") -> np.ndarray:
    """A 2-D float32 mask in [0, 1] from a grey (H, W) or colour (H, W, C) array (its channels' mean)."""
    m = np.asarray(mask, np.float32)
    if m.ndim == 3:
        m = m.mean(axis=-1)
    if m.ndim != 2 or min(m.shape) < 1:
        raise NSTError(f"a {what} must be a 2-D (grey) image, not shape {m.shape}")
    if not np.isfinite(m).all() or m.min() < 0.0 or m.max() > 1.0:
        raise NSTError(f"a {what}'s values must be in [0, 1]")
    return m


def check_masks(masks, style_masks, mode: str):
    """The settings of spatial control validated: ``masks`` as one 2-D mask (an array: two styles, inside
    and outside) or a tuple of them (one per style), ``None`` for none; ``style_masks`` as a tuple of 2-D
    masks or ``None`` per style (``None``: none)."""
    if mode not in MASK_MODES:
        raise NSTError(f"mask mode must be one of {', '.join(MASK_MODES)}, not {mode!r}")
    if masks is not None:
        if not isinstance(masks, (list, tuple)):  # one array: one mask (grey, or colour H x W x C)
            masks = as_mask(masks)
            if masks.max() == 0.0:
                raise NSTError("the mask is all black: the first style would go nowhere")
            if masks.min() == 1.0:
                raise NSTError("the mask is all white: the second style would go nowhere")
        else:
            masks = tuple(as_mask(m, f"mask {i}") for i, m in enumerate(masks, 1))
            if not masks:
                raise NSTError("masks must hold one mask per style (or be one mask for two styles)")
            if len({m.shape for m in masks}) > 1:
                raise NSTError("the masks differ in size: give them the same size")
            for i, m in enumerate(masks, 1):
                if m.max() == 0.0:
                    raise NSTError(f"mask {i} is all black: its style would go nowhere")
    if style_masks is not None:
        style_masks = tuple(None if m is None else as_mask(m, f"style mask {i}")
                            for i, m in enumerate(style_masks, 1))
        if masks is None:
            raise NSTError("style masks go with masks on the content")
        for i, m in enumerate(style_masks, 1):
            if m is not None and m.max() == 0.0:
                raise NSTError(f"style mask {i} is all black: no part of its style image would be taken")
    return masks, style_masks


def count(masks) -> int:
    """The regions the masks make: two for one mask (inside, outside), else one per mask; 0 for none."""
    return 0 if masks is None else 2 if isinstance(masks, np.ndarray) else len(masks)


def region_masks(masks, styles: int, shape) -> np.ndarray:
    """The regions (R, H, W) of a picture of ``shape`` (H, W) with ``styles`` style images: one mask (an
    array) with two styles is the first's region, its complement the second's; else one mask per style.
    Each mask is resized to ``shape``."""
    if isinstance(masks, np.ndarray):
        if styles != 2:
            raise NSTError(f"one mask places two styles (inside, outside), not {styles}: give two style "
                           "images, or one mask per style")
        m = resize_mask(masks, shape)
        return np.stack([m, 1.0 - m])
    if len(masks) != styles:
        raise NSTError(f"{len(masks)} masks for {styles} style images: give one mask per style")
    return np.stack([resize_mask(m, shape) for m in masks])


def resize_mask(mask: np.ndarray, shape) -> np.ndarray:
    """``mask`` (h, w) at ``shape`` (H, W): bilinear, with the area average when shrinking (Pillow)."""
    from PIL import Image

    h, w = int(shape[0]), int(shape[1])
    if mask.shape == (h, w):
        return mask.astype(np.float32, copy=False)
    out = Image.fromarray(np.ascontiguousarray(mask, np.float32), mode="F").resize(
        (w, h), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.clip(np.asarray(out, np.float32), 0.0, 1.0)


def guides(regions: np.ndarray, layers, mode: str = "simple") -> dict:
    """``{layer: (R, H_l, W_l)}``: the regions (R, H, W) at each of ``layers``' feature maps (module notes).
    The maps' sizes are VGG-19's: a 2x2 pooling halves a side, dropping an odd last row or column."""
    layers = check_layers(layers)
    if mode not in MASK_MODES:
        raise NSTError(f"mask mode must be one of {', '.join(MASK_MODES)}, not {mode!r}")
    r = np.asarray(regions, np.float32)
    deepest = max(LAYERS.index(k) for k in layers)
    out, stride, g = {}, 1, r
    for name in LAYERS[: deepest + 1]:
        if name.startswith("pool"):
            stride *= 2
            if mode != "simple":
                g = _pool(g, np.min if mode == "inside" else np.max)
        elif name.startswith("conv") and mode != "simple":
            g = _reach(g, mode)
        if name in layers:
            out[name] = _cells(r, stride) if mode == "simple" else g.copy()
    return out


def _cells(r: np.ndarray, stride: int) -> np.ndarray:
    """Each stride x stride cell's mean (the grid a layer ``stride`` pixels apart covers, floor sizes)."""
    n, h, w = r.shape
    hs, ws = h // stride, w // stride
    return r[:, : hs * stride, : ws * stride].reshape(n, hs, stride, ws, stride).mean(axis=(2, 4))


def _pool(g: np.ndarray, reduce) -> np.ndarray:
    n, h, w = g.shape
    return reduce(g[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2), axis=(2, 4))


def _reach(g: np.ndarray, mode: str) -> np.ndarray:
    """A 3x3 window's minimum (``inside``) or maximum (``all``) at every position, the window clipped at the
    borders (zero padding feeds a convolution nothing from either region)."""
    fill = np.inf if mode == "inside" else -np.inf
    p = np.pad(g, ((0, 0), (1, 1), (1, 1)), constant_values=fill)
    h, w = g.shape[1:]
    windows = [p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)]
    return (np.min if mode == "inside" else np.max)(np.stack(windows), axis=0)


__all__ = ["MASK_MODES", "as_mask", "check_masks", "count", "guides", "region_masks", "resize_mask"]

"""Optical flow between video frames, backward warping, and which pixels a flow can be trusted at.

Convention (OpenCV's): ``flow = optical_flow(a, b)`` has ``a(x) ~ b(x + flow(x))`` for every pixel ``x`` of
``a``, ``flow[..., 0]`` along the columns (x) and ``flow[..., 1]`` down the rows (y).  To bring frame t-1's
result onto frame t's pixels, ``warp(result_{t-1}, optical_flow(frame_t, frame_{t-1}))``.

* :func:`optical_flow`: OpenCV's DIS (Kroeger et al. 2016, the ``medium`` preset with variational
  refinement) or Farnebaeck (2003), on the frames' luminance.
* :func:`reliability`: Ruder, Dosovitskiy & Brox 2016 (after Sundaram et al. 2010): a pixel of frame t is
  trusted (weight 1) unless the forward-backward check fails, ``|w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5``
  (disocclusion), or it lies on a motion boundary, ``|grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002``, or its
  flow leaves the frame; ``w^`` is the flow from t to t-1 and ``w~`` the flow from t-1 to t sampled at
  ``x + w^(x)``.
* :func:`long_term_weights`: the weights of several earlier frames, each pixel counted by the closest
  frame that sees it (Ruder et al.'s ``closestFirst``).
"""

from __future__ import annotations

import numpy as np

from .errors import NSTError

FLOWS = ("dis", "farneback")


def _grey(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame, np.float32)
    lum = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    return (np.clip(lum, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow (H, W, 2) float32 from frame ``a`` to frame ``b`` (both (H, W, 3) in [0, 1]): ``a(x) ~
    b(x + flow(x))``."""
    import cv2

    ga, gb = _grey(a), _grey(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(ga, gb, None).astype(np.float32)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=5, winsize=15, iterations=5,
                                            poly_n=7, poly_sigma=1.5, flags=0).astype(np.float32)
    raise NSTError(f"flow must be one of {', '.join(FLOWS)}, not {method!r}")


def _sample_points(flow: np.ndarray):
    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx + flow[..., 0], yy + flow[..., 1]


def inside(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: where ``x + flow(x)`` lies within the frame (bilinear sampling needs no padding)."""
    h, w = flow.shape[:2]
    px, py = _sample_points(flow)
    return (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)


def warp(image: np.ndarray, flow: np.ndarray, fill: np.ndarray | None = None) -> np.ndarray:
    """``image`` (H, W, C) sampled at ``x + flow(x)`` (bilinear): frame t-1's picture on frame t's pixels when
    ``flow`` goes from t to t-1.  Where the flow leaves the frame, ``fill`` (an image of the same shape;
    default: the nearest border pixel)."""
    import cv2

    px, py = _sample_points(flow)
    img = np.asarray(image, np.float32)
    out = cv2.remap(img, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = out.reshape(img.shape)
    if fill is not None:
        out = np.where(inside(flow)[..., None], out, np.asarray(fill, np.float32))
    return out


def reliability(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) float32 weights in {0, 1} for frame t (Ruder et al. 2016): ``backward`` is the flow from t to
    t-1, ``forward`` from t-1 to t; 0 where the forward-backward check fails, on motion boundaries and where
    the flow leaves the frame (see the module notes)."""
    fwd_at = warp(forward, backward)  # w~(x) = w(x + w^(x))
    total = fwd_at + backward
    occluded = np.sum(total ** 2, -1) > 0.01 * (np.sum(fwd_at ** 2, -1) + np.sum(backward ** 2, -1)) + 0.5
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    boundary = du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2 > 0.01 * np.sum(backward ** 2, -1) + 0.002
    return (~occluded & ~boundary & inside(backward)).astype(np.float32)


def reliable_flow(frame: np.ndarray, previous: np.ndarray, method: str = "dis"):
    """``(flow, weights)``: the flow from ``frame`` (t) to ``previous`` (t-1) and :func:`reliability`'s
    weights for it (both flows computed)."""
    backward = optical_flow(frame, previous, method)
    forward = optical_flow(previous, frame, method)
    return backward, reliability(backward, forward)


def long_term_weights(weights: list[np.ndarray]) -> list[np.ndarray]:
    """``weights`` of earlier frames, closest first, made to count each pixel once: frame j keeps its weight
    only where no closer frame trusts the pixel, ``max(c_j - sum_{k closer} c_k, 0)`` (Ruder et al.'s
    ``closestFirst``)."""
    out, seen = [], None
    for c in weights:
        c = np.asarray(c, np.float32)
        out.append(c if seen is None else np.maximum(c - seen, 0.0))
        seen = c if seen is None else seen + c
    return out


def pan_flow(shape, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``(flow, weights)`` from frame t to frame t-1 of a camera pan that moves ``dx`` px right and
    ``dy`` px down per frame (frame t's pixel x shows what frame t-1 showed at ``x + (dx, dy)``); weight 0
    where that leaves the frame."""
    h, w = shape[:2]
    flow = np.empty((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow, inside(flow).astype(np.float32)

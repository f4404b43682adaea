"""Style representations: what the Gatys objective matches of a style image's features, as plug-ins.

A representation is a :class:`StyleLoss`, a pair of pure functions on VGG-19 feature maps (N, H, W, C):

* ``target(features) -> pytree``, computed once from each style image;
* ``distance(features, target, key) -> scalar``, how far a picture's features are from the target; ``key`` is
  a ``jax.random`` key drawn fresh at every evaluation, for representations that sample.

Several style images are blended by mixing their targets (``mix``): a weighted sum where the target is a
statistic linear in the feature distribution (Gram matrices, means), a mixture of samples where it is a sample
of the distribution itself (``swd``, ``mmd-rbf``).  A representation whose statistic is a sum over positions
(:class:`Sums`) keeps ``--tile`` and ``--devices`` exact: the bands' sums add up to the whole image's.

The named representations (:data:`STYLE_LOSSES`):

* ``gram``: Gatys et al.'s Gram matrices (the default);
* ``moments``: per-channel mean and standard deviation (Huang & Belongie's style loss; Li et al. 2017's BN
  statistics);
* ``mmd-poly``: maximum mean discrepancy with the kernel ``k(x, y) = (x.y + c)^2`` (Li et al. 2017, who show
  that Gram matching is this MMD with ``c = 0``), ``c`` the style's mean squared feature norm, so that the
  features' means count beside their second moments; it equals the Gram loss plus
  ``2 c |mean(x) - mean(s)|^2 / C^4``;
* ``mmd-rbf``: MMD with the Gaussian kernel ``exp(-|x - y|^2 / (2 sigma^2))``, ``sigma^2`` the mean squared
  distance between the style's positions, estimated at :data:`MMD_POSITIONS` positions of the picture and of
  the style sample, drawn afresh at every evaluation;
* ``swd``: the sliced Wasserstein distance (Heitz et al. 2021): the features projected on as many random unit
  directions as there are channels, redrawn at every evaluation, and the sorted 1-D distributions matched
  (squared distance between quantiles);
* ``histogram``: Risser, Wilmot & Barnes 2017's histogram loss, ``|O - R(O)|^2`` with ``R`` each channel's
  values remapped to the painting's distribution, the remapping exact by sorting (as EFDM, Zhang et al. 2022):
  the squared distance between each channel's sorted values and the painting's quantiles at the same levels
  (the sliced Wasserstein distance along the channels' own axes).  Risser et al. add it to the Gram loss;
  here it stands alone, as every representation does;
* ``remd``: STROTSS's style term (Kolkin, Salavon & Shakhnarovich 2019): the relaxed earth mover's distance
  between :data:`MMD_POSITIONS` positions of the picture, drawn afresh at every evaluation, and of the
  painting, with the cosine cost ``1 - cos(x, y)``, ``max(mean_i min_j C_ij, mean_j min_i C_ij)`` (a lower
  bound of the exact EMD), plus its moment term ``|mu_x - mu_s|_1 / C + |Sigma_x - Sigma_s|_1 / C^2`` on the
  features divided by the painting's root-mean-square value (STROTSS's features are about unit scale).
  STROTSS takes it over hypercolumns of several layers at once and adds a colour term; here it is taken layer
  by layer, as every representation is.

Each has a default solver, chosen by measurement: L-BFGS (neural-style's) for all but ``swd`` and
``remd`` (STROTSS itself runs Adam), whose
projections, redrawn at every evaluation, L-BFGS's curvature pairs do not follow (at 192 px and 60
iterations it ended farther from the painting on the sliced Wasserstein measure itself than Adam, and than
Gram); Adam does.

``weight`` multiplies the style weight: each named representation's makes its style term at the photo equal
to Gram's (the median over three held-back photo x painting pairs at 192 px, ``experiments/style_losses.py
--calibrate``), so that the default style weight stylises about as strongly with every one (BENCHMARKS.md,
"Style representations").
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from .errors import NSTError
from .losses import GRAM_PRECISION, gram_matrix, gram_sums, mean_std

SAMPLE = 4096  # positions of a style image kept as the target of a sampling representation
MMD_POSITIONS = 1024  # positions of the picture and of the style sample in one MMD estimate
EPS = 1e-5  # under the square root of a variance (as AdaIN's)


@dataclasses.dataclass(frozen=True)
class Sums:
    """A statistic that is a sum over positions, finished by the count: ``summarise(f)`` (zero features give
    zero), ``finish(sums, count) -> statistic`` (the target's form) and ``compare(statistic, target)``.

    ``weighted(f, w)``, when given: the same sums with each position weighted by ``w`` (N, H, W, 1), so that
    ``finish(weighted(f, w), sum(w))`` is the statistic of a weighted region of the image (spatial control,
    :mod:`nst_jax.regions`); ``summarise(f)`` is ``weighted(f, 1)``."""

    summarise: Callable
    finish: Callable
    compare: Callable
    weighted: Callable | None = None


@dataclasses.dataclass(frozen=True)
class StyleLoss:
    """A style representation: ``target(features)`` and ``distance(features, target, key)`` (module notes).

    ``mix(targets, blend)``: one target from several style images' (default: the weighted sum); ``sums``: a
    :class:`Sums` when the statistic is a sum over positions (then ``target`` and ``distance`` may be left
    out); ``stochastic``: whether ``distance`` uses its key; ``weight``: multiplies the style weight;
    ``solver``: the default solver with it (:func:`nst_jax.gatys.stylize`'s ``optimizer=None``)."""

    target: Callable | None = None
    distance: Callable | None = None
    name: str = "custom"
    weight: float = 1.0
    mix: Callable | None = None
    sums: Sums | None = None
    stochastic: bool = False
    solver: str = "lbfgs"

    def __post_init__(self):
        if self.sums is not None:
            s = self.sums
            if self.target is None:
                object.__setattr__(self, "target", lambda f: s.finish(s.summarise(f), _count(f)))
            if self.distance is None:
                object.__setattr__(self, "distance",
                                   lambda f, t, key=None: s.compare(s.finish(s.summarise(f), _count(f)), t))
        if not callable(self.target) or not callable(self.distance):
            raise NSTError("a style loss needs a target(features) and a distance(features, target, key)")

    def mixed(self, targets, blend):
        """The target of a blend of style images (weights summing to 1)."""
        if self.mix is not None:
            return self.mix(targets, blend)
        return jax.tree_util.tree_map(lambda *t: sum(w * v for w, v in zip(blend, t, strict=True)), *targets)

    def value(self, summary, count, target, key):
        """The distance from a summary: the feature map itself, or its :class:`Sums` (then ``count``
        positions)."""
        if self.sums is not None:
            return self.sums.compare(self.sums.finish(summary, count), target)
        return self.distance(summary, target, key)

    def summarise(self, f):
        return f if self.sums is None else self.sums.summarise(f)


def _count(f) -> int:
    return f.shape[1] * f.shape[2]


# --- gram -------------------------------------------------------------------------------------------------

GRAM = StyleLoss(
    name="gram", target=gram_matrix,
    sums=Sums(gram_sums, lambda s, m: s / (s.shape[-1] * m), lambda g, t: jnp.mean((g - t) ** 2),
              weighted=gram_sums))


# --- moments ----------------------------------------------------------------------------------------------

def _moment_finish(s, m):
    mean = s[0] / m
    var = jnp.maximum(s[1] / m - mean ** 2, 0.0)
    return mean, jnp.sqrt(var + EPS)


def _moment_compare(stat, t):
    return jnp.mean((stat[0] - t[0]) ** 2) + jnp.mean((stat[1] - t[1]) ** 2)


MOMENTS = StyleLoss(
    name="moments", weight=2.3, target=lambda f: mean_std(f, EPS),
    distance=lambda f, t, key=None: _moment_compare(mean_std(f, EPS), t),
    sums=Sums(lambda f: (jnp.sum(f, axis=(1, 2)), jnp.sum(f * f, axis=(1, 2))), _moment_finish,
              _moment_compare,
              weighted=lambda f, w: (jnp.sum(f * w, axis=(1, 2)), jnp.sum(f * f * w, axis=(1, 2)))))


# --- mmd-poly ---------------------------------------------------------------------------------------------

def _poly_finish(s, m):
    second, first = s
    c = second.shape[-1]
    gram = second / (c * m)  # Gram's normalisation
    return {"gram": gram, "mean": first / m, "bias": jnp.trace(second / m, axis1=-2, axis2=-1)}


def _poly_compare(stat, t):
    c = stat["gram"].shape[-1]
    # MMD^2 / C^4 with k = (x.y + c0)^2: |G - G_s|^2 / C^2 + 2 c0 |mean - mean_s|^2 / C^4, c0 the style's bias
    return (jnp.mean((stat["gram"] - t["gram"]) ** 2)
            + 2.0 * jnp.mean(t["bias"][..., None] * (stat["mean"] - t["mean"]) ** 2) / c ** 3)


MMD_POLY = StyleLoss(
    name="mmd-poly", weight=0.34,
    sums=Sums(lambda f: (gram_sums(f), jnp.sum(f, axis=(1, 2))), _poly_finish, _poly_compare,
              weighted=lambda f, w: (gram_sums(f, w), jnp.sum(f * w, axis=(1, 2)))))


# --- sampling representations: mmd-rbf and swd -------------------------------------------------------------

def _sample(f, k: int = SAMPLE):
    """``k`` positions of one image's features (1, H, W, C) -> (k, C), chosen by a fixed key: a random subset
    when there are more, every position once (or as evenly as ``k`` allows) plus a random rest when fewer."""
    x = f.reshape(-1, f.shape[-1])
    m = x.shape[0]
    key = jax.random.key(0)
    if m >= k:
        return x[jax.random.permutation(key, m)[:k]]
    idx = jnp.concatenate([jnp.tile(jnp.arange(m), k // m), jax.random.permutation(key, m)[: k % m]])
    return x[idx]


def _mixture(finish, key: str = "sample"):
    """``mix`` for sample targets: the blend's mixture distribution, ``round(w * SAMPLE)`` positions of each
    style's sample, then ``finish`` on the joined sample.  ``key``: the target's sample ("sample", in random
    order: its first positions; "sorted", each channel sorted: evenly spaced quantiles, the same
    distribution)."""
    def take(values, n):
        if key == "sample":
            return values[:n]
        return values[jnp.round(jnp.linspace(0, SAMPLE - 1, n)).astype(jnp.int32)] if n else values[:0]

    def mix(targets, blend):
        counts = [int(round(w * SAMPLE)) for w in blend]
        counts[-1] = SAMPLE - sum(counts[:-1])
        return finish(jnp.concatenate([take(t[key], n) for t, n in zip(targets, counts, strict=True)]))
    return mix


def _sqdist(a, b):
    return (jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :]
            - 2.0 * jnp.matmul(a, b.T, precision=GRAM_PRECISION))


def _rbf_finish(sample):
    # mean squared distance between the sample's positions, in closed form: 2 (E|s|^2 - |E s|^2)
    sigma2 = 2.0 * (jnp.mean(jnp.sum(sample * sample, -1)) - jnp.sum(jnp.mean(sample, 0) ** 2))
    sub = sample[:MMD_POSITIONS]
    kss = jnp.mean(jnp.exp(-jnp.maximum(_sqdist(sub, sub), 0.0) / (2.0 * sigma2)))
    return {"sample": sample, "sigma2": sigma2, "kss": kss}


def _positions(x, key, k: int):
    return x if x.shape[0] <= k else x[jax.random.choice(key, x.shape[0], (k,), replace=False)]


def mmd_rbf_distance(f, t, key):
    """Biased MMD^2 (a V-statistic, never negative) with the Gaussian kernel between :data:`MMD_POSITIONS`
    positions of ``f`` (1, H, W, C), drawn with ``key``, and the first as many of the style sample (itself a
    random choice of the style's positions, the one its ``kss`` was taken over)."""
    x = _positions(f.reshape(-1, f.shape[-1]), key, MMD_POSITIONS)
    s = t["sample"][:MMD_POSITIONS]
    g = 1.0 / (2.0 * t["sigma2"])
    kxx = jnp.mean(jnp.exp(-jnp.maximum(_sqdist(x, x), 0.0) * g))
    kxs = jnp.mean(jnp.exp(-jnp.maximum(_sqdist(x, s), 0.0) * g))
    return kxx + t["kss"] - 2.0 * kxs


MMD_RBF = StyleLoss(name="mmd-rbf", weight=1.6e6, target=lambda f: _rbf_finish(_sample(f)),
                    distance=mmd_rbf_distance, mix=_mixture(_rbf_finish), stochastic=True)


def directions(key, channels: int, count: int | None = None):
    """``count`` (default: ``channels``) random unit vectors of R^channels, as columns (channels, count)."""
    d = jax.random.normal(key, (channels, channels if count is None else count))
    return d / jnp.linalg.norm(d, axis=0, keepdims=True)


def sliced_wasserstein(x, y, dirs):
    """Mean over the columns of ``dirs`` of the squared 2-Wasserstein distance between the 1-D distributions
    of ``x @ d`` (M points) and ``y @ d`` (K points, uniform weights): sorted projections against the other's
    quantiles at the same levels (exact when M = K; linear interpolation of ``y``'s quantile function
    otherwise)."""
    px = jnp.sort(jnp.matmul(x, dirs, precision=GRAM_PRECISION), axis=0)
    py = jnp.sort(jnp.matmul(y, dirs, precision=GRAM_PRECISION), axis=0)
    return jnp.mean((px - quantiles(py, px.shape[0])) ** 2)


def quantiles(sorted_values, m: int):
    """The quantiles of each column of ``sorted_values`` (K, C), sorted along axis 0, at the ``m`` levels
    ``(i + 0.5) / m``: the values themselves when ``m = K``, else linear interpolation between the values at
    levels ``(j + 0.5) / K`` (the ends held)."""
    k = sorted_values.shape[0]
    if m == k:
        return sorted_values
    pos = (jnp.arange(m) + 0.5) * (k / m) - 0.5
    lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, k - 1)
    hi = jnp.clip(lo + 1, 0, k - 1)
    frac = jnp.clip(pos - lo, 0.0, 1.0)[:, None]
    return sorted_values[lo] * (1.0 - frac) + sorted_values[hi] * frac


def swd_distance(f, t, key):
    """Heitz et al.'s loss for one layer: :func:`sliced_wasserstein` of ``f``'s positions against the style
    sample along C random directions, both drawn with ``key``; when the picture has fewer positions than the
    sample, as many of the sample's, drawn at random (equal sizes: exact 1-D transport, and the cost of the
    sort follows the picture's size)."""
    kd, ks = jax.random.split(key)
    x = f.reshape(-1, f.shape[-1])
    return sliced_wasserstein(x, _positions(t["sample"], ks, x.shape[0]), directions(kd, x.shape[-1]))


SWD = StyleLoss(name="swd", weight=2.9, target=lambda f: {"sample": _sample(f)}, distance=swd_distance,
                mix=_mixture(lambda s: {"sample": s}), stochastic=True, solver="adam")


# --- histogram (Risser et al. 2017) and remd (STROTSS) ------------------------------------------------------

def histogram_distance(f, t, key=None):
    """Risser et al.'s histogram loss for one layer, ``mean((O - R(O))^2)`` over positions and channels, with
    ``R`` the exact histogram remapping of each channel of ``f`` (1, H, W, C) to the painting's: the value of
    rank ``i`` of ``M`` becomes the painting's quantile at level ``(i + 0.5) / M`` (:func:`quantiles` of the
    target's ``sorted`` sample).  Its gradient, ``2 (O - R(O)) / (M C)``, is Risser et al.'s."""
    x = jnp.sort(f.reshape(-1, f.shape[-1]), axis=0)
    return jnp.mean((x - quantiles(t["sorted"], x.shape[0])) ** 2)


def _cosine_cost(x, y):
    xn = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    yn = y / jnp.maximum(jnp.linalg.norm(y, axis=-1, keepdims=True), 1e-8)
    return 1.0 - jnp.matmul(xn, yn.T, precision=GRAM_PRECISION)


def relaxed_emd(x, y):
    """STROTSS's relaxed earth mover's distance between point sets ``x`` (M, C) and ``y`` (K, C) with uniform
    weights and the cosine cost: ``max(mean_i min_j C_ij, mean_j min_i C_ij)``, each side's mass sent to its
    nearest points (one of the two marginal constraints dropped), so at most the exact EMD."""
    c = _cosine_cost(x, y)
    return jnp.maximum(jnp.mean(jnp.min(c, axis=1)), jnp.mean(jnp.min(c, axis=0)))


def _moments_of(sample):
    mu = jnp.mean(sample, axis=0)
    d = sample - mu
    return mu, jnp.matmul(d.T, d, precision=GRAM_PRECISION) / sample.shape[0]


def remd_distance(f, t, key):
    """STROTSS's style term for one layer: :func:`relaxed_emd` between :data:`MMD_POSITIONS` positions of
    ``f`` drawn with ``key`` and the first as many of the painting's sample, plus the moment term
    ``|mu_x - mu_s|_1 / C + |Sigma_x - Sigma_s|_1 / C^2`` over the same positions, the features divided by
    the painting's root-mean-square feature value ``t["scale"]``.  (The cosine cost is scale-free, the moments
    are not: on this VGG-19's features (Caffe's, 0-255 input) the unscaled moment term is 1e3-4e5 where the
    relaxed EMD is 0.05-0.7, at relu1_1-relu5_1 of a photo against a painting, and would be all of the loss;
    STROTSS's features are about unit scale, and so are these after the division.)"""
    x = _positions(f.reshape(-1, f.shape[-1]), key, MMD_POSITIONS)
    s = t["sample"][:MMD_POSITIONS]
    mu, cov = _moments_of(x / t["scale"])
    c = x.shape[-1]
    moments = jnp.sum(jnp.abs(mu - t["mean"])) / c + jnp.sum(jnp.abs(cov - t["cov"])) / c ** 2
    return relaxed_emd(x, s) + moments


def _remd_finish(sample):
    scale = jnp.sqrt(jnp.mean(sample ** 2)) + 1e-8
    mu, cov = _moments_of(sample[:MMD_POSITIONS] / scale)
    return {"sample": sample, "scale": scale, "mean": mu, "cov": cov}


HISTOGRAM = StyleLoss(name="histogram", weight=2.0, distance=histogram_distance,
                      target=lambda f: {"sorted": jnp.sort(_sample(f), axis=0)},
                      mix=_mixture(lambda s: {"sorted": jnp.sort(s, axis=0)}, key="sorted"))
REMD = StyleLoss(name="remd", weight=2.2e5, target=lambda f: _remd_finish(_sample(f)), distance=remd_distance,
                 mix=_mixture(_remd_finish), stochastic=True, solver="adam")


STYLE_LOSSES = {r.name: r for r in (GRAM, MOMENTS, MMD_POLY, MMD_RBF, SWD, HISTOGRAM, REMD)}


def style_loss(spec) -> StyleLoss:
    """A :class:`StyleLoss` from a name of :data:`STYLE_LOSSES` or a :class:`StyleLoss` itself."""
    if isinstance(spec, StyleLoss):
        return spec
    if isinstance(spec, str) and spec in STYLE_LOSSES:
        return STYLE_LOSSES[spec]
    raise NSTError(f"style loss must be one of {', '.join(STYLE_LOSSES)} or a StyleLoss, not {spec!r}")


__all__ = ["GRAM", "HISTOGRAM", "MMD_POLY", "MMD_RBF", "MOMENTS", "REMD", "STYLE_LOSSES", "SWD", "StyleLoss",
           "Sums", "directions", "histogram_distance", "mmd_rbf_distance", "quantiles", "relaxed_emd",
           "remd_distance", "sliced_wasserstein", "style_loss", "swd_distance"]

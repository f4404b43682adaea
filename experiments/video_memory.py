"""Peak memory of `nst-jax video` against clip length: frames are streamed, so a clip ten times longer should
need no more memory (the peak of the whole process, from the kernel's rusage).

    python experiments/video_memory.py --frames 12 120
    python experiments/video_memory.py --smoke   # a 2-frame clip of 64x48, one command (the fast network's,
                                                 # unless --methods names others), a temporary folder
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import harness, video_clips  # noqa: E402
from experiments.harness import machine, result_path  # noqa: E402
from experiments.video_clips import PHOTOS, SHARED, pan_frames  # noqa: E402
from nst_jax import image as im  # noqa: E402
from nst_jax import videoio  # noqa: E402


def clip(path: Path, n: int) -> None:
    """``n`` frames of the pan clip, played forwards and backwards."""
    frames = pan_frames(im.load_image(SHARED / PHOTOS["pan"]))
    loop = frames + frames[-2:0:-1]
    videoio.encode(path, (loop[i % len(loop)] for i in range(n)), Fraction(24))


WRAPPER = ("import resource, subprocess, sys; "
           "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); sys.stderr.write(r.stderr); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
           "sys.exit(r.returncode)")


def peak_mib(cmd) -> float:
    """The peak resident memory of ``cmd`` alone (measured by a fresh wrapper process)."""
    r = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return int(r.stdout.split()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[12, 120])
    ap.add_argument("--methods", nargs="+", default=["fast", "adain"])
    ap.add_argument("--work", default="out/video_memory")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        video_clips.FRAMES, video_clips.WIDTH, video_clips.HEIGHT = 2, 64, 48
        a.frames, a.work = [2], str(Path(harness.smoke_results()) / "work")
        if a.methods == ap.get_default("methods"):  # the default: one command, the fast network's
            a.methods = ["fast"]
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    style = ROOT.parent / "shared" / "images" / "starry_night.jpg"
    rows = []
    for method in a.methods:
        for n in a.frames:
            src, out = work / f"clip{n}.mp4", work / f"{method}{n}.mp4"
            if not src.exists():
                clip(src, n)
            out.unlink(missing_ok=True)
            cmd = [str(Path(sys.executable).parent / "nst-jax"), "video", str(src), *([] if method == "fast"
                   else [str(style)]), "-o", str(out), "--method", method, "--quiet"]
            rows.append({"method": method, "frames": n, "peak_rss_mib": peak_mib(cmd),
                         "command": " ".join(cmd[1:]).replace(str(ROOT) + "/", "")})
            print(json.dumps(rows[-1]), flush=True)
    path = Path(result_path("video", "memory.json"))
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

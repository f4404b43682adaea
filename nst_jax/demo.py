"""``make demo``: fetch the weights, stylise a photo with each method, say where the results are.

The photo is ``skimage.data.chelsea()`` (a cat; it ships with scikit-image, a dependency of the ``demo`` /
``dev`` extras) and the style is Van Gogh's *The Starry Night* (1889, public domain), which ships inside
this package (``nst_jax/paintings/``, provenance beside it).  Gatys et al. (L-BFGS over pixels) gives
``out/demo_stylised.png``, AdaIN with the shipped decoder ``out/demo_adain.png`` and the shipped Starry
Night feed-forward network (Johnson et al.) ``out/demo_fast.png``, both in one forward pass at 512 px;
``out/demo_grid.jpg`` shows photo, painting and the three results side by side (README's picture,
``docs/demo_grid.jpg``, is this file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PAINTINGS = Path(__file__).parent / "paintings"


def painting(name: str = "starry_night"):
    """A painting shipped with the package, as float32 RGB in [0, 1] (see ``paintings/PROVENANCE.md``)."""
    from . import image as im

    return im.load_image(PAINTINGS / f"{name}.jpg")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nst_jax.demo")
    ap.add_argument("--out", default="out", help="folder for the results")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=150)
    a = ap.parse_args(argv)
    try:
        from skimage import data
    except ImportError:
        print("demo: needs scikit-image: pip install 'nst_jax[demo]'", file=sys.stderr)
        return 1
    import numpy as np

    from . import adain, feedforward, gatys, weights
    from . import image as im
    from .cli.common import ProgressBar
    from .compile_cache import enable_compilation_cache
    from .errors import NSTError

    try:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        path = weights.fetch(log=lambda m: print(m, file=sys.stderr))
        print(f"VGG-19 weights: {path}", file=sys.stderr)
        enable_compilation_cache()
        content = np.asarray(data.chelsea(), np.float32) / 255.0
        style = painting("starry_night")
        im.save_image(out / "demo_content.png", im.resize_longest(content, a.size))
        im.save_image(out / "demo_style.png", im.resize_longest(style, a.size))
        result, report = gatys.stylize(content, style, size=a.size, iters=a.iters,
                                       callback=ProgressBar())
        dst = im.save_image(out / "demo_stylised.png", result)
        print("AdaIN with the shipped decoder (one forward pass, 512 px):", file=sys.stderr)
        fast, fast_report = adain.stylize(content, style, size=512, style_size=512)
        dst_fast = im.save_image(out / "demo_adain.png", fast)
        johnson, johnson_report = feedforward.stylize(content, "starry_night", size=512)
        dst_johnson = im.save_image(out / "demo_fast.png", johnson)
        grid = im.save_image(out / "demo_grid.jpg", im.contact_sheet([[
            (content, "photo"), (style, "painting (The Starry Night)"), (result, "Gatys et al. (L-BFGS)"),
            (fast, "AdaIN (one pass)"), (johnson, "fast network (one pass)")]]))
    except NSTError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    print(f"stylised {report['width']}x{report['height']} in {report['seconds']:.1f}s "
          f"({report['evaluations']} evaluations, {report['compile_seconds']:.1f}s compiling)")
    print(f"result: {dst.resolve()}  (inputs beside it: demo_content.png, demo_style.png)")
    print(f"AdaIN result ({fast_report['seconds']:.1f}s including compilation): "
          f"{dst_fast.resolve()}")
    print(f"Feed-forward Starry Night network ({johnson_report['seconds']:.1f}s including "
          f"compilation): {dst_johnson.resolve()}")
    print(f"all side by side: {grid.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Images in and out: load / resize / save, and colour preservation.  NumPy + Pillow only.

Every image inside nst_jax is float32 RGB in [0, 1], HWC (or NHWC for batches).  ``load_image`` turns
whatever a user hands us into that -- grey, palette, RGBA (composited over white), 16-bit, CMYK,
EXIF-rotated -- and refuses anything else with an :class:`NSTError` whose message says why.
``save_image`` writes atomically: a temporary file in the destination folder, then a rename, so a
failed or interrupted run never leaves a half-written file or clobbers an existing one.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import NSTError
from .fileio import atomic_write

MAX_PIXELS = 1 << 28  # 268 megapixels: refuse larger (decompression bombs, absurd inputs)


def _decode(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:
            raise NSTError(f"{path} claims an enormous size; refusing to decode it") from None
        except Image.UnidentifiedImageError:
            raise NSTError(f"{path} is not an image Pillow can read") from None
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise NSTError(f"{path} is {w}x{h} ({w * h / 1e6:.0f} megapixels), more than the "
                               f"{MAX_PIXELS / 1e6:.0f} nst_jax reads; downscale it first")
            if w < 1 or h < 1:
                raise NSTError(f"{path} has no pixels ({w}x{h})")
            try:
                im.load()
                im = ImageOps.exif_transpose(im)
            except (Image.DecompressionBombWarning, Image.DecompressionBombError):
                raise NSTError(f"{path} claims an enormous size; refusing to decode it") from None
            return _to_rgb(im, path)


def _to_rgb(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit (or 32-bit int) grey
        a = np.asarray(im, dtype=np.float64)
        scale = 65535.0 if a.max(initial=0) <= 65535 else float(a.max())
        a = np.clip(a / scale, 0, 1)
        return np.repeat(a[..., None], 3, axis=-1).astype(np.float32)
    if mode == "F":
        a = np.clip(np.asarray(im, dtype=np.float32), 0, 1)
        return np.repeat(a[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)  # composite over white
    try:
        return np.asarray(im.convert("RGB"), np.float32) / 255.0
    except (ValueError, OSError) as e:
        raise NSTError(f"{path}: cannot convert image mode {mode} to RGB ({e})") from None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1], shape (H, W, 3), EXIF orientation applied."""
    path = Path(path).expanduser()
    if not path.exists():
        raise NSTError(f"{path} does not exist")
    if path.is_dir():
        raise NSTError(f"{path} is a folder, not an image")
    if path.stat().st_size == 0:
        raise NSTError(f"{path} is empty")
    try:
        return _decode(path)
    except NSTError:
        raise
    except (OSError, SyntaxError, ValueError) as e:  # truncated / corrupt data
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NSTError(f"{path} is damaged or truncated ({reason})") from None


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize float HWC to ``(height, width)`` with Lanczos (antialiased when shrinking)."""
    h, w = int(shape[0]), int(shape[1])
    if image.shape[:2] == (h, w):
        return image.astype(np.float32, copy=False)
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), mode="F")
                        .resize((w, h), Image.Resampling.LANCZOS)) for c in range(image.shape[-1])]
    return np.clip(np.stack(chans, -1), 0.0, 1.0).astype(np.float32)


def fit_shape(shape: tuple[int, int], longest: int) -> tuple[int, int]:
    """(h, w) with the longest side ``longest`` and the aspect ratio kept."""
    h, w = shape[:2]
    scale = longest / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_longest(image: np.ndarray, longest: int | None) -> np.ndarray:
    return image if longest is None else resize(image, fit_shape(image.shape, longest))


def to_uint8(image) -> np.ndarray:
    return (np.clip(np.asarray(image, np.float32), 0, 1) * 255.0 + 0.5).astype(np.uint8)


def output_format(path: str | os.PathLike) -> str:
    """Pillow format for an output path, or an NSTError if the extension is not a writable format."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise NSTError(f"cannot tell the image format of output {path}: use .png, .jpg, .webp, .tif ...")
    return fmt


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Every image file of ``folder``, sorted by name (hidden files and files whose extension no image format
    has are left out)."""
    known = set(Image.registered_extensions())
    return sorted(f for f in Path(folder).iterdir() if f.is_file() and not f.name.startswith(".")
                  and f.suffix.lower() in known)


def check_output(path: str | os.PathLike) -> Path:
    """Fail early -- before any computation -- if ``path`` cannot be written."""
    path = Path(path).expanduser()
    output_format(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise NSTError(f"output folder {parent} does not exist")
    if path.is_dir():
        raise NSTError(f"output {path} is a folder")
    if not os.access(parent, os.W_OK):
        raise NSTError(f"cannot write to folder {parent}")
    return path


def save_image(path: str | os.PathLike, image) -> Path:
    """Write float RGB [0, 1] (H, W, 3) atomically; the format follows the extension."""
    path = check_output(path)
    fmt = output_format(path)
    im = Image.fromarray(to_uint8(image), mode="RGB")
    return atomic_write(path, lambda f: im.save(f, format=fmt,
                                                **({"quality": 95} if fmt in ("JPEG", "WEBP") else {})))


def contact_sheet(rows, thumb: int = 256, label: int = 18) -> np.ndarray:
    """A labelled grid: ``rows`` is a list of rows, each a list of ``(image, text)`` with ``image`` float RGB
    in [0, 1] (H, W, 3); every picture is shrunk to fit ``thumb`` x ``thumb`` and centred in its cell under
    its text.  Returns float32 RGB in [0, 1], for :func:`save_image`."""
    from PIL import ImageDraw

    cells = [[(Image.fromarray(to_uint8(x)), text) for x, text in row] for row in rows]
    for row in cells:
        for c, _ in row:
            c.thumbnail((thumb, thumb), Image.LANCZOS)
    cw = max(c.width for row in cells for c, _ in row)
    ch = max(c.height for row in cells for c, _ in row)
    ncols = max(len(row) for row in cells)
    sheet = Image.new("RGB", (ncols * cw, len(cells) * (ch + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(cells):
        for k, (c, text) in enumerate(row):
            x, y = k * cw, r * (ch + label)
            sheet.paste(c, (x + (cw - c.width) // 2, y + label))
            draw.text((x + 4, y + 3), text, fill="black")
    return np.asarray(sheet, np.float32) / 255.0


# --- colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2016) --------------------------------
# YIQ (NTSC), as used by neural-style's -original_colors.
_RGB2YIQ = np.array([[0.299, 0.587, 0.114],
                     [0.595716, -0.274453, -0.321263],
                     [0.211456, -0.522591, 0.311135]])
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float64) @ _RGB2YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return yiq @ _YIQ2RGB.T


def transfer_luminance(stylised: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance-only transfer: the result's luminance (Y) with the content's chroma (I, Q)."""
    if stylised.shape != content.shape:
        content = resize(content, stylised.shape[:2])
    out = rgb_to_yiq(content)
    out[..., 0] = rgb_to_yiq(stylised)[..., 0]
    return np.clip(yiq_to_rgb(out), 0, 1).astype(np.float32)


def match_histogram(source: np.ndarray, target: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Colour histogram matching: an affine map giving ``source``'s colours ``target``'s mean and
    covariance (the "image analogies" square-root variant of Gatys et al. 2016, section 2.1; the same map
    is pytorch-AdaIN's CORAL, Sun et al. 2016).  Computed in float64."""
    src = np.asarray(source, np.float64).reshape(-1, 3)
    tgt = np.asarray(target, np.float64).reshape(-1, 3)
    mu_s, mu_t = src.mean(0), tgt.mean(0)
    cov_s = np.cov(src, rowvar=False) + eps * np.eye(3)
    cov_t = np.cov(tgt, rowvar=False) + eps * np.eye(3)

    def sqrtm(c, inverse=False):
        vals, vecs = np.linalg.eigh(c)
        vals = np.maximum(vals, eps)
        return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T

    a = sqrtm(cov_t) @ sqrtm(cov_s, inverse=True)
    out = (src - mu_s) @ a.T + mu_t
    return np.clip(out, 0, 1).reshape(np.shape(source)).astype(np.float32)


PRESERVE_COLOR = ("luminance", "histogram")


def check_preserve_color(mode: str | None) -> None:
    """``None``, ``"luminance"`` or ``"histogram"``; anything else is one clear error."""
    if mode is not None and mode not in PRESERVE_COLOR:
        raise NSTError(f"preserve-color must be 'luminance' or 'histogram', not {mode!r}")


def preserve_color(mode: str | None, content: np.ndarray, styles=None, stylised=None, fixed_style=False):
    """Colour preservation (Gatys et al. 2016, "Preserving color in neural artistic style transfer"), one
    meaning per mode for every method:

    * ``"histogram"``: the style's colours are given the content's mean and covariance
      (:func:`match_histogram`).  Methods that read style images recolour them *before* stylising (pass
      ``styles``: returns them recoloured); a network whose style is fixed (``fixed_style=True``) cannot,
      so its output is recoloured instead (pass ``stylised``).
    * ``"luminance"``: the stylised luminance with the content's chroma (:func:`transfer_luminance`), after
      stylising (pass ``stylised``).
    * ``None``: nothing.

    Called once with ``styles`` before and once with ``stylised`` after, it does each mode's part at the
    right time and passes the rest through.
    """
    check_preserve_color(mode)
    if stylised is None:
        return [match_histogram(s, content) for s in styles] if mode == "histogram" and not fixed_style \
            else styles
    if mode == "luminance":
        return transfer_luminance(stylised, content)
    if mode == "histogram" and fixed_style:
        return match_histogram(stylised, content)
    return stylised

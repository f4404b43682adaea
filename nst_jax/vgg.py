"""A pure-function VGG-19 (Simonyan & Zisserman 2014) for feature extraction.

``vgg19_features(params, images, layers)`` runs the convolutional part of VGG-19 on NHWC RGB images in
[0, 1] and returns ``{name: activation}`` for exactly the requested layers, computing nothing beyond the
deepest of them.  Layer names are the papers': ``conv1_1`` ... ``conv5_4`` (before the ReLU),
``relu1_1`` ... ``relu5_4``, ``pool1`` ... ``pool5``.  Everything is jit-able and holds no state.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from . import weights as _weights
from .errors import NSTError

BLOCKS = _weights.BLOCKS


def _layer_sequence() -> tuple[str, ...]:
    seq = []
    for b, n in enumerate(BLOCKS, 1):
        for i in range(1, n + 1):
            seq += [f"conv{b}_{i}", f"relu{b}_{i}"]
        seq.append(f"pool{b}")
    return tuple(seq)


LAYERS: tuple[str, ...] = _layer_sequence()
"""Every layer name in network order."""
_INDEX = {name: i for i, name in enumerate(LAYERS)}


def vgg19_params(weights=None, log=None, upto: Iterable[str] | str | None = None) -> dict:
    """The VGG-19 parameter pytree (float32 JAX arrays).

    ``weights``: ``None`` for the fetched, verified ImageNet weights (cached under ``$NST_JAX_HOME``; the
    environment variable ``NST_JAX_WEIGHTS`` overrides), a path to a Keras ``.h5``, an nst_jax ``.npz`` or
    a torchvision ``.pth``, or an already-loaded pytree (returned as JAX arrays).  ``upto``: a layer name, or
    the layers a method will ask for: only the convolutions up to the deepest of them are read (AdaIN's
    encoder to relu4_1 is 14 MB of the 80; ``None``: all of them).
    """
    if isinstance(weights, dict):
        tree = weights
    else:
        last = None if upto is None else last_conv([upto] if isinstance(upto, str) else upto)
        tree = _weights.load(_weights.resolve(weights, log=log), upto=last)
    return jax.tree_util.tree_map(as_float32, tree)


def last_conv(layers: Iterable[str]) -> str:
    """The deepest convolution the layers ``layers`` need."""
    deepest = max(_INDEX[name] for name in check_layers(layers))
    return next(n for n in reversed(LAYERS[: deepest + 1]) if n.startswith("conv"))


def as_float32(a):
    """``a`` as a float32 JAX array: a float32 one as it is, anything else transferred from a NumPy copy
    (``jnp.asarray`` of a NumPy array compiles a small program for each new shape, ~20 ms each)."""
    if isinstance(a, jax.Array) and a.dtype == jnp.float32:
        return a
    return jax.device_put(np.asarray(a, np.float32))


def check_layers(layers: Iterable[str]) -> tuple[str, ...]:
    layers = tuple(layers)
    bad = [name for name in layers if name not in _INDEX]
    if bad:
        raise NSTError(f"unknown VGG-19 layer(s) {', '.join(bad)}; valid names are conv1_1..conv5_4, "
                       "relu1_1..relu5_4, pool1..pool5")
    if not layers:
        raise NSTError("no VGG-19 layers requested")
    return layers


def min_size(layers: Iterable[str]) -> int:
    """Smallest image side for which every requested layer has at least one pixel."""
    deepest = max(_INDEX[name] for name in check_layers(layers))
    pools = sum(1 for name in LAYERS[: deepest + 1] if name.startswith("pool"))
    return 2 ** pools


def _pool(x, kind: str):
    """2x2 pooling, stride 2, no padding, floor on odd sizes.

    Written as a reshape + reduction rather than ``lax.reduce_window``: same values, but its gradient
    is a vectorised mask instead of ``select_and_scatter``, which is ~9x slower on XLA:CPU.  (Where a
    2x2 max window has ties, the gradient is shared between them; PyTorch gives it to one of them.)
    """
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
    return x.max(axis=(2, 4)) if kind == "max" else x.mean(axis=(2, 4))


# --- 3x3 convolutions ------------------------------------------------------------------------------
# Winograd F(4x4, 3x3) (Lavin & Gray 2016): each 4x4 output tile costs 36 multiplications per (input, output)
# channel pair instead of 144.  The transforms are written as separable strided slices and adds, so the work
# left is one batched product of the 36 tile positions' (pixels/16 x Cin) @ (Cin x Cout) matrices.  The
# interpolation points are 0, +-2, +-1/2 and infinity: of the sets tried (0, +-1, +-2 the usual one), the most
# accurate in float32 (relative error 1.8-2.5e-6 against float64 at VGG-19's 256- and 512-channel layers,
# 2.8-3.8e-6 with +-1 and +-2, 0.3-0.6e-6 for F(2x2, 3x3); experiments/winograd_points.py), and closed under
# p -> 1/p, so the flipped kernel's transform is the kernel's with its tile positions permuted (the backward
# pass below).  On XLA:CPU (AMD EPYC, 256 px) VGG-19's layers as "auto" runs them take 177 / 168 ms forward /
# input gradient against 226 / 208 with F(2x2, 3x3) and 338 / 359 with lax.conv everywhere; F(4x4) is faster
# than F(2x2) on every layer of 64 x 64 and more, slower in the input gradient at 32 x 32 and 16 x 16 (few
# tiles), and slower than lax.conv on the wide, shallow layers, which keep it (experiments/bench_layers.py).
# ``conv="auto"`` takes Winograd there unless ``$NST_JAX_CONV`` says otherwise ("direct" or "winograd" for
# every layer), read when a program is traced: Winograd's program compiles in about three times lax.conv's
# time (experiments/compile_vgg.py), which pays wherever the run is longer than the compile.  In bfloat16
# (mixed precision) "auto" takes nine shifted 1x1 products instead for those layers: plain matrix products,
# which XLA:CPU runs on AMX's bfloat16 tiles (Intel Xeon) where it runs neither lax.conv nor Winograd's small
# products faster than in float32 (experiments/bench_layers.py; BENCHMARKS.md "Mixed precision on the CPU").
#
# Rows in the order of the points 0, 2, 1/2, -2, -1/2, infinity.  G = diag(_WINO_D) _WINO_G: an integer part
# (entries 0, +-1, +-2, 4: its products with a float32 kernel are exact) and one scale a row, chosen equal
# for p and 1/p, so that G flip(g) is exactly G g with rows _FLIP swapped.
_WINO_G = np.array([[1, 0, 0], [1, 2, 4], [4, 2, 1], [1, -2, 4], [4, -2, 1], [0, 0, 1]], np.float32)
_WINO_D = np.array([1 / 4, 1 / 60, 1 / 60, 1 / 60, 1 / 60, 1 / 4])
_WINO_BT = np.array([[4, 0, -17, 0, 4, 0], [0, -1, -0.5, 4, 2, 0], [0, 16, 32, -4, -8, 0],
                     [0, 1, -0.5, -4, 2, 0], [0, -16, 32, 4, -8, 0], [0, 4, 0, -17, 0, 4]], np.float32)
_WINO_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 2, 0.5, -2, -0.5, 0], [0, 4, 0.25, 4, 0.25, 0],
                     [0, 8, 0.125, -8, -0.125, 1]], np.float32)
WINO_TILE = 4  # output pixels a tile side: F(4x4, 3x3), input tiles of 6x6 at stride 4


def winograd_matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A^T, B^T, G) of the F(4x4, 3x3) used here, in float64: y = A^T [(G g G^T) * (B^T d B)] A for a 6x6
    input tile d and a 3x3 kernel g (experiments/winograd_points.py checks them against Toom-Cook's
    construction for the points 0, 2, 1/2, -2, -1/2 and infinity)."""
    return (_WINO_AT.astype(np.float64), _WINO_BT.astype(np.float64),
            _WINO_G.astype(np.float64) * _WINO_D[:, None])


# Where "auto" takes Winograd on CPU: layers of >= 256 output channels, and of 128 where the picture is at
# most 128 x 128 (larger, the transforms' memory traffic outweighs the products saved: conv2_1 at 256 x 256
# runs 1.5x slower forward than lax.conv, at 128 x 128 2x faster; experiments/bench_layers.py).
WINOGRAD_MIN_COUT = 256
WINOGRAD_SMALL = (128, 128 * 128)  # (output channels, at most this many pixels)
CONV_ENV = "NST_JAX_CONV"
CONVS = ("auto", "direct", "winograd", "shifted")  # shifted: nine 1x1 products (:func:`conv3x3`)


def _rows(matrix, terms):
    """``matrix @ terms`` for a small constant matrix and a list of arrays: sums of the nonzero terms."""
    out = []
    for row in matrix:
        acc = None
        for c, t in zip(row, terms, strict=True):
            if c:
                t = t if c == 1 else -t if c == -1 else t * t.dtype.type(c)
                acc = t if acc is None else acc + t
        out.append(acc)
    return out


def winograd_kernel(kernel):
    """G g G^T for every (input, output) channel pair: (3, 3, Cin, Cout) -> (6, 6, Cin, Cout); a NumPy
    kernel on the host, where a program compiled per layer shape would cost more than the products.  In the
    kernel's own type: the integer part of G (x) G holds 0, +-1, +-2, +-4, +-8 and 16, so every product is
    exact, the sums of up to nine round, then the rows' scales once (within 2.5e-7 of the float64 transform,
    tested)."""
    scale = np.outer(_WINO_D, _WINO_D).astype(kernel.dtype)
    if isinstance(kernel, np.ndarray):  # one (36, 9) @ (9, Cin * Cout) product: G (x) G on the 3 x 3 taps
        gg = np.einsum("ia,jb->ijab", _WINO_G, _WINO_G).reshape(36, 9).astype(kernel.dtype)
        cin, cout = kernel.shape[2:]
        return ((gg @ kernel.reshape(9, cin * cout)) * scale.reshape(36, 1)).reshape(6, 6, cin, cout)
    # in a program (a network's weights are its arguments), as sums of the taps: an einsum over the taps'
    # axes took 71 ms for a 512 x 512 kernel on a 2-core CPU, 8x the convolution it serves at 32 x 32 px;
    # the (36, 9) product 33 ms, these sums 16 ms
    rows = _rows(_WINO_G, [kernel[a] for a in range(3)])  # G g: six (3, Cin, Cout)
    u = [_rows(_WINO_G, [r[b] for b in range(3)]) for r in rows]  # (G g) G^T: six of six (Cin, Cout)
    return jnp.stack([jnp.stack([u[i][j] * scale[i, j] for j in range(6)]) for i in range(6)])


def with_winograd(params: dict) -> dict:
    """``params`` plus each Winograd-eligible layer's transformed kernel (key ``"winograd"``).

    Optional: :func:`vgg19_features` transforms kernels itself when this is absent.  Solvers that
    evaluate the network many times call it once, so the transform is not repeated per evaluation.
    """
    out = dict(params)
    for name, p in params.items():
        if not name.startswith("conv") or "winograd" in p:
            continue
        if _use_winograd("auto", p["kernel"].shape[-1], 0, jnp.float32):  # any size: 0 pixels
            k = p["kernel"]
            out[name] = {**p, "winograd": winograd_kernel(k) if isinstance(k, jax.core.Tracer) else
                         jax.device_put(winograd_kernel(np.asarray(k, np.float32)))}
    return out


# G flip(g) = S G g with S swapping the rows of p and 1/p (0 and infinity, 2 and 1/2, -2 and -1/2), so the
# transformed kernel of the spatially flipped kernel is the transformed kernel with its tile positions
# permuted (an involution).
_FLIP = (5, 2, 1, 4, 3, 0)
_SAME = (0, 1, 2, 3, 4, 5)


def _tile_grid(h, w):
    return -(-h // WINO_TILE), -(-w // WINO_TILE)


def _tiles(x, order=_SAME):
    """The 36 transformed input tiles B^T d B of every 6x6 tile d (stride 4) of ``x`` padded by one:
    (36, N * th * tw, C), tile position t = 6 i + j taken as (order[i], order[j]); sizes that are not a
    multiple of 4 take extra zero rows/columns."""
    n, h, w, c = x.shape
    th, tw = _tile_grid(h, w)
    s = WINO_TILE
    xp = jnp.pad(x, ((0, 0), (1, 1 + s * th - h), (1, 1 + s * tw - w), (0, 0)))
    rows = _rows(_WINO_BT[list(order)], [xp[:, a: a + s * th: s] for a in range(6)])
    rows = jnp.stack(rows)  # (6, N, th, W + 2, C)
    v = _rows(_WINO_BT[list(order)], [rows[:, :, :, b: b + s * tw: s] for b in range(6)])
    return jnp.stack(v, 1).reshape(36, n * th * tw, c)  # from (6, 6, N, th, tw, C)


def _untiled(m, shape, order=_SAME):
    """A^T M A of the (36, N * th * tw, C) products (tile positions in ``order``, as :func:`_tiles` took
    them), back to the (N, H, W, C) picture."""
    n, h, w = shape
    th, tw = _tile_grid(h, w)
    s = WINO_TILE
    m = m.reshape(6, 6, n, th, tw, -1)
    at = _WINO_AT[:, list(order)]
    o = jnp.stack(_rows(at, [m[i] for i in range(6)]))  # (4, 6, N, th, tw, C): rows
    o = jnp.stack(_rows(at, [o[:, j] for j in range(6)]), 1)  # (4, 4, N, th, tw, C): columns
    return o.transpose(2, 3, 0, 4, 1, 5).reshape(n, s * th, s * tw, -1)[:, :h, :w]


def _winograd_products(x, u, adjoint=False):
    """The convolution of ``x`` by the transformed kernel ``u`` (6, 6, Cin, Cout): the 36 tile positions'
    products as one batched matrix product, in ``x``'s dtype (bfloat16: float32 sums, then rounded).
    ``adjoint``: by the flipped kernel with its channel axes swapped (``x`` has Cout channels), the tile
    positions permuted on the pictures' side rather than copying ``u``."""
    n, h, w, c = x.shape
    order = _FLIP if adjoint else _SAME
    spec = "tpo,tco->tpc" if adjoint else "tpc,tco->tpo"
    m = jnp.einsum(spec, _tiles(x, order), u.reshape(36, *u.shape[2:]),
                   preferred_element_type=_accumulation(x.dtype))
    return _untiled(m, (n, h, w), order).astype(x.dtype)


@jax.custom_vjp
def _conv_winograd(x, u):
    """The convolution by the transformed kernel ``u`` (6, 6, Cin, Cout), in ``x``'s dtype.

    Its input gradient is said explicitly, as the direct convolution's is: a stride-1 "SAME" 3x3
    convolution's adjoint is the convolution by the flipped kernel with its channel axes swapped, so the
    backward pass is one more Winograd convolution of the output's cotangent (forward-style strided slices,
    one batched product), not autodiff's transpose of the tile extraction.  That keeps the program small:
    with F(2x2, 3x3), VGG-19's value and input gradient at 192 x 256 px compiled in 1.2-1.4 s against
    4.6-5.3 s for 16 separate products per layer differentiated by autodiff, and ran 0.88-0.94 of their time
    (experiments/compile_vgg.py; F(4x4, 3x3) as now: 2.4 s on a 2-core AMD EPYC)."""
    return _winograd_products(x, u)


def _conv_winograd_fwd(x, u):
    return _winograd_products(x, u), (x, u)


def _conv_winograd_bwd(res, dy):
    x, u = res
    dy = dy.astype(x.dtype)
    dx = _winograd_products(dy, u, adjoint=True)
    # the exact kernel cotangent, which XLA drops when it is unused (VGG-19 is never trained here)
    du = jax.vjp(lambda k: _winograd_products(x, k), u)[1](dy)[0]
    return dx, du


_conv_winograd.defvjp(_conv_winograd_fwd, _conv_winograd_bwd)


def _accumulation(dtype):
    """The type products of ``dtype`` values are summed in: float32 for bfloat16 (mixed precision: bfloat16
    operands, float32 sums, the convolution's result rounded to bfloat16), else the operands' own."""
    return jnp.float32 if dtype == jnp.bfloat16 else None


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def _cotangent_as(y, dtype):
    """``y`` itself; its cotangent is cast to ``dtype`` on the way back (so that a float32 sum of bfloat16
    products is transposed into bfloat16 products, not float32 ones)."""
    return y


def _cotangent_as_fwd(y, dtype):
    return y, None


def _cotangent_as_bwd(dtype, _, g):
    return (g.astype(dtype),)


_cotangent_as.defvjp(_cotangent_as_fwd, _cotangent_as_bwd)


def _plain_conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _lax_conv(x, kernel):
    acc = _accumulation(x.dtype)
    if acc is None:
        return _plain_conv(x, kernel)
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        preferred_element_type=acc).astype(x.dtype)


@jax.custom_vjp
def _conv_direct(x, kernel):
    return _lax_conv(x, kernel)


def _conv_direct_fwd(x, kernel):
    return _lax_conv(x, kernel), (x, kernel)


def _conv_direct_bwd(res, dy):
    # The input gradient of a stride-1 SAME 3x3 convolution is the forward convolution of dy with
    # the kernel flipped in space and with its channel axes swapped.  Saying so explicitly (rather
    # than leaving it to autodiff's transposed convolution) is bit-identical and, inside a
    # while loop (our solvers' fori_loop), ~3.5x faster on XLA:CPU, whose generic transposed
    # convolution path is slow there.  The kernel gradient is autodiff's (of the convolution in the
    # operands' own type: in bfloat16, bfloat16 operands); XLA drops it when unused.
    x, kernel = res
    dx = _lax_conv(dy, jnp.flip(kernel, (0, 1)).swapaxes(2, 3))
    _, kernel_vjp = jax.vjp(lambda k: _plain_conv(x, k), kernel)
    return dx, kernel_vjp(dy)[0]


_conv_direct.defvjp(_conv_direct_fwd, _conv_direct_bwd)


def default_conv() -> str:
    """What ``conv="auto"`` means in this process: ``$NST_JAX_CONV`` (one of :data:`CONVS`; unset:
    "auto")."""
    conv = os.environ.get(CONV_ENV, "auto") or "auto"
    if conv not in CONVS:
        raise NSTError(f"{CONV_ENV} must be one of {', '.join(CONVS)}, not {conv!r}")
    return conv


def _use_winograd(conv: str, cout: int, pixels: int, dtype) -> bool:
    if conv == "auto":
        conv = default_conv()
    if conv == "auto":  # float32 only: in bfloat16 its transforms would round the picture (shifted products)
        small_cout, max_pixels = WINOGRAD_SMALL
        return jax.default_backend() == "cpu" and dtype == jnp.float32 and (
            cout >= WINOGRAD_MIN_COUT or (cout >= small_cout and pixels <= max_pixels))
    return conv == "winograd"


def _conv_shifted(x, kernel):
    """The convolution as nine 1x1 products of the picture shifted by each kernel tap: plain matrix products,
    which XLA:CPU runs on AMX's bfloat16 tiles where it does not run ``lax.conv``'s."""
    _, h, w, _ = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    acc = _accumulation(x.dtype)

    def product(a, b):
        y = jnp.einsum("nhwc,co->nhwo", xp[:, a: a + h, b: b + w], kernel[a, b], preferred_element_type=acc)
        return y if acc is None else _cotangent_as(y, x.dtype)

    return sum(product(a, b) for a in range(3) for b in range(3)).astype(x.dtype)


SHIFTED_MIN_COUT = 256  # bfloat16 on CPU: measured in experiments/bench_layers.py


def _use_shifted(conv: str, cout: int, dtype) -> bool:
    if conv == "auto":
        conv = default_conv()
    if conv == "auto":
        return jax.default_backend() == "cpu" and dtype == jnp.bfloat16 and cout >= SHIFTED_MIN_COUT
    return conv == "shifted"


def conv3x3(x, kernel, bias=None, conv: str = "auto", winograd=None):
    """A stride-1 ``"SAME"`` 3x3 convolution (NHWC, HWIO) computed as VGG-19's are: Winograd or ``lax.conv``
    with its fast input-gradient rule, chosen by ``conv`` as in :func:`vgg19_features` (``winograd``: the
    kernel already transformed, :func:`winograd_kernel`).  Float32 weights, the computation in ``x``'s dtype
    (bfloat16: products summed in float32, the result rounded to bfloat16, then the bias added); other
    networks' 3x3 layers use it too (:func:`nst_jax.nets.valid_conv`)."""
    if _use_shifted(conv, kernel.shape[-1], x.dtype):
        y = _conv_shifted(x, kernel.astype(x.dtype))
    elif _use_winograd(conv, kernel.shape[-1], x.shape[1] * x.shape[2], x.dtype):
        # the transform from the float32 kernel, then rounded
        y = _conv_winograd(x, (winograd_kernel(kernel) if winograd is None else winograd).astype(x.dtype))
    else:
        y = _conv_direct(x, kernel.astype(x.dtype))
    return y if bias is None else y + bias.astype(x.dtype)


def _conv(x, p, conv="auto"):
    return conv3x3(x, p["kernel"], p["bias"], conv, p.get("winograd"))


def vgg19_features(params: dict, images, layers: Iterable[str], pool: str = "max",
                   remat: bool = False, conv: str = "auto", dtype=jnp.float32) -> dict:
    """Activations of the requested VGG-19 layers.

    Args:
      params: the pytree from :func:`vgg19_params`.
      images: ``(N, H, W, 3)`` float RGB in [0, 1] (NumPy or JAX).  Preprocessing for the weights in
        use (Caffe BGR/mean or torchvision mean/std) happens inside, from ``params["preprocess"]``.
      layers: names to return, e.g. ``("relu1_1", "relu4_2")``.
      pool: ``"max"`` or ``"avg"`` -- 2x2, stride 2, no padding, floor on odd sizes (as Caffe and
        PyTorch do).  Gatys et al. report slightly smoother results with average pooling.
      remat: store only each block's input for the backward pass and recompute the activations
        inside it (``jax.checkpoint`` per block): less memory for large images, about one more
        forward pass of compute.
      conv: ``"auto"`` (on CPU, for the >=256-channel layers, Winograd F(4x4,3x3) in float32 and nine
        shifted 1x1 products in bfloat16, and Winograd for the 128-channel ones too on pictures of at most
        128 x 128 in float32; ``lax.conv`` elsewhere; ``$NST_JAX_CONV`` overrides it for the
        process), ``"direct"`` (always ``lax.conv``), ``"winograd"`` or ``"shifted"`` (always that).
      dtype: the activations' and convolutions' type (``jnp.bfloat16``: mixed precision, bfloat16 products
        summed in float32, forward and backward, each convolution's result rounded to bfloat16; the weights
        stay float32 and are cast per layer).

    Returns:
      ``{name: (N, H', W', C)}`` in ``dtype`` for exactly the requested names.
    """
    layers = check_layers(layers)
    if pool not in ("max", "avg"):
        raise NSTError(f"pool must be 'max' or 'avg', not {pool!r}")
    if conv not in CONVS:
        raise NSTError(f"conv must be one of {', '.join(CONVS)}, not {conv!r}")
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise NSTError(f"images must be NHWC with 3 channels, got shape {tuple(x.shape)}")
    need = min_size(layers)
    if min(x.shape[1:3]) < need:
        raise NSTError(f"image {x.shape[1]}x{x.shape[2]} is too small for layer "
                       f"{max(layers, key=_INDEX.get)}: both sides must be at least {need} px")
    wanted = set(layers)
    deepest = max(_INDEX[name] for name in layers)
    missing = [n for n in LAYERS[: deepest + 1] if n.startswith("conv") and n not in params]
    if missing:
        raise NSTError(f"these VGG-19 weights do not reach layer {LAYERS[deepest]}: {missing[0]} is not "
                       "loaded (vgg19_params(..., upto=...) reads only the layers asked for)")

    x = ((x - params["preprocess"]["mean"]) / params["preprocess"]["std"]).astype(dtype)
    out = {}
    for block in _blocks(LAYERS[: deepest + 1]):
        run = partial(_run_block, names=block, wanted=tuple(n for n in block if n in wanted),
                      pool=pool, conv=conv)
        if remat:  # keep only the block's input; recompute its inside during the backward pass
            run = jax.checkpoint(run)
        x, found = run({n: params[n] for n in block if n.startswith("conv")}, x)
        out.update(found)
    return out


def _blocks(names):
    """Split a prefix of LAYERS into blocks that end at each pooling layer."""
    blocks, current = [], []
    for name in names:
        current.append(name)
        if name.startswith("pool"):
            blocks.append(tuple(current))
            current = []
    if current:
        blocks.append(tuple(current))
    return blocks


def _run_block(params, x, *, names, wanted, pool, conv):
    found = {}
    for name in names:
        kind = name[:4]
        if kind == "conv":
            x = _conv(x, params[name], conv)
        elif kind == "relu":
            x = jax.nn.relu(x)
        else:
            x = _pool(x, pool)
        if name in wanted:
            found[name] = x
    return x, found



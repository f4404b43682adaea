"""Independent PyTorch reference implementations, used by the tests and the benchmarks.

Nothing here imports nst_jax: the VGG-19 is built straight from the Keras/Caffe .h5 with h5py and
torch's own conv/pool ops, with Caffe's preprocessing written out the Caffe way (RGB->BGR, x255, minus
the BGR mean).  The Gatys objective and L-BFGS run follow neural-style-pt / the PyTorch tutorial.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import h5py
import numpy as np
import torch
import torch.nn.functional as F

# where the reference runs: a CUDA GPU when there is one (the GPU benchmarks), else the CPU;
# NST_TORCH_DEVICE overrides.  Tests run on machines without one, so they stay on the CPU.
DEVICE = torch.device(os.environ.get("NST_TORCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))

BLOCKS = (2, 2, 4, 4, 4)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def layer_sequence():
    seq = []
    for b, n in enumerate(BLOCKS, 1):
        for i in range(1, n + 1):
            seq += [f"conv{b}_{i}", f"relu{b}_{i}"]
        seq.append(f"pool{b}")
    return seq


class CaffeVGG19(torch.nn.Module):
    """VGG-19 features from the Keras 'notop' .h5 (Caffe VGG_ILSVRC_19 weights, BGR input), or from an
    nst_jax weights .npz holding the same Caffe weights (``convB_I.kernel`` HWIO, ``convB_I.bias``)."""

    def __init__(self, h5_path, pool="max"):
        super().__init__()
        self.pool = pool
        self.weights = torch.nn.ParameterDict()
        for name, (k, bias) in _caffe_arrays(h5_path).items():
            self.weights[f"{name}_w"] = torch.nn.Parameter(
                torch.from_numpy(np.asarray(k, np.float32).transpose(3, 2, 0, 1).copy()), requires_grad=False)
            self.weights[f"{name}_b"] = torch.nn.Parameter(
                torch.from_numpy(np.asarray(bias, np.float32).copy()), requires_grad=False)
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))

    def forward(self, x_rgb01, layers):
        """x: (N, 3, H, W) RGB in [0, 1]. Returns {layer: NCHW tensor}."""
        x = x_rgb01[:, [2, 1, 0]] * 255.0 - self.mean
        seq = layer_sequence()
        deepest = max(seq.index(n) for n in layers)
        out = {}
        for name in seq[: deepest + 1]:
            if name.startswith("conv"):
                x = F.conv2d(x, self.weights[name + "_w"], self.weights[name + "_b"], padding=1)
            elif name.startswith("relu"):
                x = F.relu(x)
            else:
                x = F.max_pool2d(x, 2, 2) if self.pool == "max" else F.avg_pool2d(x, 2, 2)
            if name in layers:
                out[name] = x
        return out


def _caffe_arrays(path):
    """{convB_I: (HWIO kernel, bias)} in Caffe's layout (conv1_1 reads BGR) from the Keras .h5 or an nst_jax
    .npz (read with NumPy alone).

    nst_jax's .npz stores conv1_1 with its input channels in RGB order (and the Caffe mean as an RGB
    ``preprocess`` record), so they are put back in BGR order here; an .npz of torchvision weights is refused.
    """
    out = {}
    if str(path).endswith(".npz"):
        with np.load(path) as z:
            mean = np.asarray(z["preprocess.mean"], np.float64) * 255.0
            std = np.asarray(z["preprocess.std"], np.float64) * 255.0
            if not (np.allclose(mean, CAFFE_MEAN_BGR[::-1], atol=1e-3) and np.allclose(std, 1.0)):
                raise ValueError(f"{path} does not hold Caffe VGG-19 weights (preprocess mean "
                                 f"{mean / 255}, std {std / 255})")
            for b, n in enumerate(BLOCKS, 1):
                for i in range(1, n + 1):
                    k = np.asarray(z[f"conv{b}_{i}.kernel"])
                    if (b, i) == (1, 1):
                        k = k[:, :, ::-1, :]  # RGB input channels -> Caffe's BGR
                    out[f"conv{b}_{i}"] = (k, z[f"conv{b}_{i}.bias"])
        return out
    with h5py.File(path, "r") as f:
        for b, n in enumerate(BLOCKS, 1):
            for i in range(1, n + 1):
                g = f[f"block{b}_conv{i}"]
                out[f"conv{b}_{i}"] = (np.asarray(g[f"block{b}_conv{i}_W_1:0"]),
                                       np.asarray(g[f"block{b}_conv{i}_b_1:0"]))
    return out


def torchvision_features(pool="max"):
    """A module with exactly torchvision's ``vgg19().features`` layout (conv indices 0, 2, 5, ...)."""
    mods, cin = [], 3
    for b, n in enumerate(BLOCKS, 1):
        cout = (64, 128, 256, 512, 512)[b - 1]
        for _ in range(n):
            mods += [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.ReLU(inplace=False)]
            cin = cout
        mods.append(torch.nn.MaxPool2d(2, 2) if pool == "max" else torch.nn.AvgPool2d(2, 2))
    return torch.nn.Sequential(*mods)


TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def run_torchvision(features, x_rgb01, upto_index):
    """Apply torchvision's normalisation and the Sequential up to (and including) ``upto_index``."""
    mean = torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)
    x = (x_rgb01 - mean) / std
    for i, m in enumerate(features):
        x = m(x)
        if i == upto_index:
            return x
    return x


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).cpu().numpy()


def nchw(a):
    """NumPy NHWC -> torch NCHW float32 on :data:`DEVICE`."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32).transpose(0, 3, 1, 2))).to(DEVICE)


def sync():
    """Wait for queued GPU work (timing); nothing on the CPU."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------------
# Gatys et al. in PyTorch, normalised as neural-style / neural-style-pt (the same objective as
# nst_jax.gatys, written independently): Gram / (C*H*W), MSE losses, squared TV on 0..255 pixels.
# ------------------------------------------------------------------------------------------------

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def gram(f):
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


class GatysObjective:
    def __init__(self, vgg, content, style, content_weight=5.0, style_weight=100.0, tv_weight=5e-4,
                 content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS):
        self.vgg, self.cl, self.sl = vgg, tuple(content_layers), tuple(style_layers)
        self.w = (content_weight, style_weight, tv_weight)
        with torch.no_grad():
            self.ct = {k: v.clone() for k, v in vgg(content, self.cl).items()}
            self.st = {k: gram(v) for k, v in vgg(style, self.sl).items()}

    def terms(self, x):
        f = self.vgg(x, set(self.cl + self.sl))
        c = sum(F.mse_loss(f[n], self.ct[n]) for n in self.cl)
        s = sum(F.mse_loss(gram(f[n]), self.st[n]) for n in self.sl)
        y = x * 255.0
        tv = ((y[:, :, 1:] - y[:, :, :-1]) ** 2).sum() + ((y[:, :, :, 1:] - y[:, :, :, :-1]) ** 2).sum()
        return {"content": self.w[0] * c, "style": self.w[1] * s, "tv": self.w[2] * tv}

    def __call__(self, x):
        return sum(self.terms(x).values())


def lbfgs(objective, x0, iters, history=100, line_search=None):
    """torch.optim.LBFGS over the pixels, exactly ``iters`` iterations (tolerances disabled).

    ``line_search=None`` is neural-style-pt's setting: one evaluation per iteration.
    Returns (the optimised variable, unclipped, in the units the objective takes; evaluations).
    """
    x = x0.clone().requires_grad_(True)
    # max_eval: without a line search torch.optim.LBFGS stops one iteration short when max_eval ==
    # max_iter (the first evaluation counts too); its default, 1.25 x max_iter, does not.
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=iters, max_eval=iters * 10 if line_search else iters + 1,
                            history_size=history, tolerance_grad=-1.0, tolerance_change=-1.0,
                            line_search_fn=line_search)
    evals = [0]

    def closure():
        opt.zero_grad()
        loss = objective(x)
        loss.backward()
        evals[0] += 1
        return loss

    opt.step(closure)
    return x.detach(), evals[0]


# ------------------------------------------------------------------------------------------------
# AdaIN (Huang & Belongie 2017) in PyTorch, after naoto0804/pytorch-AdaIN: the normalised VGG-19
# encoder up to relu4_1 (Caffe features / per-channel ImageNet means, read from the .npz that
# experiments/vgg_channel_means.py wrote), adain with eps 1e-5 inside the square root, and the
# mirrored decoder (reflection padding, nearest-neighbour upsampling) loaded from an nst_jax decoder
# .npz (HWIO kernels).
# ------------------------------------------------------------------------------------------------

ADAIN_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DECODER_PLAN = (("conv4_1", 512, 256), "up", ("conv3_4", 256, 256), ("conv3_3", 256, 256),
                ("conv3_2", 256, 256), ("conv3_1", 256, 128), "up", ("conv2_2", 128, 128),
                ("conv2_1", 128, 64), "up", ("conv1_2", 64, 64), ("conv1_1", 64, 3))


def torch_decoder(npz_path=None, upsample="nearest"):
    """nn.Sequential decoder; weights from an nst_jax decoder .npz (or a mapping holding the same keys,
    ``convB_I/Conv_0/kernel`` HWIO and ``.../bias``, to arrays), or PyTorch's default init;
    ``upsample``: "nearest" (the paper's) or "bilinear" (half-pixel centres, ``align_corners=False``)."""
    layers = []
    if npz_path is None or isinstance(npz_path, Mapping):
        z = npz_path
    else:
        with np.load(npz_path) as f:
            z = {k: f[k] for k in f.files}
    for item in DECODER_PLAN:
        if item == "up":
            layers.append(torch.nn.Upsample(scale_factor=2, mode=upsample,
                                            align_corners=False if upsample == "bilinear" else None))
            continue
        name, cin, cout = item
        conv = torch.nn.Conv2d(cin, cout, 3)
        if z is not None:
            k = np.asarray(z[f"{name}/Conv_0/kernel"], np.float32)
            conv.weight.data = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
            conv.bias.data = torch.from_numpy(np.asarray(z[f"{name}/Conv_0/bias"], np.float32).copy())
        layers += [torch.nn.ReflectionPad2d(1), conv]
        if name != "conv1_1":
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def calc_mean_std(f, eps=1e-5):
    n, c = f.shape[:2]
    flat = f.reshape(n, c, -1)
    return flat.mean(2).view(n, c, 1, 1), (flat.var(2, unbiased=False) + eps).sqrt().view(n, c, 1, 1)


def adain(content_f, style_f, eps=1e-5):
    cm, cs = calc_mean_std(content_f, eps)
    sm, ss = calc_mean_std(style_f, eps)
    return (content_f - cm) / cs * ss + sm


class TorchAdaIN(torch.nn.Module):
    def __init__(self, h5_path, means_npz, decoder_npz=None, upsample="nearest"):
        super().__init__()
        self.vgg = CaffeVGG19(h5_path)
        with np.load(means_npz) as z:
            for name in ADAIN_STYLE_LAYERS:
                means = torch.from_numpy(z[name].astype(np.float32)).view(1, -1, 1, 1)
                self.register_buffer(f"mean_{name}", means)
        self.decoder = torch_decoder(decoder_npz, upsample)

    def encode(self, x, layers=("relu4_1",)):
        return {k: v / getattr(self, f"mean_{k}") for k, v in self.vgg(x, layers).items()}

    def stylize(self, content, style, alpha=1.0):
        """content, style: (1, 3, H, W) RGB in [0, 1]; sides padded (reflect) to a multiple of 8."""
        h, w = content.shape[2:]

        def pad(x):
            return F.pad(x, (0, -x.shape[3] % 8, 0, -x.shape[2] % 8), mode="reflect")

        f = self.encode(pad(content))["relu4_1"]
        t = adain(f, self.encode(pad(style))["relu4_1"])
        t = alpha * t + (1 - alpha) * f
        return self.decoder(t)[:, :, :h, :w].clamp(0, 1)

    def loss(self, content, style, style_weight=10.0):
        """The paper's training loss (as pytorch-AdaIN's net.py)."""
        with torch.no_grad():
            fs = self.encode(style, ADAIN_STYLE_LAYERS)
            t = adain(self.encode(content)["relu4_1"], fs["relu4_1"])
        g = self.decoder(t)
        fg = self.encode(g, ADAIN_STYLE_LAYERS)
        loss_c = F.mse_loss(fg["relu4_1"], t)
        loss_s = 0.0
        for k in ADAIN_STYLE_LAYERS:
            gm, gs = calc_mean_std(fg[k])
            sm, ss = calc_mean_std(fs[k])
            loss_s = loss_s + F.mse_loss(gm, sm) + F.mse_loss(gs, ss)
        return loss_c + style_weight * loss_s, loss_c, loss_s


# ------------------------------------------------------------------------------------------------
# SANet (Park & Lee, CVPR 2019, "Arbitrary Style Transfer with Style-Attentional Networks"), written
# from the paper and the loss of the authors' train.py: the same normalised Caffe VGG-19 encoder as
# AdaIN's (features / per-channel means) down to relu5_1, a style-attention module on relu4_1 and one on
# relu5_1 (1x1 convolutions f, g on mean-variance-normalised features, h on the raw style features,
# softmax over the style positions, 1x1 out, residual with the content), the two merged (relu5_1's
# upsampled x2, nearest) by a 3x3 convolution after reflection padding, and AdaIN's decoder.
# Parameters come as flat "scope/.../kernel" keys (see TorchSANet) and are all trainable.
# ------------------------------------------------------------------------------------------------

SANET_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SANET_MODULES = ("sanet4_1", "sanet5_1")
SANET_PROJECTIONS = ("f", "g", "h", "out")
SANET_CHANNELS = 512


def mean_variance_norm(f, eps=1e-5):
    """(f - mean) / sqrt(var + eps) per image and channel over H*W (population variance)."""
    mean, std = calc_mean_std(f, eps)
    return (f - mean) / std


def conv1x1(x, kernel, bias):
    """x: NCHW; kernel: (C_in, C_out) matrix; bias: (C_out,)."""
    return torch.einsum("nchw,cd->ndhw", x, kernel) + bias.view(1, -1, 1, 1)


def _decoder_convs(decoder):
    """{convB_I: the nn.Conv2d} of a torch_decoder Sequential, in DECODER_PLAN's order."""
    convs = [m for m in decoder if isinstance(m, torch.nn.Conv2d)]
    names = [item[0] for item in DECODER_PLAN if item != "up"]
    return dict(zip(names, convs, strict=True))


class TorchSANet(torch.nn.Module):
    """SANet: frozen VGG-19 encoder, trainable transform (two SA modules + merge) and decoder.

    ``params``: {flat key: float32 array} (or an .npz holding them), keys
      ``transform/{sanet4_1,sanet5_1}/{f,g,h,out}/kernel``  (512, 512) 1x1 convolution as a
                                                             (C_in, C_out) matrix, and ``.../bias`` (512,);
      ``transform/merge/kernel``  (3, 3, 512, 512) HWIO, ``transform/merge/bias`` (512,);
      ``decoder/convB_I/Conv_0/kernel`` HWIO and ``.../bias``: AdaIN's decoder (DECODER_PLAN).
    Any other key is refused.  ``means_npz`` holds the per-channel means of relu1_1 ... relu5_1.
    :meth:`arrays` and :meth:`grads` give the parameters and their gradients back under the same keys
    and in the same layouts.
    """

    def __init__(self, h5_path, means_npz, params):
        super().__init__()
        self.vgg = CaffeVGG19(h5_path)
        with np.load(means_npz) as z:
            for name in SANET_LAYERS:
                means = torch.from_numpy(z[name].astype(np.float32)).view(1, -1, 1, 1)
                self.register_buffer(f"mean_{name}", means)
        if not isinstance(params, Mapping):
            with np.load(params) as z:
                params = {k: z[k] for k in z.files}

        def tensor(key, shape):
            a = np.asarray(params[key], np.float32)
            if a.shape != shape:
                raise ValueError(f"{key}: shape {a.shape}, expected {shape}")
            return torch.nn.Parameter(torch.from_numpy(a.copy()))

        c = SANET_CHANNELS
        self.sa = torch.nn.ModuleDict()
        for mod in SANET_MODULES:
            pd = torch.nn.ParameterDict()
            for p in SANET_PROJECTIONS:
                pd[f"{p}_kernel"] = tensor(f"transform/{mod}/{p}/kernel", (c, c))
                pd[f"{p}_bias"] = tensor(f"transform/{mod}/{p}/bias", (c,))
            self.sa[mod] = pd
        # merge kept HWIO (applied through a permuted view), so its gradient is HWIO as well
        self.merge_kernel = tensor("transform/merge/kernel", (3, 3, c, c))
        self.merge_bias = tensor("transform/merge/bias", (c,))
        prefix = "decoder/"
        dec = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
        for name, cin, cout in (item for item in DECODER_PLAN if item != "up"):  # shape checks
            for part, shape in (("kernel", (3, 3, cin, cout)), ("bias", (cout,))):
                key = f"{name}/Conv_0/{part}"
                if key not in dec:
                    raise KeyError(prefix + key)
                if np.shape(dec[key]) != shape:
                    raise ValueError(f"{prefix}{key}: shape {np.shape(dec[key])}, expected {shape}")
        self.decoder = torch_decoder(dec, "nearest")
        unused = set(params) - set(self._flat())
        if unused:
            raise ValueError(f"unexpected parameter keys: {sorted(unused)}")

    # -- parameters under the flat keys ------------------------------------------------------------

    def _flat(self):
        """{flat key: (torch Parameter, function from its layout to the key's layout)}."""
        def same(t):
            return t

        def oihw_to_hwio(t):
            return t.permute(2, 3, 1, 0)

        out = {}
        for mod in SANET_MODULES:
            for p in SANET_PROJECTIONS:
                out[f"transform/{mod}/{p}/kernel"] = (self.sa[mod][f"{p}_kernel"], same)
                out[f"transform/{mod}/{p}/bias"] = (self.sa[mod][f"{p}_bias"], same)
        out["transform/merge/kernel"] = (self.merge_kernel, same)
        out["transform/merge/bias"] = (self.merge_bias, same)
        for name, conv in _decoder_convs(self.decoder).items():
            out[f"decoder/{name}/Conv_0/kernel"] = (conv.weight, oihw_to_hwio)
            out[f"decoder/{name}/Conv_0/bias"] = (conv.bias, same)
        return out

    def arrays(self):
        """The parameters as {flat key: NumPy array} in the layouts ``params`` came in."""
        return {k: f(p.detach()).cpu().numpy().copy() for k, (p, f) in self._flat().items()}

    def grads(self):
        """The parameters' ``.grad`` as {flat key: NumPy array} (None where there is none)."""
        return {k: None if p.grad is None else f(p.grad.detach()).cpu().numpy().copy()
                for k, (p, f) in self._flat().items()}

    # -- the network -------------------------------------------------------------------------------

    def encode(self, x, layers=SANET_LAYERS):
        """x: (N, 3, H, W) RGB in [0, 1] -> {layer: Caffe VGG-19 features / the layer's channel means}."""
        return {k: v / getattr(self, f"mean_{k}") for k, v in self.vgg(x, layers).items()}

    def attention_weights(self, module, content, style):
        """softmax_j(F_i . G_j): (N, content positions, style positions); rows sum to one."""
        p = self.sa[module]
        f = conv1x1(mean_variance_norm(content), p["f_kernel"], p["f_bias"]).flatten(2)  # N, C, Pc
        g = conv1x1(mean_variance_norm(style), p["g_kernel"], p["g_bias"]).flatten(2)  # N, C, Ps
        return torch.softmax(torch.bmm(f.transpose(1, 2), g), dim=-1)

    def attention(self, module, content, style):
        """The style-attention module ``module`` ("sanet4_1" / "sanet5_1") on NCHW features."""
        p = self.sa[module]
        s = self.attention_weights(module, content, style)
        h = conv1x1(style, p["h_kernel"], p["h_bias"]).flatten(2)  # N, C, Ps (style not normalised)
        o = torch.bmm(h, s.transpose(1, 2)).view(content.shape)  # N, C, Pc -> N, C, h, w
        return conv1x1(o, p["out_kernel"], p["out_bias"]) + content

    def transform(self, c4, s4, c5, s5):
        """merge(reflect-pad(SA4(c4, s4) + up2_nearest(SA5(c5, s5)))), merge a 3x3 convolution."""
        t = self.attention("sanet4_1", c4, s4) + F.interpolate(
            self.attention("sanet5_1", c5, s5), scale_factor=2, mode="nearest")
        t = F.pad(t, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(t, self.merge_kernel.permute(3, 2, 0, 1), self.merge_bias)

    def decode(self, t):
        """The decoder (no clamp)."""
        return self.decoder(t)

    def stylize(self, content, style):
        """content, style: (N, 3, H, W) RGB in [0, 1], sides multiples of 16 -> (N, 3, H, W) in [0, 1]."""
        for x in (content, style):
            if x.shape[2] % 16 or x.shape[3] % 16:
                raise ValueError(f"image sides must be multiples of 16, got {tuple(x.shape[2:])}")
        layers = ("relu4_1", "relu5_1")
        fc, fs = self.encode(content, layers), self.encode(style, layers)
        t = self.transform(fc["relu4_1"], fs["relu4_1"], fc["relu5_1"], fs["relu5_1"])
        return self.decode(t).clamp(0, 1)

    def loss(self, content, style, content_weight=1.0, style_weight=3.0, identity1_weight=50.0,
             identity2_weight=1.0):
        """The paper's training loss (as the authors' train.py): (total, {"content", "style",
        "identity1", "identity2"}), each term unweighted in the dict."""
        with torch.no_grad():
            fc, fs = self.encode(content), self.encode(style)

        def tf(a, b):
            return self.transform(a["relu4_1"], b["relu4_1"], a["relu5_1"], b["relu5_1"])

        mvn = mean_variance_norm
        fcs = self.encode(self.decode(tf(fc, fs)))
        loss_c = (F.mse_loss(mvn(fcs["relu5_1"]), mvn(fc["relu5_1"]))
                  + F.mse_loss(mvn(fcs["relu4_1"]), mvn(fc["relu4_1"])))
        loss_s = 0.0
        for k in SANET_LAYERS:
            gm, gs = calc_mean_std(fcs[k])
            sm, ss = calc_mean_std(fs[k])
            loss_s = loss_s + F.mse_loss(gm, sm) + F.mse_loss(gs, ss)
        icc, iss = self.decode(tf(fc, fc)), self.decode(tf(fs, fs))
        l_id1 = F.mse_loss(icc, content) + F.mse_loss(iss, style)
        fcc, fss = self.encode(icc), self.encode(iss)
        l_id2 = 0.0
        for k in SANET_LAYERS:
            l_id2 = l_id2 + F.mse_loss(fcc[k], fc[k]) + F.mse_loss(fss[k], fs[k])
        total = (content_weight * loss_c + style_weight * loss_s + identity1_weight * l_id1
                 + identity2_weight * l_id2)
        return total, {"content": loss_c, "style": loss_s, "identity1": l_id1, "identity2": l_id2}


# ------------------------------------------------------------------------------------------------
# Johnson et al.'s transformation network with instance norm, as PyTorch's fast_neural_style example
# builds it (reflection padding, InstanceNorm2d(affine=True), nearest upsampling + convolution),
# loaded from an nst_jax feed-forward model .npz.
# ------------------------------------------------------------------------------------------------

class _ConvLayer(torch.nn.Module):
    def __init__(self, cin, cout, k, stride=1, upsample=False):
        super().__init__()
        self.upsample = upsample
        self.pad = torch.nn.ReflectionPad2d(k // 2)
        self.conv = torch.nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(self.pad(x))


class TorchTransformNet(torch.nn.Module):
    def __init__(self, npz_path=None):
        super().__init__()
        spec = [("conv1", 3, 32, 9, 1, False), ("conv2", 32, 64, 3, 2, False),
                ("conv3", 64, 128, 3, 2, False)]
        self.convs = torch.nn.ModuleDict({n: _ConvLayer(i, o, k, s, u) for n, i, o, k, s, u in spec})
        self.norms = torch.nn.ModuleDict({f"in{i}": torch.nn.InstanceNorm2d(c, affine=True)
                                          for i, c in zip(range(1, 6), (32, 64, 128, 64, 32), strict=True)})
        self.res = torch.nn.ModuleList()
        for _ in range(5):
            self.res.append(torch.nn.ModuleDict({
                "conv1": _ConvLayer(128, 128, 3), "in1": torch.nn.InstanceNorm2d(128, affine=True),
                "conv2": _ConvLayer(128, 128, 3), "in2": torch.nn.InstanceNorm2d(128, affine=True)}))
        self.convs["up1"] = _ConvLayer(128, 64, 3, upsample=True)
        self.convs["up2"] = _ConvLayer(64, 32, 3, upsample=True)
        self.convs["out"] = _ConvLayer(32, 3, 9)
        if npz_path is not None:
            self._load(np.load(npz_path))

    def _load(self, z):
        def conv(mod, prefix):
            k = np.asarray(z[f"{prefix}/kernel"], np.float32)
            mod.conv.weight.data = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
            mod.conv.bias.data = torch.from_numpy(np.asarray(z[f"{prefix}/bias"], np.float32).copy())

        def norm(mod, prefix):
            mod.weight.data = torch.from_numpy(np.asarray(z[f"{prefix}/scale"], np.float32).copy())
            mod.bias.data = torch.from_numpy(np.asarray(z[f"{prefix}/bias"], np.float32).copy())

        for name, mod in self.convs.items():
            conv(mod, name)
        for name, mod in self.norms.items():
            norm(mod, name)
        for i, block in enumerate(self.res, 1):
            conv(block["conv1"], f"res{i}/conv1")
            conv(block["conv2"], f"res{i}/conv2")
            norm(block["in1"], f"res{i}/in1")
            norm(block["in2"], f"res{i}/in2")

    def forward(self, x):
        """x: (N, 3, H, W) RGB in [0, 1], H and W multiples of 4."""
        c, n = self.convs, self.norms
        y = F.relu(n["in1"](c["conv1"](x)))
        y = F.relu(n["in2"](c["conv2"](y)))
        y = F.relu(n["in3"](c["conv3"](y)))
        for b in self.res:
            y = y + b["in2"](b["conv2"](F.relu(b["in1"](b["conv1"](y)))))
        y = F.relu(n["in4"](c["up1"](y)))
        y = F.relu(n["in5"](c["up2"](y)))
        return c["out"](y)

"""Independent PyTorch reference implementations, used by the tests and the benchmarks.

Nothing here imports nst_jax: the VGG-19 is built straight from the Keras/Caffe .h5 with h5py and
torch's own conv/pool ops, with Caffe's preprocessing written out the Caffe way (RGB->BGR, x255, minus
the BGR mean).  The Gatys objective and L-BFGS run follow neural-style-pt / the PyTorch tutorial.
"""

from __future__ import annotations

import os

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
    """nn.Sequential decoder; weights from an nst_jax decoder .npz, or PyTorch's default init;
    ``upsample``: "nearest" (the paper's) or "bilinear" (half-pixel centres, ``align_corners=False``)."""
    layers = []
    z = np.load(npz_path) if npz_path is not None else None
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

"""Independent PyTorch reference implementations, used by the tests and the benchmarks.

Nothing here imports nst_jax: the VGG-19 is built straight from the Keras/Caffe .h5 with h5py and
torch's own conv/pool ops, with Caffe's preprocessing written out the Caffe way (RGB->BGR, x255, minus
the BGR mean).  The Gatys objective and L-BFGS run follow neural-style-pt / the PyTorch tutorial.
"""

from __future__ import annotations

import h5py
import numpy as np
import torch
import torch.nn.functional as F

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
    """VGG-19 features from the Keras 'notop' .h5 (Caffe VGG_ILSVRC_19 weights, BGR input)."""

    def __init__(self, h5_path, pool="max"):
        super().__init__()
        self.pool = pool
        self.weights = torch.nn.ParameterDict()
        with h5py.File(h5_path, "r") as f:
            for b, n in enumerate(BLOCKS, 1):
                for i in range(1, n + 1):
                    g = f[f"block{b}_conv{i}"]
                    k = np.asarray(g[f"block{b}_conv{i}_W_1:0"])  # HWIO
                    bias = np.asarray(g[f"block{b}_conv{i}_b_1:0"])
                    self.weights[f"conv{b}_{i}_w"] = torch.nn.Parameter(
                        torch.from_numpy(k.transpose(3, 2, 0, 1).copy()), requires_grad=False)
                    self.weights[f"conv{b}_{i}_b"] = torch.nn.Parameter(
                        torch.from_numpy(bias.copy()), requires_grad=False)
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
    return t.detach().permute(0, 2, 3, 1).numpy()


def nchw(a):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32).transpose(0, 3, 1, 2)))

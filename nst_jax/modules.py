"""The learned networks as flax.linen modules: the decoder AdaIN and SANet share (:class:`Decoder`) and
Johnson et al.'s transformation network (:class:`TransformNet`).

Their method modules (:mod:`nst_jax.decoder`, :mod:`nst_jax.feedforward`) import this one only when a
program is traced or parameters are initialised: a command whose compiled program and parameter shapes are
loaded whole from the store (:mod:`nst_jax.compile_cache`) never imports flax, which costs 0.15 s a
process on a 2-core CPU (BENCHMARKS.md, "The networks' fixed costs").
"""

from __future__ import annotations

import flax.linen as nn

from .decoder import DECODER_PLAN
from .nets import instance_norm, reflect_pad, upsample, valid_conv

__all__ = ["DECODER", "ConvLayer", "Decoder", "InstanceNorm", "ReflectConv", "ResidualBlock", "TransformNet"]


# --- the decoder of AdaIN and SANet ----------------------------------------------------------------------

class Conv3x3(nn.Module):
    """A 3x3 convolution on an already padded input (``VALID``, :func:`nst_jax.nets.valid_conv`: XLA:CPU's
    fast path), with ``nn.Conv``'s parameters and init."""
    features: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return valid_conv(x, kernel) + bias


class ReflectConv(nn.Module):
    """3x3 convolution with reflection padding (as the paper, to avoid border artefacts)."""
    features: int

    @nn.compact
    def __call__(self, x):
        return Conv3x3(self.features, name="Conv_0")(reflect_pad(x, 1))


class Decoder(nn.Module):
    """Mirror of the VGG-19 encoder up to relu4_1 (:data:`nst_jax.decoder.DECODER_PLAN`): 3x3
    reflection-padded convolutions with ReLU, pooling replaced by x2 upsampling, no normalisation; the last
    convolution is linear and gives RGB in [0, 1] (unclipped while training).  Parameter names are the
    encoder layers they mirror.  ``upsample``: :func:`nst_jax.nets.upsample`'s kind, ``"nearest"`` as the
    paper (and the shipped decoder) or ``"bilinear"`` (the same parameters; the decoder file says which,
    :func:`nst_jax.decoder.upsampling`)."""

    upsample: str = "nearest"

    @nn.compact
    def __call__(self, t):
        x = t
        last = DECODER_PLAN[-1][0]
        for item in DECODER_PLAN:
            if item == "up":
                x = upsample(x, self.upsample)
                continue
            name, features = item
            x = ReflectConv(features, name=name)(x)
            if name != last:
                x = nn.relu(x)
        return x


DECODER = Decoder()


# --- Johnson et al.'s transformation network -------------------------------------------------------------

class InstanceNorm(nn.Module):
    """Per-image, per-channel normalisation over H, W, with a learned scale and shift (Ulyanov et al.).

    ``num_styles > 0``: conditional instance normalisation (Dumoulin, Shlens & Kudlur 2017): one scale
    and shift per style, chosen (or mixed) per image by ``style``, an ``(N, num_styles)`` array of weights
    (one-hot for one style; a convex combination blends styles)."""

    num_styles: int = 0

    @nn.compact
    def __call__(self, x, style=None):
        c = x.shape[-1]
        shape = (self.num_styles, c) if self.num_styles else (c,)
        scale = self.param("scale", nn.initializers.ones_init(), shape)
        bias = self.param("bias", nn.initializers.zeros_init(), shape)
        if self.num_styles:
            scale = (style @ scale)[:, None, None, :]
            bias = (style @ bias)[:, None, None, :]
        return instance_norm(x, scale, bias)


class ConvLayer(nn.Module):
    """Reflection-padded k x k convolution, stride 1 or 2."""
    features: int
    kernel: int
    stride: int = 1

    @nn.compact
    def __call__(self, x):
        k = self.kernel
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return valid_conv(reflect_pad(x, k // 2), kernel, self.stride) + bias


class ResidualBlock(nn.Module):
    features: int = 128
    num_styles: int = 0

    @nn.compact
    def __call__(self, x, style=None):
        n = self.num_styles
        y = nn.relu(InstanceNorm(n, name="in1")(ConvLayer(self.features, 3, name="conv1")(x), style))
        y = InstanceNorm(n, name="in2")(ConvLayer(self.features, 3, name="conv2")(y), style)
        return x + y


class TransformNet(nn.Module):
    """Johnson et al.'s transformation network with instance norm; RGB in [0, 1] in and out (the output
    is unclipped during training).  ``num_styles > 0``: one network for several styles, with conditional
    instance normalisation (Dumoulin et al. 2017); ``style`` is then an ``(N, num_styles)`` weight array.
    ``upsample``: :func:`nst_jax.nets.upsample`'s kind (the shipped networks: ``"nearest"``)."""

    num_styles: int = 0
    upsample: str = "nearest"

    @nn.compact
    def __call__(self, x, style=None):
        n = self.num_styles
        y = nn.relu(InstanceNorm(n, name="in1")(ConvLayer(32, 9, name="conv1")(x), style))
        y = nn.relu(InstanceNorm(n, name="in2")(ConvLayer(64, 3, 2, name="conv2")(y), style))
        y = nn.relu(InstanceNorm(n, name="in3")(ConvLayer(128, 3, 2, name="conv3")(y), style))
        for i in range(1, 6):
            y = ResidualBlock(128, n, name=f"res{i}")(y, style)
        for i, features in ((1, 64), (2, 32)):
            y = ConvLayer(features, 3, name=f"up{i}")(upsample(y, self.upsample))
            y = nn.relu(InstanceNorm(n, name=f"in{i + 3}")(y, style))
        return ConvLayer(3, 9, name="out")(y)

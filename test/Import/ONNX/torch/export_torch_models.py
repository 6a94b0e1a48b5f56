#!/usr/bin/env python3
"""Exports BitNet b1.58 building blocks from torch to ONNX, with torch's own
outputs, as fixtures for the importer's end-to-end test.

Run by hand with /usr/bin/python3 and Debian's python3-torch (1.13) and
python3-onnx; the test itself (run_backend_tests.py --data <this folder>)
needs neither torch nor this script. Each case is written in ONNX's
backend-test layout: <case>/model.onnx, <case>/test_data_set_0/{input,
output}_N.pb, and <case>/tolerance ("exact" or "rtol atol").

The modules follow the reference BitNet b1.58 implementation: per-token
absmax activation quantisation to int8, per-tensor absmean ternary weights
(computed online from latent weights, or stored offline as {-1, 0, 1} with
a scale), RMSNorm, squared ReLU, and a decoder layer with rotary embeddings
and grouped-query attention.
"""

import math
import os
import shutil

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)

# Float tolerance of the float outputs against torch: the compiled model
# accumulates the integer products exactly and rounds float sums in another
# order than torch.
FLOAT_TOLERANCE = "1e-4 1e-4"


def activation_quant(x):
    """Per-token absmax quantisation, dequantised (reference code)."""
    scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp_(min=1e-5)
    return (x * scale).round().clamp_(-128, 127) / scale


def weight_quant(w):
    """Per-tensor absmean ternarisation, dequantised (reference code)."""
    scale = 1.0 / w.abs().mean().clamp_(min=1e-5)
    return (w * scale).round().clamp_(-1, 1) / scale


class BitLinear(torch.nn.Linear):
    """Online: latent float weights quantised in the forward pass."""

    def __init__(self, k, n):
        super().__init__(k, n, bias=False)

    def forward(self, x, quantized_input=None):
        xq = activation_quant(x) if quantized_input is None else quantized_input
        return F.linear(xq, weight_quant(self.weight))


class OfflineBitLinear(torch.nn.Module):
    """Offline: the weight stored as {-1, 0, 1} codes and one scale."""

    def __init__(self, k, n):
        super().__init__()
        w = torch.randn(n, k) * 0.05
        scale = w.abs().mean().clamp(min=1e-5)
        self.register_buffer("codes", (w / scale).round().clamp(-1, 1))
        self.register_buffer("scale", scale)

    def forward(self, x):
        return F.linear(activation_quant(x), self.codes * self.scale)


class ActivationCodes(torch.nn.Module):
    """The integer part of activation quantisation (checked exactly)."""

    def forward(self, x):
        scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp_(min=1e-5)
        return (x * scale).round().clamp_(-128, 127)


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(1.0 + 0.1 * torch.randn(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def straight_through(x, q):
    """Training code's straight-through estimator: the value of q, the
    gradient of x."""
    return x + (q - x).detach()


class STEBitLinear(torch.nn.Linear):
    """The public training recipes' BitLinear: activations and weights
    quantised through the straight-through estimator, an optional bias."""

    def __init__(self, k, n, bias=False):
        super().__init__(k, n, bias=bias)

    def forward(self, x, quantized_input=None):
        xq = (straight_through(x, activation_quant(x))
              if quantized_input is None else quantized_input)
        w = straight_through(self.weight, weight_quant(self.weight))
        return F.linear(xq, w, self.bias)


class DivideAfterBitLinear(OfflineBitLinear):
    """bitnet.cpp's order: the int8 codes times the {-1, 0, 1} codes, then
    divided by the activation scale and multiplied by the weight scale."""

    def forward(self, x):
        s = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp_(min=1e-5)
        q = (x * s).round().clamp_(-128, 127)
        return torch.matmul(q, self.codes.t()) / s * self.scale


class SignBitLinear(torch.nn.Linear):
    """Weights as sign(w) times their absmean (torch.sign-based
    quantisation)."""

    def __init__(self, k, n):
        super().__init__(k, n, bias=False)

    def forward(self, x):
        w = torch.sign(self.weight) * self.weight.abs().mean()
        return F.linear(activation_quant(x), w)


class ScaleAfterBitLinear(OfflineBitLinear):
    """The {-1, 0, 1} codes in the product, the weight scale applied to the
    result."""

    def forward(self, x):
        return F.linear(activation_quant(x), self.codes) * self.scale


class DecoderLayer(torch.nn.Module):
    """Pre-norm decoder layer: GQA attention with RoPE, relu^2 GLU FFN;
    `ste` writes its BitLinear layers as training code does."""

    def __init__(self, d=32, heads=4, kv_heads=2, ffn=64, theta=10000.0,
                 ste=False):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.ste = ste
        linear = STEBitLinear if ste else BitLinear
        self.attn_norm = RMSNorm(d)
        self.q = linear(d, d)
        self.k = linear(d, kv_heads * self.hd)
        self.v = linear(d, kv_heads * self.hd)
        self.o = linear(d, d)
        self.ffn_norm = RMSNorm(d)
        self.gate = linear(d, ffn)
        self.up = linear(d, ffn)
        self.down = linear(ffn, d)
        inv = 1.0 / theta ** (torch.arange(0, self.hd, 2).float() / self.hd)
        self.register_buffer("inv_freq", inv)

    def quant(self, h):
        q = activation_quant(h)
        return straight_through(h, q) if self.ste else q

    def forward(self, x):
        b, t, d = x.shape
        h = self.attn_norm(x)
        hq = self.quant(h)  # one chain feeds q, k and v
        q = self.q(h, hq).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k(h, hq).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v(h, hq).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        pos = torch.arange(t, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        # Each key/value head serves `rep` query heads.
        k = k[:, :, None].expand(b, self.kv_heads, rep, t, self.hd).reshape(
            b, self.heads, t, self.hd)
        v = v[:, :, None].expand(b, self.kv_heads, rep, t, self.hd).reshape(
            b, self.heads, t, self.hd)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        attn = torch.softmax(scores + mask, dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(b, t, d)
        x = x + self.o(attn)
        h = self.ffn_norm(x)
        hq = self.quant(h)  # one chain feeds gate and up
        g = F.relu(self.gate(h, hq)) ** 2
        return x + self.down(g * self.up(h, hq))


class FFN(torch.nn.Module):
    def __init__(self, d=32, ffn=64):
        super().__init__()
        self.norm = RMSNorm(d)
        self.gate = OfflineBitLinear(d, ffn)
        self.down = OfflineBitLinear(ffn, d)

    def forward(self, x):
        return self.down(F.relu(self.gate(self.norm(x))) ** 2)


class LayerNorms(torch.nn.Module):
    """nn.LayerNorm over the last dimension and over the last two, which
    torch exports at opset 17 as LayerNormalization."""

    def __init__(self, shape=(5, 32)):
        super().__init__()
        self.last = torch.nn.LayerNorm(shape[-1])
        self.both = torch.nn.LayerNorm(shape, eps=1e-3)
        with torch.no_grad():
            for norm in (self.last, self.both):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.both(self.last(x) * 2.0)


def export(name, module, inputs, tolerance, opset, dynamic_axes=None):
    d = os.path.join(HERE, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    module.eval()
    with torch.no_grad():
        outputs = module(*inputs)
    if not isinstance(outputs, tuple):
        outputs = (outputs,)
    in_names = ["x%d" % i for i in range(len(inputs))]
    out_names = ["y%d" % i for i in range(len(outputs))]
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(module, tuple(inputs), path, opset_version=opset,
                      input_names=in_names, output_names=out_names,
                      do_constant_folding=True, dynamic_axes=dynamic_axes)
    onnx.checker.check_model(onnx.load(path))
    for k, (n, t) in enumerate(zip(in_names, inputs)):
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), n).SerializeToString())
    for k, (n, t) in enumerate(zip(out_names, outputs)):
        with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), n).SerializeToString())
    with open(os.path.join(d, "tolerance"), "w") as f:
        f.write(tolerance + "\n")
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print("%-28s opset %d: %s" % (name, opset, " ".join(ops)))


def main():
    x = torch.randn(2, 5, 32)
    export("activation_codes", ActivationCodes(), [x * 3], "exact", 17)
    export("bitlinear_online", BitLinear(32, 24), [x], FLOAT_TOLERANCE, 17)
    export("bitlinear_offline", OfflineBitLinear(32, 16), [x], FLOAT_TOLERANCE, 13)
    export("rmsnorm", RMSNorm(32), [x], FLOAT_TOLERANCE, 15)
    export("ffn_relu2_offline", FFN(), [x], FLOAT_TOLERANCE, 17)
    export("decoder_layer_opset14", DecoderLayer(), [torch.randn(1, 6, 32)],
           FLOAT_TOLERANCE, 14)
    export("decoder_layer_opset17", DecoderLayer(), [torch.randn(1, 6, 32)],
           FLOAT_TOLERANCE, 17)
    export("layernorm_opset17", LayerNorms(), [x * 3 + 1], FLOAT_TOLERANCE, 17)


def export_public_forms():
    """BitLinear as public training and inference code writes it, at opsets
    13, 14 and 17, with a static and a dynamic sequence axis."""
    torch.manual_seed(1)
    x3 = torch.randn(2, 5, 32)
    x2 = torch.randn(5, 32)
    forms = [
        ("ste_bias", STEBitLinear(32, 24, bias=True), x3),
        ("ste_gemm", STEBitLinear(32, 24, bias=True), x2),
        ("divide_after", DivideAfterBitLinear(32, 24), x3),
        ("sign_weight", SignBitLinear(32, 24), x3),
        ("scale_after", ScaleAfterBitLinear(32, 24), x3),
    ]
    for form, module, x in forms:
        seq_axis = x.dim() - 2
        for opset in (13, 14, 17):
            for dynamic in (False, True):
                name = "public_%s_opset%d%s" % (form, opset,
                                                "_dynamic" if dynamic else "")
                export(name, module, [x], FLOAT_TOLERANCE, opset,
                       {"x0": {seq_axis: "seq"}} if dynamic else None)
    export("decoder_layer_ste_opset17", DecoderLayer(ste=True),
           [torch.randn(1, 6, 32)], FLOAT_TOLERANCE, 17)


if __name__ == "__main__":
    main()
    export_public_forms()

#!/usr/bin/env python3
"""Counts the int8 activation codes and ternary weight values that the two
readings of exported BitLinear layers give differently (see
bitnet-recognize-bitlinear in include/bitnet/Import/Passes.td):

- the activation scale: the contract's 127 / m against torch's exported
  127 * (1 / m), each in f32, on the inputs of every BitLinear layer of the
  fixtures (export_torch_models.py, recomputed with its seeds) and on a
  large random sample;
- the straight-through sums: x + (q - x) against q (activations, requantised
  with the layer's scale) and w + (t - w) against t (weights).

Run with /usr/bin/python3 (needs torch); prints one table.
"""

import numpy as np
import torch

import export_torch_models as e


def codes(x, contract):
    """int8 codes of x (rows = tokens) in f32 arithmetic."""
    x = x.astype(np.float32)
    m = np.maximum(np.abs(x).max(axis=-1, keepdims=True), np.float32(1e-5))
    if contract:
        s = np.float32(127) / m
    else:
        s = np.float32(127) * (np.float32(1) / m)
    return np.clip(np.round(x * s), -128, 127), s


def layer_inputs(module, x):
    """The float inputs of every activation quantisation in module(x)."""
    seen = []
    original = e.activation_quant

    def recording(t):
        seen.append(t.detach().numpy().copy())
        return original(t)

    e.activation_quant = recording
    try:
        with torch.no_grad():
            module(x)
    finally:
        e.activation_quant = original
    # bitnet.cpp's order quantises its input inline.
    return seen or [x.numpy().copy()]


def main():
    torch.manual_seed(1)
    x3 = torch.randn(2, 5, 32)
    x2 = torch.randn(5, 32)
    modules = [
        ("ste_bias", e.STEBitLinear(32, 24, bias=True), x3),
        ("ste_gemm", e.STEBitLinear(32, 24, bias=True), x2),
        ("divide_after", e.DivideAfterBitLinear(32, 24), x3),
        ("sign_weight", e.SignBitLinear(32, 24), x3),
        ("scale_after", e.ScaleAfterBitLinear(32, 24), x3),
    ]
    # Same draws as export_public_forms: the decoder layer comes last.
    modules.append(("decoder_layer_ste", e.DecoderLayer(ste=True),
                    torch.randn(1, 6, 32)))
    print("%-20s %8s %14s %14s %14s" % ("fixture", "codes", "127*(1/m)",
                                        "x+(q-x)", "w+(t-w)"))
    for name, module, x in modules:
        module.eval()
        total = scale_changes = ste_changes = 0
        for a in layer_inputs(module, x):
            q, s = codes(a, contract=True)
            q_torch, s_torch = codes(a, contract=False)
            total += q.size
            scale_changes += int((q != q_torch).sum())
            # The straight-through sum, requantised with the layer's scale.
            deq = (q_torch / s_torch).astype(np.float32)
            ste = (a + (deq - a)).astype(np.float32)
            ste_changes += int((np.clip(np.round(ste * s_torch), -128, 127)
                                != q_torch).sum())
        weight_changes = 0
        for sub in module.modules():
            if isinstance(sub, e.STEBitLinear):
                w = sub.weight.detach()
                t = e.weight_quant(w)
                weight_changes += int(((w + (t - w)) != t).sum())
        print("%-20s %8d %14d %14d %14d" % (name, total, scale_changes,
                                            ste_changes, weight_changes))
    # A large sample: 4096 tokens of 2560 features, Gaussian and heavy-tailed.
    rng = np.random.default_rng(0)
    for label, x in (("gaussian", rng.standard_normal((4096, 2560))),
                     ("student-t(3)", rng.standard_t(3, (4096, 2560)))):
        q, _ = codes(x, contract=True)
        q_torch, _ = codes(x, contract=False)
        print("%-20s %8d %14d %14s %14s" % ("random " + label, q.size,
                                            int((q != q_torch).sum()), "-", "-"))


if __name__ == "__main__":
    main()

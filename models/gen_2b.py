#!/usr/bin/python3
"""Writes a decoder with the exact shapes of bitnet-b1.58-2B-4T and random
weights, for benchmarks: hidden 2560, intermediate 6912, 30 layers, 20 heads,
5 KV heads, head dim 128, vocabulary 128256, relu^2, tied embeddings, rope
theta 500000.

Ternary weights are random codes stored two bits each (BitLinear bits = 2,
521 MB in all); the tied embedding table is float32 (1.3 GB; bitnet-compile
--float-weights=f16 halves it in the compiled model). The tensors go to an
external data file next to the model, so the .onnx itself is small.

  /usr/bin/python3 models/gen_2b.py OUT.onnx [--context 256] [--seed 1]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitnet_decoder as bd  # noqa: E402

# The 81 bytes whose four 2-bit fields are all codes 0, 1 or 2.
VALID_BYTES = np.array([b for b in range(256)
                        if all((b >> s) & 3 != 3 for s in (0, 2, 4, 6))],
                       np.uint8)


def random_packed(rng, n, k):
    """A random ternary [n, k] matrix, packed (uniform codes)."""
    assert k % 4 == 0
    return VALID_BYTES[rng.integers(0, len(VALID_BYTES), size=(n, k // 4),
                                    dtype=np.uint8)]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--context", type=int, default=256,
                    help="KV-cache capacity in tokens (default 256)")
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    cfg = bd.Config(vocab=128256, dim=2560, layers=args.layers, heads=20,
                    kv_heads=5, ffn=6912, context=args.context,
                    theta=500000.0)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    hd = cfg.head_dim
    shapes = {"q": (cfg.dim, cfg.dim), "k": (cfg.kv_heads * hd, cfg.dim),
              "v": (cfg.kv_heads * hd, cfg.dim), "o": (cfg.dim, cfg.dim),
              "gate": (cfg.ffn, cfg.dim), "up": (cfg.ffn, cfg.dim),
              "down": (cfg.dim, cfg.ffn)}
    layers = []
    for l in range(cfg.layers):
        L = {n: np.ones(d, np.float32) for n, d in
             (("attn_norm", cfg.dim), ("attn_sub_norm", cfg.dim),
              ("ffn_norm", cfg.dim), ("ffn_sub_norm", cfg.ffn))}
        for name, (n, k) in shapes.items():
            # Scales of the order a trained model has (absmean of weights).
            L[name] = bd.Packed(random_packed(rng, n, k), k,
                                np.float32(rng.uniform(0.01, 0.03)))
        layers.append(L)
        print(f"gen_2b.py: layer {l + 1}/{cfg.layers}", end="\r", flush=True)
    embed = rng.standard_normal((cfg.vocab, cfg.dim), dtype=np.float32)
    embed *= np.float32(0.02)
    weights = {"embed": embed, "norm": np.ones(cfg.dim, np.float32),
               "layers": layers}
    data = os.path.basename(args.out) + ".data"
    bd.write_onnx(args.out, cfg, weights, packed=True, external=data,
                  doc="random weights with the shapes of bitnet-b1.58-2B-4T")
    size = os.path.getsize(os.path.join(os.path.dirname(args.out) or ".", data))
    print(f"gen_2b.py: wrote {args.out} and {data} ({size / 1e9:.2f} GB) in "
          f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Perplexity of a decoder ONNX file (one that bitnet_decoder.py writes, such
as fortunes/fortunes.onnx) on a text file, in torch: the reference of the
bitnet-perplexity tool, by the same method (llama.cpp's llama-perplexity).

The text is split with the model's character vocabulary (bitnet.vocab, longest
match first; bytes no token starts with are left out, as the runtime's tools
do), cut into windows of --ctx-size tokens (default: the model's context; the
tokens after the last full window are left out, a text shorter than a window is
one window), and each window runs from scratch. The logits at positions
n_ctx/2 .. n_ctx-2 of each window predict the tokens after them (a 2-token
window: the first predicts the second). It prints

    Final estimate: PPL = P +/- E (mean NLL M nats over N tokens)

where E = P * sqrt(var(nll) / (N - 1)), the standard error of the mean
negative log-likelihood, propagated, as llama.cpp does.

    python3 models/perplexity_reference.py models/fortunes/fortunes.onnx \\
        -f models/fortunes/heldout.txt [--ctx-size N]

Needs python3-torch and python3-onnx.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bitnet_decoder as bd  # noqa: E402


def encode(vocab, text):
    """Token ids of `text`, longest match first; unknown bytes left out.
    Works on the UTF-8 bytes, as the runtime's tools do."""
    tokens = [t.encode("utf-8") for t in vocab]
    data = text.encode("utf-8")
    ids, at = [], 0
    while at < len(data):
        best, best_len = -1, 0
        for i, t in enumerate(tokens):
            if len(t) > best_len and data.startswith(t, at):
                best, best_len = i, len(t)
        if best < 0:
            at += 1
            continue
        ids.append(best)
        at += best_len
    return ids


def window_nlls(model, ids, n_ctx):
    """The negative log-likelihoods scored in every window, in order."""
    import torch

    windows = len(ids) // n_ctx
    first = min(n_ctx // 2, n_ctx - 2)
    out = []
    with torch.no_grad():
        for w in range(windows):
            window = ids[w * n_ctx:(w + 1) * n_ctx]
            logits = model(torch.tensor([window]))[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            for at in range(first, n_ctx - 1):
                out.append(-float(logp[at, window[at + 1]]))
    return np.array(out, dtype=np.float64)


def perplexity(nlls):
    """(PPL, its standard error) as llama.cpp's llama-perplexity computes."""
    mean = float(nlls.mean())
    ppl = math.exp(mean)
    var = float((nlls * nlls).mean()) - mean * mean
    err = math.sqrt(var / (len(nlls) - 1)) if len(nlls) > 1 and var > 0 else 0
    return ppl, ppl * err, mean


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a decoder ONNX file")
    parser.add_argument("-f", "--file", required=True, help="the text")
    parser.add_argument("-c", "--ctx-size", type=int, default=0,
                        help="tokens a window holds (default: the context)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    model, cfg, vocab = bd.load_torch_from_onnx(args.model)
    if vocab is None:
        sys.exit(f"{args.model} has no bitnet.vocab")
    with open(args.file, encoding="utf-8") as f:
        ids = encode(vocab, f.read())
    n_ctx = args.ctx_size or cfg.context
    if n_ctx > cfg.context:
        sys.exit(f"--ctx-size {n_ctx} is beyond the model's context "
                 f"{cfg.context}")
    if len(ids) < 2:
        sys.exit(f"{args.file}: the text has {len(ids)} tokens; scoring needs "
                 "at least 2")
    n_ctx = min(n_ctx, len(ids))
    nlls = window_nlls(model, ids, n_ctx)
    ppl, err, mean = perplexity(nlls)
    print(f"{args.file}: {len(ids)} tokens; windows: {len(ids) // n_ctx} of "
          f"{n_ctx} tokens")
    print(f"Final estimate: PPL = {ppl:.4f} +/- {err:.5f} (mean NLL "
          f"{mean:.6f} nats over {len(nlls)} tokens)")


if __name__ == "__main__":
    main()

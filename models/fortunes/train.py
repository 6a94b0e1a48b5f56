#!/usr/bin/python3
"""Trains the bundled model: a character-level BitNet b1.58 decoder on the
fortune cookies of Debian's `fortunes` package, with quantisation-aware
training (ternary weights and int8 activations in the forward pass, the
straight-through estimator in the backward pass), and exports it to ONNX.

  /usr/bin/python3 models/fortunes/train.py --minutes 75     # the bundled model,
  /usr/bin/python3 models/fortunes/train.py --resume models/fortunes/fortunes.onnx \
      --lr 3e-4 --minutes 12                                # then this
  /usr/bin/python3 models/fortunes/train.py --minutes 2 --out /tmp/m.onnx

Writes fortunes.onnx (the model, with its vocabulary) and heldout.txt (text the
model never saw, used by the agreement test) next to this script.
Needs python3-torch, python3-onnx and the fortunes package.
"""

import argparse
import glob
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import bitnet_decoder as bd  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
# Files of the package that are prose (the art files are pictures).
SKIP = {"art", "ascii-art", "translate-me"}


def read_corpus():
    texts = []
    for path in sorted(glob.glob(os.path.join(FORTUNES, "*"))):
        name = os.path.basename(path)
        if "." in name or name in SKIP or os.path.islink(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    if not texts:
        sys.exit(f"train.py: no fortunes under {FORTUNES} "
                 "(apt-get install fortunes)")
    # One fortune per item, "%" lines separate them.
    items = []
    for t in texts:
        items += [s.strip("\n") for s in t.split("\n%\n") if s.strip()]
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="training time budget (default 10)")
    ap.add_argument("--out", default=os.path.join(HERE, "fortunes.onnx"))
    ap.add_argument("--heldout", default=os.path.join(HERE, "heldout.txt"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dim", type=int, default=192, help="hidden size (192)")
    ap.add_argument("--layers", type=int, default=4, help="decoder layers (4)")
    ap.add_argument("--heads", type=int, default=6, help="query heads (6)")
    ap.add_argument("--kv-heads", type=int, default=2, help="key/value heads (2)")
    ap.add_argument("--ffn", type=int, default=512, help="FFN width (512)")
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: the matrices are small enough "
                         "that a second thread costs more than it gives)")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction,
                    default=True,
                    help="bf16 autocast for the training passes (default on; "
                         "the held-out loss and the export are float32)")
    ap.add_argument("--resume", metavar="MODEL.onnx",
                    help="go on training a model this script wrote (its "
                         "shape options are then ignored)")
    ap.add_argument("--eval-every", type=int, default=1000,
                    help="print a held-out loss every N steps (0: never)")
    args = ap.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    items = read_corpus()
    random.shuffle(items)
    n_held = max(20, len(items) // 50)
    held, train = items[:n_held], items[n_held:]
    sep = "\n%\n"
    train_text = sep.join(train) + sep
    held_text = sep.join(held) + sep
    # Printable ASCII, newline and tab; anything else becomes a space.
    vocab = ["\n", "\t"] + [chr(c) for c in range(32, 127)]
    index = {c: i for i, c in enumerate(vocab)}

    def encode(s):
        return [index.get(c, index[" "]) for c in s]

    data = torch.tensor(encode(train_text), dtype=torch.long)
    cfg = bd.Config(vocab=len(vocab), dim=args.dim, layers=args.layers,
                    heads=args.heads, kv_heads=args.kv_heads, ffn=args.ffn,
                    context=256, theta=10000.0)
    model = bd.torch_model(cfg)
    if args.resume:
        model, cfg, resumed_vocab = bd.load_torch_from_onnx(args.resume)
        if resumed_vocab != vocab:
            sys.exit(f"train.py: {args.resume} has another vocabulary")
        # Latent weights that ternarise to the stored codes and scales:
        # codes * scale / (share of non-zero codes) has a mean magnitude of
        # `scale`, so training goes on from exactly the exported model.
        for blk in model.blocks:
            for n in ("q", "k", "v", "o", "gate", "up", "down"):
                lin = getattr(blk, n)
                codes, scale = lin.frozen
                share = (codes != 0).float().mean().clamp(min=1e-3)
                with torch.no_grad():
                    lin.weight.copy_(codes * scale / share)
                lin.frozen = None
    nparams = sum(p.numel() for p in model.parameters())
    print(f"train.py: {len(train)} fortunes ({len(train_text)} chars) for "
          f"training, {len(held)} held out; {nparams} parameters; "
          f"{args.minutes} minutes", flush=True)

    held_ids = torch.tensor(encode(held_text[:20000]), dtype=torch.long)

    def held_out_loss(limit=None):
        """Mean nats/char over the held-out text in eval mode (the numerics
        the compiled model has), in windows of the whole context."""
        ids = held_ids if limit is None else held_ids[:limit]
        was_training = model.training
        model.eval()
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(ids) - 1, cfg.context):
                chunk = ids[i:i + cfg.context + 1]
                if len(chunk) < 2:
                    break
                lg = model(chunk[None, :-1])
                total += torch.nn.functional.cross_entropy(
                    lg[0], chunk[1:], reduction="sum").item()
        model.train(was_training)
        return total / (len(ids) - 1)

    # Whole-context windows, as the held-out loss and the compiled model see them.
    seq, batch = cfg.context, 16
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01,
                            betas=(0.9, 0.95))
    start = time.time()
    budget = args.minutes * 60
    step = 0
    model.train()
    try:
        while True:
            elapsed = time.time() - start
            if elapsed >= budget:
                break
            # Cosine decay over the time budget, short warm-up.
            frac = elapsed / budget
            lr = args.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
            for g in opt.param_groups:
                g["lr"] = lr
            ix = torch.randint(0, len(data) - seq - 1, (batch,))
            xb = torch.stack([data[i:i + seq] for i in ix])
            yb = torch.stack([data[i + 1:i + seq + 1] for i in ix])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                logits = model(xb)
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, cfg.vocab), yb.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 100 == 0:
                print(f"step {step:5d}  {elapsed:6.0f} s  loss {loss.item():.3f}  "
                      f"lr {lr:.2e}", flush=True)
            if args.eval_every and step % args.eval_every == 0:
                print(f"step {step:5d}  held-out loss (first 4000 chars) "
                      f"{held_out_loss(4000):.3f}", flush=True)
    except KeyboardInterrupt:
        print(f"train.py: interrupted at step {step}; exporting what there is",
              flush=True)

    model.eval()
    held_loss = held_out_loss()
    print(f"train.py: {step} steps; held-out loss {held_loss:.3f} nats/char "
          "(quantised, as compiled)", flush=True)
    weights = bd.weights_from_torch(model, cfg)
    bd.write_onnx(args.out, cfg, weights, vocab=vocab,
                  doc=f"character-level BitNet b1.58 trained on Debian's "
                      f"fortunes for {step} steps"
                      f"{f' after {args.resume}' if args.resume else ''}; "
                      f"held-out loss "
                      f"{held_loss:.3f} nats/char")
    with open(args.heldout, "w") as f:
        f.write(held_text[:4000])
    print(f"train.py: wrote {args.out} ({os.path.getsize(args.out)} bytes) and "
          f"{args.heldout}")


if __name__ == "__main__":
    main()
